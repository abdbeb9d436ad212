"""The target picker's step embeddings without Qt: the app's background thread calls
`services.embeddings`, which encodes in chunks it can stop between, with the real ONNX encoder."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from bondscope.progress import Cancelled, StopProgress
from bondscope.services.embeddings import encode_steps, step_encoder

TEXTS = [
    "Let me compute the derivative first.",
    "Wait, that sign looks wrong; checking step one again.",
    "Alternatively, substitute x = 2 and see what happens to the whole expression.",
    "So the answer is 4.",
    "Hmm.",
]


class Recording(StopProgress):
    """Counts the rows of each chunk; stops the encode after `stop_after` chunks."""

    def __init__(self, stop_after: int | None = None) -> None:
        super().__init__(threading.Event())
        self.chunks: list[int] = []
        self.stop_after = stop_after

    def advance(self, amount: int = 1, note: str = "") -> None:
        self.chunks.append(amount)
        if self.stop_after is not None and len(self.chunks) >= self.stop_after:
            self.stop.set()


@pytest.fixture(scope="module")
def encoder():
    return step_encoder()  # what the app uses: CPU, one thread


def test_chunked_encoding_equals_one_encode_call(encoder) -> None:
    progress = Recording()
    vectors = encode_steps(encoder, TEXTS, progress, batches_per_chunk=2)
    expected = encoder.encode(TEXTS)
    assert vectors.shape == expected.shape == (len(TEXTS), encoder.dimension)
    np.testing.assert_allclose(vectors, expected, atol=1e-6)
    assert sum(progress.chunks) == len(TEXTS)
    assert max(progress.chunks) <= 2 * encoder.batch_size
    assert encode_steps(encoder, []).shape == (0, encoder.dimension)


def test_a_stop_ends_the_encode_after_the_chunk_in_progress(encoder) -> None:
    progress = Recording(stop_after=1)
    with pytest.raises(Cancelled):
        encode_steps(encoder, TEXTS, progress)
    assert progress.chunks == [encoder.batch_size]  # one chunk, then the check between chunks
