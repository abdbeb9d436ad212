"""Full fine-tune (`bondscope train --full`): MiniLM itself learns the four behaviors.

Meant for a GPU: sentence-transformers' model (Transformer -> mean pooling -> normalize) plus a
temporary linear layer, trained with class-weighted cross-entropy on single steps. Only the
encoder is kept (saved in sentence-transformers' layout, so `export` reads it like the shipped
weights); the context head is then trained over its features exactly as for `--level head`.
The tests run two optimizer steps on a handful of steps on the CPU, so this path stays real.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from bondscope.domain import BEHAVIORS
from bondscope.progress import NullProgress, Progress, check_cancelled

LOGIT_SCALE = 20.0  # embeddings are unit length; scaled so the linear layer learns at lr 1e-3


def finetune(
    weights_dir: Path,
    texts: Sequence[str],
    labels: Sequence[str],
    out_dir: Path,
    *,
    epochs: int = 1,
    batch_size: int = 32,
    learning_rate: float = 2e-5,
    max_steps: int | None = None,
    max_seq_length: int = 256,
    seed: int = 0,
    device: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Fine-tune the encoder at `weights_dir` on (text, behavior) pairs; save it to `out_dir`."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer

    progress = progress or NullProgress()
    torch.manual_seed(seed)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = SentenceTransformer(str(weights_dir), device=device, local_files_only=True)
    model.max_seq_length = max_seq_length
    classifier = torch.nn.Linear(model.get_embedding_dimension(), 4).to(device)
    y = np.array([BEHAVIORS.index(b) for b in labels], np.int64)
    counts = np.bincount(y, minlength=4).astype(np.float32)
    weight = torch.tensor(
        np.where(counts > 0, len(y) / (4 * np.maximum(counts, 1)), 0.0), dtype=torch.float32
    ).to(device)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weight)
    optimizer = torch.optim.AdamW(
        [
            {"params": model.parameters(), "lr": learning_rate},
            {"params": classifier.parameters(), "lr": 1e-3},
        ]
    )
    per_epoch = (len(texts) + batch_size - 1) // batch_size
    total = per_epoch * epochs if max_steps is None else min(max_steps, per_epoch * epochs)
    rng = np.random.default_rng(seed)
    progress.start("fine-tuning the encoder", total)
    model.train()
    steps, losses = 0, []
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else _no_autocast()
    while steps < total:
        order = rng.permutation(len(texts))
        for begin in range(0, len(order), batch_size):
            if steps >= total:
                break
            rows = order[begin : begin + batch_size]
            features = model.preprocess([texts[i] for i in rows])
            features = {
                k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in features.items()
            }
            with amp:
                embedding = model(features)["sentence_embedding"]
                logits = classifier(embedding.float() * LOGIT_SCALE)
            loss = loss_fn(logits, torch.from_numpy(y[rows]).to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            steps += 1
            progress.advance(1, f"loss {losses[-1]:.3f}")
            check_cancelled(progress)
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save(str(out_dir))
    return {
        "device": device,
        "optimizer_steps": steps,
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "max_seq_length": max_seq_length,
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
    }


def _no_autocast() -> Any:
    from contextlib import nullcontext

    return nullcontext()
