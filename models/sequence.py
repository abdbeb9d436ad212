"""The sequence head at inference: an ONNX bidirectional GRU over a trace's step features, run
with onnxruntime + numpy (trained and exported by `bondscope.models.sequence_training`).

Each trace is tagged on its own (a batch of one, no padding), so a step's probabilities depend
only on its own trace, never on which other traces were pre-labeled with it. The graph also takes
padded batches (`lengths` says where each trace ends); the export test checks both against the
PyTorch module.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


class SequenceHead:
    """(steps, 4) probabilities per trace from the exported tagger."""

    def __init__(
        self,
        path: Path,
        temperature: float = 1.0,
        offsets: Sequence[float] | None = None,
        threads: int | None = 1,
    ) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.temperature = temperature
        self.offsets = np.asarray(offsets if offsets is not None else np.zeros(4), np.float32)

    def logits(self, rows: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Per trace, one at a time (module doc)."""
        out = []
        for x in rows:
            if not len(x):
                out.append(np.zeros((0, 4), np.float32))
                continue
            feeds = {
                "rows": x[None].astype(np.float32, copy=False),
                "lengths": np.array([len(x)], np.int64),
            }
            out.append(self.session.run(["logits"], feeds)[0][0])
        return out

    def logits_padded(self, rows: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """(batch, steps, 4) logits of a zero-padded batch; rows past a trace's length are junk."""
        feeds = {"rows": rows.astype(np.float32, copy=False), "lengths": lengths.astype(np.int64)}
        return self.session.run(["logits"], feeds)[0]

    def predict_traces(self, rows: Sequence[np.ndarray]) -> list[np.ndarray]:
        """(steps, 4) probabilities per trace, after the temperature and the class offsets."""
        return [softmax(z / self.temperature + self.offsets) for z in self.logits(rows)]


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)
