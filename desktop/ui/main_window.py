"""The main window: trace list on the left, the keyboard-first trace view on the right.

Every user action is one call into `bondscope.services.labeling` (one transaction); the views
then refresh just the rows that changed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bondscope.plugin_manager import Plugins
from bondscope.services import labeling
from bondscope.services.demo import data_dir, save_settings
from bondscope.services.exporting import export_traces
from bondscope.services.importing import ImportReport
from bondscope.store import Store, StoreError
from bondscope.ui.bond_gutter import BOND_COLORS, BOND_NAMES, DEFAULT_SHOWN, BondGutter, trace_bonds
from bondscope.ui.minimap import Minimap
from bondscope.ui.target_picker import TargetPicker
from bondscope.ui.trace_list import TRACE_ID_ROLE, TraceTableModel
from bondscope.ui.trace_view import BEHAVIOR_COLORS, TraceView
from bondscope.ui.workers import ImportWorker
from PySide6.QtCore import QItemSelection, QModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QProgressDialog,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

SHORTCUTS = """\
<table cellpadding=3>
<tr><td><b>1 2 3 4</b> / <b>n d r e</b></td>
    <td>label N / D / R / E and go to the next step</td></tr>
<tr><td><b>Enter</b></td><td>accept the model's suggestion (hatched band) and go on</td></tr>
<tr><td><b>j k</b> / <b>&darr; &uarr;</b></td><td>next / previous step</td></tr>
<tr><td><b>]</b></td><td>next step without your label</td></tr>
<tr><td><b>Ctrl+Z</b> / <b>Ctrl+Shift+Z</b></td><td>undo / redo (also after a restart)</td></tr>
<tr><td><b>?</b></td><td>this help</td></tr>
</table>
<p>Labeling a step R asks for its target: the earlier step it revisits (1-9, Enter, or click).</p>
<p>Arcs left of the steps are bonds (yours bright, the model's faint; toggles in the View menu);
click one to go to the step it bonds to. The strip on the right is the whole trace: click to jump.
</p>
"""
BEHAVIOR_NAMES = {"N": "normal", "D": "deep", "R": "reflection", "E": "exploration"}


def legend_html(key_bindings: dict[str, str]) -> str:
    """The four behavior colors with the keys that set them, and the two bond colors."""
    parts = []
    for behavior, name in BEHAVIOR_NAMES.items():
        keys = "/".join(key for key, value in key_bindings.items() if value == behavior)
        color = BEHAVIOR_COLORS[behavior].name()
        parts.append(
            f"<span style='color:{color}'>&#9632;</span>&nbsp;<b>{behavior}</b>&nbsp;{name}"
            + (f"&nbsp;<code>[{keys}]</code>" if keys else "")
        )
    for type_ in ("hydrogen", "vdw"):
        color = BOND_COLORS[type_].name()
        parts.append(f"<span style='color:{color}'>&#8630;</span>&nbsp;{type_}")
    return "&nbsp;&nbsp;&nbsp;".join(parts)


class MainWindow(QMainWindow):
    def __init__(
        self,
        project: Path,
        annotator: str,
        settings: dict[str, Any],
        plugins: Plugins | None = None,
    ) -> None:
        super().__init__()
        self.annotator = annotator
        self.settings = settings
        self._plugins = plugins
        self.store: Store | None = None
        self.trace_id: int | None = None
        self.step_entered = time.monotonic()
        self.pending_target: int | None = None  # the R row whose target the picker asks for
        self.import_worker: ImportWorker | None = None
        self._build()
        self.open_project(project)

    # -- construction --------------------------------------------------------------------------

    def _build(self) -> None:
        self.filter_box = QLineEdit()
        self.filter_box.setPlaceholderText("Filter traces (name, model, source)")
        self.trace_model = TraceTableModel()
        self.trace_proxy = QSortFilterProxyModel()
        self.trace_proxy.setSourceModel(self.trace_model)
        self.trace_proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.trace_proxy.setFilterKeyColumn(-1)
        self.trace_proxy.setSortRole(Qt.ItemDataRole.EditRole)
        self.filter_box.textChanged.connect(self.trace_proxy.setFilterFixedString)
        self.trace_table = QTableView()
        self.trace_table.setModel(self.trace_proxy)
        self.trace_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.trace_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.trace_table.setSortingEnabled(True)
        self.trace_table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
        self.trace_table.verticalHeader().hide()
        self.trace_table.setWordWrap(False)
        # Names share long prefixes and end in what tells them apart: elide the middle.
        self.trace_table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        header = self.trace_table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column, width in ((1, 100), (2, 76)):  # the name starts with the model anyway
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(column, width)
        for column in (3, 4):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.trace_table.selectionModel().selectionChanged.connect(self._trace_selection_changed)

        # Questions can be pages long (agentic scenarios): scroll them in a few lines.
        self.question = QPlainTextEdit()
        self.question.setReadOnly(True)
        self.question.setMaximumHeight(5 * self.question.fontMetrics().lineSpacing())
        self.question.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.trace_view = TraceView(self.settings["key_bindings"])
        self.trace_view.selectionModel().currentChanged.connect(self._step_changed)
        self.trace_view.label_requested.connect(self.label_step)
        self.trace_view.accept_requested.connect(self.accept_suggestion)
        self.trace_view.undo_requested.connect(self.undo)
        self.trace_view.redo_requested.connect(self.redo)
        self.trace_view.help_requested.connect(self.show_shortcuts)
        self.bond_gutter = BondGutter(self.trace_view)
        self.minimap = Minimap(self.trace_view)
        self.legend = QLabel(legend_html(self.settings["key_bindings"]))
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.picker = TargetPicker(self)
        self.picker.picked.connect(self._target_picked)
        self.picker.finished.connect(self._picker_closed)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.filter_box)
        left_layout.addWidget(self.trace_table)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.question)
        right_layout.addWidget(self.legend)
        steps_row = QHBoxLayout()
        steps_row.setSpacing(0)
        steps_row.addWidget(self.bond_gutter)
        steps_row.addWidget(self.trace_view, 1)
        steps_row.addSpacing(2)
        steps_row.addWidget(self.minimap)
        right_layout.addLayout(steps_row, 1)
        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setSizes([500, 780])
        self.setCentralWidget(splitter)

        self.annotator_label = QLabel(f"annotator: {self.annotator}")
        self.statusBar().addPermanentWidget(self.annotator_label)
        self.shortcuts = QMessageBox(
            QMessageBox.Icon.NoIcon, "Keyboard shortcuts", SHORTCUTS, parent=self
        )
        self.import_dialog = QProgressDialog(self)
        self.import_dialog.setWindowModality(Qt.WindowModality.WindowModal)
        self.import_dialog.setMinimumDuration(300)
        self.import_dialog.reset()  # a new QProgressDialog shows itself after the delay
        self.import_dialog.canceled.connect(self._cancel_import)
        self._build_menus()
        self.resize(1280, 800)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        for text, slot, key in (
            ("&New Project…", self.new_project, QKeySequence.StandardKey.New),
            ("&Open Project…", self.choose_project, QKeySequence.StandardKey.Open),
            ("&Import Files…", self.choose_import_files, None),
            ("Import &Folder…", self.choose_import_folder, None),
            ("&Export…", self.choose_export, None),
            ("&Quit", self.close, QKeySequence.StandardKey.Quit),
        ):
            action = QAction(text, self)
            if key is not None:
                action.setShortcut(key)
            action.triggered.connect(slot)
            file_menu.addAction(action)
        edit_menu = self.menuBar().addMenu("&Edit")
        for text, slot, sequence in (
            ("&Undo", self.undo, "Ctrl+Z"),
            ("&Redo", self.redo, "Ctrl+Shift+Z"),
        ):
            action = QAction(text, self)
            action.setShortcut(QKeySequence(sequence))
            action.triggered.connect(slot)
            edit_menu.addAction(action)
        view_menu = self.menuBar().addMenu("&View")
        self.bond_actions: dict[str, QAction] = {}
        for type_, name in BOND_NAMES.items():
            action = QAction(name, self, checkable=True)
            action.setChecked(type_ in DEFAULT_SHOWN)
            action.toggled.connect(
                lambda shown, type_=type_: self.bond_gutter.set_type_shown(type_, shown)
            )
            view_menu.addAction(action)
            self.bond_actions[type_] = action
        self.others_action = QAction("Other Annotators' Bonds (faint)", self, checkable=True)
        self.others_action.setChecked(True)
        self.others_action.toggled.connect(self.bond_gutter.set_others_shown)
        view_menu.addAction(self.others_action)
        view_menu.addSeparator()
        self.minimap_action = QAction("&Minimap", self, checkable=True)
        self.minimap_action.setChecked(True)
        self.minimap_action.toggled.connect(self.minimap.setVisible)
        view_menu.addAction(self.minimap_action)
        help_menu = self.menuBar().addMenu("&Help")
        action = QAction("&Keyboard Shortcuts", self)
        action.triggered.connect(self.show_shortcuts)
        help_menu.addAction(action)

    @property
    def plugins(self) -> Plugins:
        """Loaded on first use: opening a project needs no plugins."""
        if self._plugins is None:
            self._plugins = Plugins()
        return self._plugins

    # -- projects and traces -------------------------------------------------------------------

    def open_project(self, path: Path) -> None:
        """Switch to another project file and remember it for the next start."""
        store = Store(path)
        if self.store is not None:
            self.store.close()
        self.store = store
        self.settings["last_project"] = str(path.resolve())
        save_settings(self.settings)
        self.setWindowTitle(f"Bondscope: {path.name}")
        self.trace_id = None
        self.reload_traces()

    def reload_traces(self) -> None:
        assert self.store is not None
        current = self.trace_id
        self.trace_model.set_rows(labeling.trace_rows(self.store, self.annotator))
        if not (current is not None and self.select_trace(current)) and self.trace_proxy.rowCount():
            self.trace_table.selectRow(0)

    def select_trace(self, trace_id: int) -> bool:
        """Select a trace in the list (clearing the filter if it hides it); False if unknown."""
        row = self.trace_model.row_of(trace_id)
        if row < 0:
            return False
        proxy_index = self.trace_proxy.mapFromSource(self.trace_model.index(row, 0))
        if not proxy_index.isValid():
            self.filter_box.clear()
            proxy_index = self.trace_proxy.mapFromSource(self.trace_model.index(row, 0))
        self.trace_table.selectRow(proxy_index.row())
        if self.trace_id != trace_id:  # selecting the selected row emits nothing
            self.load_trace(trace_id)
        return True

    def select_trace_named(self, name: str) -> bool:
        for row in self.trace_model.rows:
            if row.name == name:
                return self.select_trace(row.trace_id)
        return False

    def _trace_selection_changed(self, selected: QItemSelection, _: QItemSelection) -> None:
        indexes = selected.indexes()
        if indexes:
            trace_id = int(indexes[0].data(TRACE_ID_ROLE))
            if trace_id != self.trace_id:
                self.load_trace(trace_id)

    def load_trace(self, trace_id: int) -> None:
        assert self.store is not None
        text, question = self.store.conn.execute(
            "SELECT text, question FROM traces WHERE id = ?", (trace_id,)
        ).fetchone()
        self.trace_id = trace_id
        steps = labeling.load_steps(self.store, trace_id, self.annotator)
        self.question.setPlainText(question)
        self.trace_view.step_model.set_trace(text, steps)
        self.reload_bonds()
        self.trace_view.go_to(0)
        self.trace_view.setFocus()
        self.trace_model.set_labeled(trace_id, self.trace_view.step_model.labeled())
        self._show_position()

    def reload_bonds(self) -> None:
        """Re-read every annotator's bonds of the shown trace for the gutter (one query)."""
        assert self.store is not None and self.trace_id is not None
        rows = {step.step_id: row for row, step in enumerate(self.trace_view.step_model.steps)}
        self.bond_gutter.set_bonds(trace_bonds(self.store, self.trace_id, self.annotator, rows))

    # -- labeling --------------------------------------------------------------------------------

    def _step_changed(self, current: QModelIndex, _: QModelIndex) -> None:
        self.step_entered = time.monotonic()
        self._show_position()

    def _show_position(self) -> None:
        model = self.trace_view.step_model
        n = model.rowCount()
        row = self.trace_view.current_row()
        self.statusBar().showMessage(
            f"step {row} of {n}   {model.labeled()}/{n} labeled" if n else "no steps"
        )

    def label_step(self, row: int, behavior: str) -> None:
        """Store the label with the time spent on the step; R asks for a target, others go on."""
        assert self.store is not None
        seconds = time.monotonic() - self.step_entered
        step_id = self.trace_view.step_model.steps[row].step_id
        labeling.set_label(self.store, step_id, self.annotator, behavior, seconds)
        self.refresh_step(row)
        if behavior == "R" and row >= 2:
            self.ask_target(row)
        else:
            self.trace_view.go_to(row + 1)

    def accept_suggestion(self, row: int) -> None:
        suggestion = self.trace_view.step_model.steps[row].suggestion
        if suggestion is None:
            self.statusBar().showMessage(f"step {row} has no suggestion", 3000)
            return
        self.label_step(row, suggestion)

    def ask_target(self, row: int) -> None:
        model = self.trace_view.step_model
        texts = [model.step_text(i) for i in range(row + 1)]
        ranked = labeling.suggest_targets(texts, row)
        self.pending_target = row
        self.picker.ask(row, [(j, texts[j], score) for j, score in ranked])

    def _target_picked(self, target: int) -> None:
        assert self.store is not None and self.pending_target is not None
        steps = self.trace_view.step_model.steps
        row = self.pending_target
        labeling.set_bond(
            self.store, steps[row].step_id, steps[target].step_id, "hydrogen", self.annotator
        )
        self.refresh_step(row)

    def _picker_closed(self, _: int) -> None:
        if self.pending_target is not None:
            self.trace_view.go_to(self.pending_target + 1)
            self.pending_target = None
        self.trace_view.setFocus()

    def refresh_step(self, row: int) -> None:
        """Re-read one step from the store, so the view shows exactly what was committed."""
        assert self.store is not None and self.trace_id is not None
        model = self.trace_view.step_model
        (state,) = labeling.load_steps(
            self.store, self.trace_id, self.annotator, model.steps[row].step_id
        )
        bonds_changed = state.targets != model.steps[row].targets
        model.update_step(row, state)
        self.trace_view.repaint_row(row)
        self.minimap.refresh_row(row)
        if bonds_changed:  # a label alone never touches bonds: keep keystrokes cheap
            self.reload_bonds()
        self.trace_model.set_labeled(self.trace_id, model.labeled())
        self._show_position()

    def undo(self) -> None:
        assert self.store is not None
        self._show_change(labeling.undo(self.store, self.annotator), "undo")

    def redo(self) -> None:
        assert self.store is not None
        self._show_change(labeling.redo(self.store, self.annotator), "redo")

    def _show_change(self, change: labeling.Change | None, what: str) -> None:
        """Go to the step an undo/redo touched, in whatever trace it is."""
        assert self.store is not None
        if change is None:
            self.statusBar().showMessage(f"nothing to {what}", 3000)
            return
        trace_id, row = labeling.step_location(self.store, change.step_id)
        if trace_id != self.trace_id:
            self.select_trace(trace_id)
        else:
            self.refresh_step(row)
        self.trace_view.go_to(row)
        self.statusBar().showMessage(f"{what}: step {row}", 3000)

    def show_shortcuts(self) -> None:
        self.shortcuts.open()

    # -- file menu -------------------------------------------------------------------------------

    def new_project(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "New project", str(data_dir()), "Bondscope projects (*.bondscope)"
        )
        if path:
            self._open_or_warn(Path(path))

    def choose_project(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open project", str(data_dir()), "Bondscope projects (*.bondscope);;All (*)"
        )
        if path:
            self._open_or_warn(Path(path))

    def _open_or_warn(self, path: Path) -> None:
        try:
            self.open_project(path)
        except StoreError as error:
            QMessageBox.warning(self, "Cannot open project", str(error))

    def choose_import_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Import traces")
        if paths:
            self.start_import([Path(p) for p in paths])

    def choose_import_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Import a folder of traces")
        if path:
            self.start_import([Path(path)])

    def start_import(self, paths: list[Path]) -> ImportWorker:
        """Import in a worker thread with its own Store; the window stays responsive.

        The worker's signals go to this window's methods, so Qt queues them to the GUI thread.
        """
        assert self.store is not None
        worker = ImportWorker(self.store.path, paths, self.plugins)
        self.import_dialog.setLabelText("Importing…")
        self.import_dialog.setRange(0, 0)
        self.import_dialog.setValue(0)
        worker.started_work.connect(self._import_started)
        worker.advanced.connect(self._import_advanced)
        worker.succeeded.connect(self._import_done)
        worker.failed.connect(self._import_failed)
        worker.finished.connect(self.import_dialog.reset)
        self.import_worker = worker
        worker.start()
        return worker

    def _cancel_import(self) -> None:
        if self.import_worker is not None:
            self.import_worker.cancel()

    def _import_started(self, label: str, total: int) -> None:
        self.import_dialog.setLabelText(label)
        self.import_dialog.setMaximum(total)

    def _import_advanced(self, amount: int, note: str) -> None:
        self.import_dialog.setValue(self.import_dialog.value() + amount)
        if note:
            self.import_dialog.setLabelText(note)

    def _import_failed(self, message: str) -> None:
        QMessageBox.warning(self, "Import failed", message)

    def _import_done(self, report: ImportReport) -> None:
        self.reload_traces()
        self.statusBar().showMessage(
            f"imported {report.traces} traces, {report.steps} steps"
            + (f" ({report.duplicates} already there)" if report.duplicates else ""),
            5000,
        )

    def choose_export(self) -> None:
        assert self.store is not None
        formats = list(self.plugins.exporters())
        format_, ok = QInputDialog.getItem(self, "Export", "Format:", formats, 0, False)
        if not ok:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export to", str(Path.home()))
        if not path:
            return
        try:
            report = export_traces(self.store, self.plugins, format_, Path(path), overwrite=True)
        except Exception as error:  # noqa: BLE001 - plugins may raise anything; report it
            QMessageBox.warning(self, "Export failed", str(error))
            return
        self.statusBar().showMessage(f"exported {report.traces} traces to {report.out}", 5000)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.import_worker is not None and self.import_worker.isRunning():
            self.import_worker.cancel()
            self.import_worker.wait()
        if self.store is not None:
            self.store.close()
            self.store = None
        super().closeEvent(event)
