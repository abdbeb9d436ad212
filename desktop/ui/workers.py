"""Background work for the app: imports, exports and pre-labeling run in a QThread, each with its
own Store connection.

SQLite connections must not cross threads, and a long job must not freeze the window. Cancel is
the services' Progress protocol: `cancelled()` reads a flag the GUI thread sets, the service
raises Cancelled, and its transaction (import, pre-label) or staged output (export) is dropped.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from bondscope.childcall import decode
from bondscope.plugin_manager import Plugins
from bondscope.progress import Cancelled, Progress
from bondscope.services.exporting import export_traces
from bondscope.services.importing import import_paths
from bondscope.store import Store
from PySide6.QtCore import QThread, Signal

T = TypeVar("T")


class SignalProgress:
    """The services' Progress protocol, forwarded as Qt signals (queued to the GUI thread)."""

    def __init__(self, worker: ServiceWorker) -> None:
        self.worker = worker

    def start(self, label: str, total: int | None) -> None:
        self.worker.started_work.emit(label, total or 0)

    def advance(self, amount: int = 1, note: str = "") -> None:
        self.worker.advanced.emit(amount, note)

    def cancelled(self) -> bool:
        return self.worker.cancel_event.is_set()


class ServiceWorker(QThread):
    """Runs one service call off the GUI thread; subclasses say which in `work`."""

    started_work = Signal(str, int)  # label, total (0: unknown)
    advanced = Signal(int, str)  # amount, note
    succeeded = Signal(object)  # the service's report
    failed = Signal(str)  # one-line message
    cancelled = Signal(str)  # what a cancel left behind (nothing)

    title = "Working…"
    cancelled_message = "cancelled"

    def __init__(self, project: Path) -> None:
        super().__init__()
        self.project = project
        self.cancel_event = threading.Event()

    def cancel(self) -> None:
        self.cancel_event.set()

    def work(self, store: Store, progress: Progress) -> Any:
        raise NotImplementedError

    def run(self) -> None:
        try:
            with Store(self.project) as store:
                result = self.work(store, SignalProgress(self))
        except Cancelled:
            self.cancelled.emit(self.cancelled_message)
        except Exception as error:  # noqa: BLE001 - any failure is reported, never a crash
            self.failed.emit(str(error))
        else:
            self.succeeded.emit(result)


class ImportWorker(ServiceWorker):
    title = "Importing…"
    cancelled_message = "import cancelled; the project was left as it was"

    def __init__(self, project: Path, paths: list[Path], plugins: Plugins) -> None:
        super().__init__(project)
        self.paths = paths
        self.plugins = plugins

    def work(self, store: Store, progress: Progress) -> Any:
        return import_paths(store, self.plugins, self.paths, progress=progress)


class ExportWorker(ServiceWorker):
    title = "Exporting…"
    cancelled_message = "export cancelled; no file was written"

    def __init__(self, project: Path, plugins: Plugins, format: str, out: Path) -> None:
        super().__init__(project)
        self.plugins = plugins
        self.format = format
        self.out = out

    def work(self, store: Store, progress: Progress) -> Any:
        return export_traces(
            store, self.plugins, self.format, self.out, overwrite=True, progress=progress
        )


class PrelabelWorker(ServiceWorker):
    """Pre-labeling writes one transaction per batch of traces: a cancel keeps finished batches
    (each trace fully labeled or untouched) and the service returns a report saying so."""

    title = "Pre-labeling…"

    def __init__(
        self,
        project: Path,
        plugins: Plugins,
        prelabeler: str,
        trace_ids: list[int] | None,
        provider: str = "auto",
    ) -> None:
        super().__init__(project)
        self.plugins = plugins
        self.prelabeler = prelabeler
        self.trace_ids = trace_ids
        self.provider = provider

    def work(self, store: Store, progress: Progress) -> Any:
        from bondscope.services.prelabeling import prelabel  # heavy plugins load only when used

        return prelabel(
            store, self.plugins, self.prelabeler, self.trace_ids, self.provider, progress
        )


class CallWorker(ServiceWorker):
    """Runs one Qt-free function of a Store off the GUI thread (the metrics dock's computations).

    Each call gets its own connection, like the jobs above; nothing here is cancellable, so the
    owner waits for a running call before it drops the worker.
    """

    title = "Computing…"

    def __init__(self, project: Path, function: Callable[[Store], Any]) -> None:
        super().__init__(project)
        self.function = function

    def work(self, store: Store, progress: Progress) -> Any:
        return self.function(store)


class SynthesisWorker(ServiceWorker):
    """Plans a MOLE-SYN run (when `plan` is given) and runs it, or resumes run `run_id`.

    Every generated step is committed as it arrives, so Cancel (the service's Progress check)
    and failures keep what is stored; the run is then listed under Resume Synthesis Run.
    """

    title = "Synthesizing…"
    planned = Signal(int)  # the new run's id, as soon as it is stored

    def __init__(
        self,
        project: Path,
        plugins: Plugins,
        connection: Any,
        run_id: int | None = None,
        plan: Callable[[Store], int] | None = None,
    ) -> None:
        super().__init__(project)
        if (run_id is None) == (plan is None):
            raise ValueError("give either a run id to resume or a plan")
        self.plugins = plugins
        self.connection = connection
        self.run_id = run_id
        self.plan = plan

    @property
    def cancelled_message(self) -> str:  # type: ignore[override]
        return (
            f"synthesis run {self.run_id} cancelled; its stored steps are kept "
            "(Tools > Resume Synthesis Run continues it)"
        )

    def work(self, store: Store, progress: Progress) -> Any:
        from bondscope.services.synthesis import run_synthesis

        if self.run_id is None:
            assert self.plan is not None
            self.run_id = self.plan(store)
            self.planned.emit(self.run_id)
        return run_synthesis(store, self.plugins, self.run_id, self.connection, progress)


class FidelityWorker(ServiceWorker):
    """synthesis.fidelity of one run: pre-labels its steps (one transaction), then compares."""

    title = "Measuring fidelity…"
    cancelled_message = "fidelity report cancelled"

    def __init__(
        self, project: Path, plugins: Plugins, run_id: int, prelabeler: str | None = None
    ) -> None:
        super().__init__(project)
        self.plugins = plugins
        self.run_id = run_id
        self.prelabeler = prelabeler

    def work(self, store: Store, progress: Progress) -> Any:
        from bondscope.services.synthesis import fidelity

        return fidelity(
            store, self.plugins, self.run_id, prelabeler=self.prelabeler, progress=progress
        )


NICE = 19  # background threads' nice value (Linux): the GUI thread comes first


def lower_priority() -> None:
    """Give the calling thread (only it, on Linux) the lowest CPU priority; elsewhere a no-op."""
    if sys.platform.startswith("linux"):
        # Not permitted (some sandboxes): the thread keeps the default priority.
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)


def call_in_child(
    project: Path,
    function: Callable[..., T],
    kwargs: dict[str, Any],
    result_type: type[T],
    cancel: threading.Event | None = None,
) -> T:
    """`function(Store(project), **kwargs)` run in a child Python, for long reads of a large
    project: numpy and SQLite there never hold this process's GIL, which a GUI thread that
    calls into Python for every cell it paints would otherwise queue behind. Raises Cancelled
    when `cancel` is set (the child is killed), RuntimeError with its last error line."""
    command = [sys.executable, "-m", "bondscope.childcall", function.__module__, function.__name__]
    process = subprocess.Popen(
        [*command, str(project), str(NICE)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    outputs: list[bytes] = []
    talker = threading.Thread(
        target=lambda: outputs.extend(process.communicate(json.dumps(kwargs).encode())),
        daemon=True,
    )
    talker.start()
    while talker.is_alive():
        talker.join(0.05)
        if cancel is not None and cancel.is_set():
            process.kill()
            talker.join()
            raise Cancelled()
    out, err = outputs
    if process.returncode != 0:
        lines = err.decode(errors="replace").strip().splitlines()
        raise RuntimeError(lines[-1] if lines else f"exit status {process.returncode}")
    return decode(out, result_type)
