"""Step embeddings for the reflection-target picker, computed off the GUI thread and kept per trace.

Opening a trace asks for its step embeddings (ONNX MiniLM, CPU provider, int8, one ORT thread
so the GUI keeps a core). The picker uses them once they are ready and falls back to TF-IDF
(labeling.suggest_targets) until then: the keystroke path never waits for the encoder.

A thread, not a child process: onnxruntime and tokenizers release the GIL while they compute,
so the GUI thread keeps running (benchmarks/ui.py measures keystrokes while a 1,000-step trace is
encoded). The encoder is built once, in the worker thread, and reused for every trace.

The keystroke must not wait for a core: on Linux the thread runs at nice 19 (QThread priorities
are ignored there for ordinary threads; threads the tokenizer starts from it inherit the value),
encodes one batch per call and sleeps briefly between batches, so the GUI thread gets the CPU and
the GIL whenever it wants them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np
from bondscope.progress import Cancelled, StopProgress, Yielding
from bondscope.services.embeddings import encode_steps, step_encoder
from bondscope.ui.workers import lower_priority
from PySide6.QtCore import QObject, QThread, Signal

CACHE_TRACES = 32  # ~1.5 MB per 1,000-step trace: a session's worth of traces
CHUNK_BATCHES = 1  # encoder batches per encode call: closing the window waits for one call
YIELD_S = 0.002  # pause between batches: a keystroke arriving then finds the CPU free


class EncodeWorker(QThread):
    """Encodes one trace's step texts; `encoded` carries (trace id, array) to the GUI thread."""

    encoded = Signal(int, object)
    failed = Signal(str)

    def __init__(self, owner: StepEmbeddings, trace_id: int, texts: list[str]) -> None:
        super().__init__()
        self.owner = owner
        self.trace_id = trace_id
        self.texts = texts
        self.stop = threading.Event()

    def run(self) -> None:
        lower_priority()
        progress = Yielding(StopProgress(self.stop), YIELD_S)
        try:
            encoder = self.owner.encoder_in_thread()
            vectors = encode_steps(encoder, self.texts, progress, CHUNK_BATCHES)
        except Cancelled:
            return
        except Exception as error:  # noqa: BLE001 - no encoder: the picker keeps TF-IDF
            self.failed.emit(f"step embeddings unavailable: {error}")
        else:
            self.encoded.emit(self.trace_id, vectors)


class StepEmbeddings(QObject):
    """In-memory embeddings per trace (LRU), one encode job at a time, the newest request next."""

    ready = Signal(int)  # a trace's embeddings are cached
    failed = Signal(str)

    def __init__(self, provider: str = "cpu", threads: int = 1) -> None:
        super().__init__()
        self.provider = provider
        self.threads = threads
        self.cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self.worker: EncodeWorker | None = None
        self.pending: tuple[int, list[str]] | None = None
        self._encoder: Any = None
        self._encoder_lock = threading.Lock()
        self.disabled = False  # set after a failure: do not retry on every trace

    def encoder_in_thread(self) -> Any:
        """The shared Encoder, built on first use by whichever worker thread needs it."""
        with self._encoder_lock:
            if self._encoder is None:
                self._encoder = step_encoder(self.provider, self.threads)
            return self._encoder

    def get(self, trace_id: int, steps: int) -> np.ndarray | None:
        """The trace's embeddings when ready and of the shown length, else None."""
        vectors = self.cache.get(trace_id)
        if vectors is None or len(vectors) != steps:
            return None
        self.cache.move_to_end(trace_id)
        return vectors

    def request(self, trace_id: int, texts: list[str]) -> None:
        """Encode a trace's steps unless cached; a newer request replaces a waiting one."""
        if self.disabled or self.get(trace_id, len(texts)) is not None:
            return
        if self.worker is not None and self.worker.isRunning():
            if self.worker.trace_id != trace_id:
                self.pending = (trace_id, texts)
            return
        self._start(trace_id, texts)

    def _start(self, trace_id: int, texts: list[str]) -> None:
        worker = EncodeWorker(self, trace_id, texts)
        worker.encoded.connect(self._encoded)
        worker.failed.connect(self._failed)
        worker.finished.connect(self._next)
        self.worker = worker
        worker.start(QThread.Priority.LowPriority)

    def _encoded(self, trace_id: int, vectors: np.ndarray) -> None:
        self.cache[trace_id] = vectors
        self.cache.move_to_end(trace_id)
        while len(self.cache) > CACHE_TRACES:
            self.cache.popitem(last=False)
        self.ready.emit(trace_id)

    def _failed(self, message: str) -> None:
        self.disabled = True
        self.pending = None
        self.failed.emit(message)

    def _next(self) -> None:
        if self.pending is not None:
            trace_id, texts = self.pending
            self.pending = None
            self.request(trace_id, texts)

    def busy(self) -> bool:
        return self.worker is not None and self.worker.isRunning()

    def shutdown(self) -> None:
        """Stop after the chunk in progress and wait: no thread outlives the window."""
        self.pending = None
        if self.worker is not None:
            self.worker.stop.set()
            self.worker.wait()
