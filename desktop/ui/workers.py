"""Background work for the app: imports run in a QThread with their own Store connection.

SQLite connections must not cross threads, and a long import must not freeze the window; the
import's single transaction still means a cancel leaves the project as it was.
"""

from __future__ import annotations

import threading
from pathlib import Path

from bondscope.plugin_manager import Plugins
from bondscope.progress import Cancelled
from bondscope.services.importing import ImportReport, import_paths
from bondscope.store import Store
from PySide6.QtCore import QThread, Signal


class SignalProgress:
    """The services' Progress protocol, forwarded as Qt signals (queued to the GUI thread)."""

    def __init__(self, worker: ImportWorker) -> None:
        self.worker = worker

    def start(self, label: str, total: int | None) -> None:
        self.worker.started_work.emit(label, total or 0)

    def advance(self, amount: int = 1, note: str = "") -> None:
        self.worker.advanced.emit(amount, note)

    def cancelled(self) -> bool:
        return self.worker.cancel_event.is_set()


class ImportWorker(QThread):
    started_work = Signal(str, int)  # label, total (0: unknown)
    advanced = Signal(int, str)  # amount, note
    succeeded = Signal(object)  # ImportReport
    failed = Signal(str)  # one-line message; the project is unchanged

    def __init__(self, project: Path, paths: list[Path], plugins: Plugins) -> None:
        super().__init__()
        self.project = project
        self.paths = paths
        self.plugins = plugins
        self.cancel_event = threading.Event()

    def cancel(self) -> None:
        self.cancel_event.set()

    def run(self) -> None:
        try:
            with Store(self.project) as store:
                report: ImportReport = import_paths(
                    store, self.plugins, self.paths, progress=SignalProgress(self)
                )
        except Cancelled:
            self.failed.emit("import cancelled; the project was left as it was")
        except Exception as error:  # noqa: BLE001 - any failure is reported, never a crash
            self.failed.emit(str(error))
        else:
            self.succeeded.emit(report)
