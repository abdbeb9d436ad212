"""Training side of the sequence head: a small bidirectional GRU over a trace's step features,
fit with PyTorch and exported to ONNX (`bondscope.models.sequence` runs it without torch).

A behavior is a move relative to the rest of the trace, so the head reads every step's feature
row and tags the whole sequence: a projection of each row, a forward GRU and a backward GRU over
the projected rows, and a linear layer over both directions and the step's own projection.

The backward direction is a second forward GRU over each trace reversed *within its length*
(an index gather), so a padded batch gives every real step exactly what the trace alone gives:
padding only ever follows a trace's last step, in both directions. That keeps predictions per
trace deterministic whatever batch a trace is tagged in, and the graph exports to plain ONNX
(no packed sequences).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from bondscope.domain import BEHAVIORS
from torch import nn

OPSET = 17


class SequenceTagger(nn.Module):
    """(batch, steps, features) rows + lengths -> (batch, steps, 4) logits (N, D, R, E)."""

    def __init__(
        self, mean: np.ndarray, scale: np.ndarray, *, projection: int = 96, hidden: int = 48
    ) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))
        width = len(mean)
        self.project = nn.Linear(width, projection)
        self.forward_gru = nn.GRU(projection, hidden, batch_first=True)
        self.backward_gru = nn.GRU(projection, hidden, batch_first=True)
        self.dropout = nn.Dropout(0.3)
        self.out = nn.Linear(2 * hidden + projection, 4)

    def forward(self, rows: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.project((rows - self.mean) * self.scale))
        h = self.dropout(h)
        ahead, _ = self.forward_gru(h)
        steps = torch.arange(rows.shape[1], device=rows.device).unsqueeze(0)
        last = lengths.unsqueeze(1) - 1
        flip = torch.where(steps <= last, last - steps, steps)  # reverse each trace in place
        index = flip.unsqueeze(2).expand(-1, -1, h.shape[2])
        back, _ = self.backward_gru(torch.gather(h, 1, index))
        back = torch.gather(back, 1, flip.unsqueeze(2).expand(-1, -1, back.shape[2]))
        return self.out(torch.cat([ahead, back, h], dim=2))


@dataclass
class SequenceExample:
    """One trace: feature rows of every step, class index per step (-1: no gold), row weights."""

    x: np.ndarray
    y: np.ndarray
    weight: np.ndarray


def pad(rows: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(batch, longest, features) zero-padded rows and the int64 lengths."""
    lengths = np.array([len(r) for r in rows], np.int64)
    out = np.zeros((len(rows), int(lengths.max()), rows[0].shape[1]), np.float32)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out, lengths


def fit_sequence(
    examples: Sequence[SequenceExample],
    *,
    standardize: np.ndarray,
    epochs: int = 15,
    batch_traces: int = 8,
    learning_rate: float = 2e-3,
    weight_decay: float = 1e-2,
    class_weight: np.ndarray | None = None,
    seed: int = 0,
) -> SequenceTagger:
    """Class-weighted cross-entropy on the gold steps; `standardize` (bool per column) leaves
    sparse columns (hashed words) unscaled. Returns the module in eval mode."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    stacked = np.vstack([e.x for e in examples])
    mean = stacked.mean(0)
    std = stacked.std(0)
    std[std < 1e-6] = 1.0
    mean[~standardize] = 0.0
    std[~standardize] = 1.0
    model = SequenceTagger(mean, 1.0 / std)
    labels = np.concatenate([e.y for e in examples])
    weights = np.concatenate([e.weight for e in examples])
    if class_weight is None:  # balanced, by the weighted count of each class
        counts = np.array([weights[labels == k].sum() for k in range(4)])
        class_weight = np.where(counts > 0, counts.sum() / (4 * np.maximum(counts, 1e-9)), 0.0)
    cw = torch.as_tensor(class_weight, dtype=torch.float32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    order = np.argsort([len(e.x) for e in examples])  # similar lengths per batch: less padding
    batches = [order[i : i + batch_traces] for i in range(0, len(order), batch_traces)]
    model.train()
    for _ in range(epochs):
        for b in rng.permutation(len(batches)):
            chosen = [examples[i] for i in batches[b]]
            x, lengths = pad([e.x for e in chosen])
            y = np.full(x.shape[:2], -1, np.int64)
            w = np.zeros(x.shape[:2], np.float32)
            for i, e in enumerate(chosen):
                y[i, : len(e.y)] = e.y
                w[i, : len(e.y)] = e.weight
            logits = model(torch.from_numpy(x), torch.from_numpy(lengths))
            target = torch.from_numpy(y)
            keep = target >= 0
            if not keep.any():
                continue
            loss = nn.functional.cross_entropy(logits[keep], target[keep], reduction="none")
            row_weight = torch.from_numpy(w)[keep] * cw[target[keep]]
            loss = (loss * row_weight).sum() / row_weight.sum().clamp_min(1e-9)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


def fit_sequence_examples(
    traces: Sequence[tuple[np.ndarray, np.ndarray | None, Sequence[tuple[str | None, float]]]],
    *,
    standardize: np.ndarray,
    seed: int = 0,
) -> TorchSequencePredictor:
    """Fit on (rows, paraphrased rows or None, per-step (label, weight)) per training trace; a
    paraphrased copy is one more training sequence with the same labels."""
    examples = []
    for x, augmented, targets in traces:
        y = np.array([BEHAVIORS.index(b) if b is not None and w > 0 else -1 for b, w in targets])
        weight = np.array([w for _, w in targets], np.float32)
        for rows in (x, augmented) if augmented is not None else (x,):
            examples.append(SequenceExample(rows, y, weight))
    return TorchSequencePredictor(fit_sequence(examples, standardize=standardize, seed=seed))


def predict_logits(model: SequenceTagger, rows: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Per trace (steps, 4) logits from the PyTorch module, one padded batch."""
    x, lengths = pad(rows)
    with torch.no_grad():
        logits = model(torch.from_numpy(x), torch.from_numpy(lengths)).numpy()
    return [logits[i, :n] for i, n in enumerate(lengths)]


class TorchSequencePredictor:
    """A fitted tagger as a trace predictor (probabilities, after `temperature` and `offsets`)."""

    def __init__(self, model: SequenceTagger) -> None:
        self.model = model
        self.temperature = 1.0
        self.offsets = np.zeros(4, np.float32)

    def predict_traces(self, rows: Sequence[np.ndarray]) -> list[np.ndarray]:
        out = []
        for logits in predict_logits(self.model, rows):
            z = logits / self.temperature + self.offsets
            z = np.exp(z - z.max(axis=1, keepdims=True))
            out.append(z / z.sum(axis=1, keepdims=True))
        return out


def export_onnx(model: SequenceTagger, path: Path) -> None:
    """One self-contained ONNX graph, batch and step axes dynamic (TorchScript exporter)."""
    width = int(model.mean.shape[0])
    x = torch.zeros((2, 5, width), dtype=torch.float32)
    lengths = torch.tensor([5, 3], dtype=torch.int64)
    with warnings.catch_warnings():
        # The GRU warnings are about batch sizes and h0; tests/test_sequence_head.py checks that
        # batches of any size and traces of any length agree with the PyTorch module.
        warnings.simplefilter("ignore")
        _export(model, x, lengths, path)


def _export(model: SequenceTagger, x: torch.Tensor, lengths: torch.Tensor, path: Path) -> None:
    torch.onnx.export(
        model.eval(),
        (x, lengths),
        str(path),
        input_names=["rows", "lengths"],
        output_names=["logits"],
        dynamic_axes={"rows": {0: "batch", 1: "steps"}, "lengths": {0: "batch"}},
        opset_version=OPSET,
        dynamo=False,
    )
