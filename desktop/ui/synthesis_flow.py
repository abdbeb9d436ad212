"""Tools > Synthesize and Resume Synthesis Run, and the fidelity report offered after a run:
the dialogs of `bondscope.ui.synthesis` in, jobs on the window's runner out.

Planning, running, resuming and measuring are `bondscope.services.synthesis` calls in worker
threads (each with its own Store), exactly as the CLI makes them.
"""

from __future__ import annotations

from collections.abc import Callable

from bondscope.plugin_manager import Plugins
from bondscope.services.settings import Settings, save_settings
from bondscope.services.synthesis import (
    Connection,
    FidelityReport,
    SynthesisReport,
    plan_run,
    read_questions,
    unfinished_runs,
)
from bondscope.store import Store
from bondscope.ui.jobs import JobFlow, JobRunner, inform
from bondscope.ui.session import Session
from bondscope.ui.synthesis import FidelityDialog, ResumeDialog, SynthesisDialog, SynthesisRequest
from bondscope.ui.workers import FidelityWorker, SynthesisWorker
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMainWindow, QMessageBox


class SynthesisFlow(JobFlow):
    """Tools > Synthesize and Resume, and the report offered when a run is done."""

    def __init__(
        self,
        window: QMainWindow,
        session: Session,
        jobs: JobRunner,
        plugins: Callable[[], Plugins],
        settings: Settings,
    ) -> None:
        super().__init__(window, session, jobs, plugins)
        self.settings = settings  # the dialog starts from the last run's choices
        self.box: QMessageBox | None = None  # "Synthesis done" with its report button
        self.fidelity_dialog: FidelityDialog | None = None

    def choose_synthesis(self) -> SynthesisDialog:
        """Tools > Synthesize: the dialog remembers its last server, model, key variable, file."""
        prelabelers = list(self.plugins().prelabelers())
        dialog = SynthesisDialog(self.store, prelabelers, self.settings.synthesis, self.window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self.start_synthesis(dialog.request()))
        dialog.open()
        return dialog

    def start_synthesis(self, request: SynthesisRequest) -> SynthesisWorker | None:
        """Plan and run in a worker (its own Store): the graph is built and the questions read
        there too, so a large corpus or file never blocks the window; errors come as `failed`."""
        self.settings.synthesis = {
            "questions": str(request.questions),
            "base_url": request.connection.base_url,
            "model": request.connection.model,
            "api_key_env": request.connection.options["api_key_env"],
        }
        save_settings(self.settings)
        plugins = self.plugins()

        def plan(store: Store) -> int:
            return plan_run(
                store,
                plugins,
                read_questions(request.questions),
                request.graph.build(store),
                request.settings,
                request.connection,
            )

        worker = SynthesisWorker(self.store.path, plugins, request.connection, plan=plan)
        return self._run(worker, request.prelabeler)

    def choose_resume(self) -> ResumeDialog | None:
        """Tools > Resume Synthesis Run: the unfinished runs, newest first."""
        runs = unfinished_runs(self.store)
        if not runs:
            inform(self.window, "Resume", "Every synthesis run of this project is done.")
            return None
        dialog = ResumeDialog(runs, self.window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self.resume_synthesis(*dialog.chosen()))
        dialog.open()
        return dialog

    def resume_synthesis(self, run_id: int, connection: Connection) -> SynthesisWorker | None:
        worker = SynthesisWorker(self.store.path, self.plugins(), connection, run_id=run_id)
        return self._run(worker, None)

    def _run(self, worker: SynthesisWorker, prelabeler: str | None) -> SynthesisWorker | None:
        worker.succeeded.connect(lambda report: self._done(report, prelabeler))
        # A cancel or a failure keeps the traces finished so far: show them.
        worker.cancelled.connect(lambda _: self.traces_added.emit())
        worker.failed.connect(lambda _: self.traces_added.emit())
        return worker if self.jobs.start(worker) else None

    def _done(self, report: SynthesisReport, prelabeler: str | None) -> QMessageBox:
        """The corpus grew: show the new traces, then offer the fidelity report."""
        self.traces_added.emit()
        box = QMessageBox(
            QMessageBox.Icon.Information,
            "Synthesis done",
            f"Run {report.run_id}: {report.traces} of {report.items} traces, {report.steps} steps"
            f" ({report.generated} generated now, {report.resumed_steps} resumed).",
            QMessageBox.StandardButton.Close,
            self.window,
        )
        button = box.addButton("Fidelity Report", QMessageBox.ButtonRole.ActionRole)
        button.clicked.connect(lambda: self.start_fidelity(report.run_id, prelabeler))
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda _: setattr(self, "box", None))  # deleted on close
        box.open()
        self.box = box
        return box

    def start_fidelity(self, run_id: int, prelabeler: str | None = None) -> FidelityWorker | None:
        worker = FidelityWorker(self.store.path, self.plugins(), run_id, prelabeler)
        worker.succeeded.connect(self._fidelity_done)
        return worker if self.jobs.start(worker) else None

    def _fidelity_done(self, report: FidelityReport) -> FidelityDialog:
        """The measured labels are label events of a model annotator: the views show them."""
        self.labels_added.emit()
        dialog = FidelityDialog(report, self.window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.finished.connect(lambda _: setattr(self, "fidelity_dialog", None))
        dialog.open()
        self.fidelity_dialog = dialog
        return dialog
