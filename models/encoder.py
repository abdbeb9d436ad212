"""The step encoder at run time: `tokenizers` + onnxruntime, no torch.

The ONNX graph (MiniLM + masked mean pooling + L2 norm, built by `bondscope.models.export`) lives
in the user cache (`bondscope.models.weights`), in a folder named after the sha256 of the weights
and of the export code version, so new weights or a changed export never reuse a stale file; each
file's own sha256 is recorded in meta.json as it is built and checked before use, so a replaced
or corrupt file is rebuilt, never loaded. Variants: `fp32` (the reference), `int8` (dynamic
per-channel quantization, the CPU default) and `fp16` (the CUDA default). Texts are tokenized
once, sorted by length and padded per batch, so a batch of short steps never pays for the longest
step of the run. The int8 variant encodes one text per batch (INT8_BATCH), so a text's embedding
never depends on the texts encoded with it. On the CPU the cores are used across batches, not
within one: each session runs on one intra-op thread and `threads` batches run at once
(onnxruntime releases the GIL); for one short text a second intra-op thread mostly waits, so this
is about 1.6x faster on 2 cores (docs/benchmarks.md).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from bondscope.models.export import build_variant
from bondscope.models.weights import (
    MAX_SEQ_LENGTH,
    OUTPUTS,
    VARIANT_FILES,
    default_weights_dir,
    encoder_dir,
    file_sha256,
    recorded_hashes,
)

PROVIDERS = ("auto", "cuda", "cpu")
CUDA = "CUDAExecutionProvider"
CPU_BATCH = 16
# int8 runs one text per batch: its dynamic quantization takes one activation range over the
# whole batch tensor, so batched neighbours (and their padding) would change a step's
# embedding, and a step's prediction would depend on which traces were pre-labeled with it.
INT8_BATCH = 1
CUDA_BATCH = 256
CPU = "CPUExecutionProvider"

log = logging.getLogger(__name__)


def _intact(folder: Path, names: Sequence[str]) -> bool:
    """Every file is there and has the sha256 recorded when it was built."""
    hashes = recorded_hashes(folder)
    for name in names:
        path = folder / name
        if not path.is_file():
            return False
        if hashes.get(name) != file_sha256(path):
            log.warning("%s: not the sha256 recorded when it was built; rebuilding", path)
            path.unlink()
            return False
    return True


def ensure_encoder(weights_dir: Path, variant: str) -> Path:
    """The folder holding `variant` for these weights, exporting it on first use (needs torch).

    A cached file that was replaced or corrupted (its sha256 differs from the one meta.json
    recorded when it was built; caches from before hashes were recorded count as unverified) is
    rebuilt, so a model under the bondscope-minilm name is always the one the export made.
    """
    if variant not in VARIANT_FILES:
        raise ValueError(f"unknown encoder variant {variant!r} (one of {', '.join(VARIANT_FILES)})")
    folder = encoder_dir(weights_dir)
    names = [VARIANT_FILES[variant]] + (["tokenizer.json"] if variant == "fp32" else [])
    if not _intact(folder, names):
        if variant != "fp32":
            ensure_encoder(weights_dir, "fp32")  # the variant is derived from a sound fp32
        build_variant(weights_dir, folder, variant)
    return folder


def load_tokenizer(folder: Path) -> Any:
    """tokenizer.json with ST's settings: truncate at 256, no fixed padding (we pad per batch)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=MAX_SEQ_LENGTH)
    tokenizer.no_padding()
    return tokenizer


def available_cores() -> int:
    """The cores this process may run on (its affinity, which a container limits), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def make_session(path: Path, provider: str, threads: int | None) -> tuple[Any, str]:
    """An ORT session and the provider it really runs on (sess.get_providers(), not the build's).

    `cuda` and `auto` try the CUDA provider (after `preload_dlls()`, which finds the CUDA and
    cuDNN wheels); ORT silently falls back to the CPU when CUDA cannot load, so the active provider
    is read back from the session.
    """
    import onnxruntime as ort

    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r} (one of {', '.join(PROVIDERS)})")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    providers = [CPU]
    if provider != "cpu" and _cuda_built():
        # A CUDA provider that cannot load logs native error lines; we report the provider that
        # runs instead (and explain a failed `cuda` request), so only fatal lines are shown.
        ort.set_default_logger_severity(4)
        ort.preload_dlls()
        providers = [CUDA, CPU]
    session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    active = session.get_providers()[0]
    if provider == "cuda" and active != CUDA:
        raise RuntimeError(
            "the CUDA provider was requested but cannot run here (onnxruntime-gpu needs CUDA 13 "
            "and cuDNN 9; see `python -c 'import onnxruntime; onnxruntime.print_debug_info()'`)"
        )
    return session, active


def _cuda_built() -> bool:
    """True for the onnxruntime-gpu build (which says so even on a machine without a GPU)."""
    import onnxruntime as ort

    return CUDA in ort.get_available_providers()


class Encoding(NamedTuple):
    """One encoder pass over texts, rows in input order."""

    embeddings: np.ndarray  # (n, 384) unit vectors, as sentence-transformers gives them
    middle: np.ndarray  # (n, 384) masked mean of layer MIDDLE_LAYER's output, not normalized
    token_counts: np.ndarray  # (n,) tokens after truncation


class Encoder:
    """Unit-length 384-d embeddings of texts, as sentence-transformers' `encode` gives them."""

    def __init__(
        self,
        weights_dir: Path | None = None,
        *,
        provider: str = "auto",
        variant: str | None = None,
        threads: int | None = None,
        batch_size: int | None = None,
        sort_by_length: bool = True,
    ) -> None:
        self.weights_dir = Path(weights_dir) if weights_dir is not None else default_weights_dir()
        self.sort_by_length = sort_by_length  # off only to measure what sorting buys
        fp32 = ensure_encoder(self.weights_dir, "fp32")
        self.folder = fp32
        self.meta: dict[str, Any] = json.loads((fp32 / "meta.json").read_text("utf-8"))
        self.tokenizer = load_tokenizer(fp32)
        if variant is None and provider != "cpu" and _cuda_built():
            # Only a session tells whether CUDA runs: probe with the fp32 graph, then pick.
            _, probed = make_session(fp32 / VARIANT_FILES["fp32"], provider, threads)
            variant = "fp16" if probed == CUDA else "int8"
        self.variant = variant or "int8"
        path = ensure_encoder(self.weights_dir, self.variant) / VARIANT_FILES[self.variant]
        # One intra-op thread per session; on the CPU `threads` batches run at once instead.
        self.session, self.provider = make_session(path, provider, 1)
        self.workers = 1 if self.provider == CUDA else threads or available_cores()
        # Measured on 2 CPU cores (docs/benchmarks.md): 16 beat 64 and 128; GPUs want big batches.
        # int8 defaults to one text per batch (see INT8_BATCH); a larger one is for benchmarks.
        default = CUDA_BATCH if self.provider == CUDA else CPU_BATCH
        self.batch_size = batch_size or (INT8_BATCH if self.variant == "int8" else default)

    @property
    def dimension(self) -> int:
        return int(self.meta["dimension"])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), 384) float32 unit vectors, rows in input order."""
        return self.encode_all(texts).embeddings

    def encode_all(self, texts: Sequence[str]) -> Encoding:
        """Both pooled outputs and the token counts (a feature, so tokenize only once)."""
        n, dim = len(texts), self.dimension
        embeddings, middle = np.zeros((n, dim), np.float32), np.zeros((n, dim), np.float32)
        encodings = self.tokenizer.encode_batch(list(texts)) if texts else []
        lengths = np.array([len(e.ids) for e in encodings], np.int64)
        order = np.argsort(lengths, kind="stable") if self.sort_by_length else np.arange(n)
        batches = [order[b : b + self.batch_size] for b in range(0, n, self.batch_size)]

        def run(rows: np.ndarray) -> None:
            """Encode one batch into its rows of the outputs (batches never share a row)."""
            width = int(lengths[rows].max())
            ids = np.zeros((len(rows), width), np.int64)
            mask = np.zeros((len(rows), width), np.int64)
            for r, i in enumerate(rows):
                ids[r, : lengths[i]] = encodings[i].ids
                mask[r, : lengths[i]] = 1
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            embeddings[rows], middle[rows] = self.session.run(list(OUTPUTS), feeds)

        workers = min(self.workers, len(batches))
        if workers <= 1:
            for rows in batches:
                run(rows)
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix="encoder") as pool:
                for _ in pool.map(run, batches):  # in order; re-raises a batch's error
                    pass
        return Encoding(embeddings, middle, lengths)
