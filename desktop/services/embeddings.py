"""Step embeddings for the reflection-target picker (no Qt): the encoder, and an encode that a
background thread can stop between batches.

The app encodes a shown trace's steps in a low-priority thread (bondscope.ui.embeddings); this is
the part of that job that is not about threads, so it runs and is tested without Qt.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from bondscope.progress import NullProgress, Progress, check_cancelled

if TYPE_CHECKING:
    from bondscope.models.encoder import Encoder


def step_encoder(provider: str = "cpu", threads: int = 1) -> Encoder:
    """The sentence encoder the picker ranks with (built, or loaded from the cache, here)."""
    from bondscope.models.encoder import Encoder  # onnxruntime loads only when it is needed

    return Encoder(provider=provider, threads=threads)


def encode_steps(
    encoder: Encoder,
    texts: Sequence[str],
    progress: Progress | None = None,
    batches_per_chunk: int = 1,
) -> np.ndarray:
    """encoder.encode(texts), in chunks of `batches_per_chunk` batches with a cancel check and
    an advance between them (raises Cancelled), so a stop waits for one chunk at most.

    Chunks are consecutive texts: a text's embedding does not depend on the texts encoded with
    it (int8, the CPU default, encodes one text per batch; the padded fp32/fp16 batches differ
    only by float rounding), so the result is encoder.encode(texts).
    """
    progress = progress or NullProgress()
    progress.start("Encoding steps", len(texts))
    out = np.zeros((len(texts), encoder.dimension), np.float32)
    chunk = encoder.batch_size * batches_per_chunk
    for begin in range(0, len(texts), chunk):
        check_cancelled(progress)
        end = min(begin + chunk, len(texts))
        out[begin:end] = encoder.encode(list(texts[begin:end]))
        progress.advance(end - begin)
    return out
