"""The window's job runner: one background job at a time (import, export, pre-label, synthesis,
fidelity), with a progress dialog and its Cancel, failures in a box and cancels in the status bar;
and `Flow`, the base of the menu flows that start those jobs.

The jobs themselves are `bondscope.ui.workers` threads around service calls; whoever starts one
connects to its `succeeded` for the result.
"""

from __future__ import annotations

from collections.abc import Callable

from bondscope.plugin_manager import Plugins
from bondscope.store import Store
from bondscope.ui.session import Session
from bondscope.ui.workers import ServiceWorker
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QMainWindow, QMessageBox, QProgressDialog, QWidget


def show_box(parent: QWidget, icon: QMessageBox.Icon, title: str, text: str) -> QMessageBox:
    """A message box shown with open(), not exec(): no nested event loop (a worker may be
    winding down); plain text, as messages quote names and file contents."""
    box = QMessageBox(icon, title, text, parent=parent)
    box.setTextFormat(Qt.TextFormat.PlainText)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box


def inform(parent: QWidget, title: str, text: str) -> QMessageBox:
    return show_box(parent, QMessageBox.Icon.Information, title, text)


class JobRunner(QObject):
    """Runs the window's background jobs one at a time; `worker` is the newest one."""

    worker_starting = Signal(object)  # a ServiceWorker, connected but not yet started

    def __init__(self, window: QMainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.worker: ServiceWorker | None = None
        self.progress_dialog = QProgressDialog(window)
        self.progress_dialog.setWindowModality(Qt.WindowModality.WindowModal)
        self.progress_dialog.setMinimumDuration(300)
        self.progress_dialog.setAutoReset(False)  # a worker's `finished` closes it, nothing else
        self.progress_dialog.reset()  # a new QProgressDialog shows itself after the delay
        self.progress_dialog.canceled.connect(self.cancel)

    def busy(self) -> bool:
        return self.worker is not None and self.worker.isRunning()

    def start(self, worker: ServiceWorker) -> bool:
        """Run the job with the progress dialog; False (and a note) while another one runs.

        The worker's signals go to this object's methods, so Qt queues them to the GUI thread.
        """
        if self.busy():
            self.window.statusBar().showMessage("another job is still running", 3000)
            return False
        self.progress_dialog.reset()
        self.progress_dialog.setLabelText(worker.title)
        self.progress_dialog.setRange(0, 0)
        self.progress_dialog.setValue(0)
        worker.started_work.connect(self._started)
        worker.advanced.connect(self._advanced)
        worker.failed.connect(self._failed)
        worker.cancelled.connect(self._cancelled)
        worker.finished.connect(self.progress_dialog.reset)
        self.worker = worker
        self.worker_starting.emit(worker)
        worker.start()
        return True

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def stop(self) -> None:
        """Cancel a running job and wait for it (the window is closing)."""
        if self.busy():
            assert self.worker is not None
            self.worker.cancel()
            self.worker.wait()

    def _started(self, label: str, total: int) -> None:
        self.progress_dialog.setLabelText(label)
        self.progress_dialog.setMaximum(total)

    def _advanced(self, amount: int, note: str) -> None:
        if self.progress_dialog.wasCanceled():
            return
        self.progress_dialog.setValue(self.progress_dialog.value() + amount)
        if note:
            self.progress_dialog.setLabelText(note)

    def _failed(self, message: str) -> None:
        show_box(self.window, QMessageBox.Icon.Warning, "Failed", message)

    def _cancelled(self, message: str) -> None:
        self.window.statusBar().showMessage(message, 5000)


class Flow(QObject):
    """A menu's flow over what the window shows: dialogs in, changes out; the window re-reads
    what changed when told."""

    traces_added = Signal()  # traces were stored (a cancelled or failed job may keep some)
    labels_added = Signal()  # labels were stored outside the keyboard path

    def __init__(self, window: QMainWindow, session: Session) -> None:
        super().__init__(window)
        self.window = window
        self.session = session

    @property
    def store(self) -> Store:
        return self.session.require_store()

    def notice(self, text: str) -> None:
        """A result in the status bar, for a few seconds."""
        self.window.statusBar().showMessage(text, 5000)


class JobFlow(Flow):
    """A flow that runs its work as jobs on the window's runner, each job in its own thread
    with its own Store."""

    def __init__(
        self,
        window: QMainWindow,
        session: Session,
        jobs: JobRunner,
        plugins: Callable[[], Plugins],
    ) -> None:
        """`plugins`: the window's plugins, loaded on first use."""
        super().__init__(window, session)
        self.jobs = jobs
        self.plugins = plugins
