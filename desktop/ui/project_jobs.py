"""The File menu's New and Open Project, Import and Export, Tools > Pre-label, and the scheduled
backup: a file or plugin chosen, then a job on the window's runner (`bondscope.ui.workers`), the
same service calls the CLI makes."""

from __future__ import annotations

from pathlib import Path

from bondscope.backups import BACKUP_ERRORS, backup
from bondscope.services.demo import data_dir
from bondscope.services.exporting import ExportReport
from bondscope.services.importing import ImportReport
from bondscope.services.prelabeling import PrelabelReport
from bondscope.ui.jobs import JobFlow
from bondscope.ui.workers import ExportWorker, ImportWorker, PrelabelWorker
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox

DEFAULT_PRELABELER = "bondscope-minilm"  # the shipped classifier, as `bondscope prelabel`


class ProjectJobs(JobFlow):
    """Project files and the jobs over them; each job reports in the status bar when done."""

    project_chosen = Signal(object)  # a Path from New or Open Project: the window opens it

    def choose_new(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self.window, "New project", str(data_dir()), "Bondscope projects (*.bondscope)"
        )
        if path:
            self._chosen(Path(path))

    def choose_open(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self.window,
            "Open project",
            str(data_dir()),
            "Bondscope projects (*.bondscope);;All (*)",
        )
        if path:
            self._chosen(Path(path))

    def _chosen(self, path: Path) -> None:
        if self.jobs.busy():
            QMessageBox.information(
                self.window, "Busy", "Wait for the running job or cancel it first."
            )
            return
        self.project_chosen.emit(path)

    def backup(self) -> Path | None:
        """The scheduled backup of the open project; a failure (disk full, ...) is shown,
        never fatal."""
        if self.session.store is None:
            return None
        try:
            saved = backup(self.session.store, reason="scheduled")
        except BACKUP_ERRORS as error:
            self.window.statusBar().showMessage(f"backup failed: {error}", 10000)
            return None
        self.window.statusBar().showMessage(f"backed up to {saved.name}", 3000)
        return saved

    def choose_import_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self.window, "Import traces")
        if paths:
            self.start_import([Path(p) for p in paths])

    def choose_import_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self.window, "Import a folder of traces")
        if path:
            self.start_import([Path(path)])

    def start_import(self, paths: list[Path]) -> ImportWorker | None:
        """Import in a worker thread with its own Store; the window stays responsive."""
        worker = ImportWorker(self.store.path, paths, self.plugins())
        worker.succeeded.connect(self._imported)
        return worker if self.jobs.start(worker) else None

    def choose_export(self) -> None:
        formats = list(self.plugins().exporters())
        format_, ok = QInputDialog.getItem(self.window, "Export", "Format:", formats, 0, False)
        if not ok:
            return
        path, _ = QFileDialog.getSaveFileName(self.window, "Export to", str(Path.home()))
        if path:
            self.start_export(format_, Path(path))

    def start_export(self, format_: str, out: Path) -> ExportWorker | None:
        """Export in a worker thread; a cancel or failure leaves no file at `out`."""
        worker = ExportWorker(self.store.path, self.plugins(), format_, out)
        worker.succeeded.connect(self._exported)
        return worker if self.jobs.start(worker) else None

    def choose_prelabel(self, all_traces: bool) -> None:
        """Tools > Pre-label: pick a pre-labeler plugin, then run it on this trace or all."""
        names = list(self.plugins().prelabelers())
        if not names:
            QMessageBox.information(self.window, "Pre-label", "No pre-labeler plugin is installed.")
            return
        default = names.index(DEFAULT_PRELABELER) if DEFAULT_PRELABELER in names else 0
        name, ok = QInputDialog.getItem(
            self.window, "Pre-label", "Pre-labeler:", names, default, False
        )
        if ok:
            self.start_prelabel(name, None if all_traces else [self.session.trace_id])  # type: ignore[list-item]

    def start_prelabel(self, prelabeler: str, trace_ids: list[int] | None) -> PrelabelWorker | None:
        """Pre-label in a worker thread; the hints (hatched bands, `}`) refresh when it ends."""
        worker = PrelabelWorker(self.store.path, self.plugins(), prelabeler, trace_ids)
        worker.succeeded.connect(self._prelabeled)
        return worker if self.jobs.start(worker) else None

    def _imported(self, report: ImportReport) -> None:
        self.traces_added.emit()
        self.notice(
            f"imported {report.traces} traces, {report.steps} steps"
            + (f" ({report.duplicates} already there)" if report.duplicates else "")
        )

    def _prelabeled(self, report: PrelabelReport) -> None:
        """The window re-reads the list (uncertainty) and the shown trace's hints."""
        self.labels_added.emit()
        self.notice(
            f"pre-labeling {report.status}: {report.traces} traces, {report.steps} steps"
            f" as {report.annotator}"
        )

    def _exported(self, report: ExportReport) -> None:
        self.notice(f"exported {report.traces} traces to {report.out}")
