"""The main window: trace list on the left, the keyboard-first trace view on the right.

Every user action is one call into `bondscope.services.labeling` (one transaction); the views
then refresh just the rows that changed.
"""

from __future__ import annotations

import sqlite3
import time
from html import escape
from pathlib import Path
from typing import Any

from bondscope.backups import backup
from bondscope.plugin_manager import Plugins
from bondscope.services import labeling, trace_list
from bondscope.services.demo import DEFAULT_SHORTCUTS, data_dir, save_settings
from bondscope.services.exporting import ExportReport
from bondscope.services.importing import ImportReport
from bondscope.services.packs import pack_description
from bondscope.services.structure import CorpusSnapshot, corpus_snapshot
from bondscope.store import Store, StoreBusy, StoreError
from bondscope.ui.adjudicate import AdjudicateDialog
from bondscope.ui.annotator import AnnotatorDialog
from bondscope.ui.bond_gutter import BOND_COLORS, BOND_NAMES, DEFAULT_SHOWN, BondGutter, trace_bonds
from bondscope.ui.embeddings import StepEmbeddings
from bondscope.ui.metrics import MetricsPanel
from bondscope.ui.minimap import Minimap
from bondscope.ui.review import AcceptDialog, ReviewQueue
from bondscope.ui.shortcuts import ShortcutsDialog, action_keys, help_html, key_map, store_keys
from bondscope.ui.structure_panel import CorpusTally, StructurePanel, Tally
from bondscope.ui.synthesis import (
    FidelityDialog,
    ResumeDialog,
    SynthesisDialog,
    SynthesisRequest,
    unfinished_runs,
)
from bondscope.ui.target_picker import TargetPicker
from bondscope.ui.trace_list import (
    AGREEMENT,
    PERCENT,
    TRACE_ID_ROLE,
    UNCERTAINTY,
    ProgressDelegate,
    ProjectProgress,
    TraceTableModel,
)
from bondscope.ui.trace_view import BEHAVIOR_COLORS, TraceView
from bondscope.ui.workers import (
    CallWorker,
    ExportWorker,
    FidelityWorker,
    ImportWorker,
    PrelabelWorker,
    ServiceWorker,
    SynthesisWorker,
    call_in_child,
)
from PySide6.QtCore import (
    QByteArray,
    QItemSelection,
    QModelIndex,
    QRect,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QDockWidget,
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

CORPUS_DEBOUNCE_MS = 400  # the corpus side of the structure panel waits for a pause in labeling
BACKUP_INTERVAL_MS = 30 * 60 * 1000  # scheduled backups of the open project, newest 10 kept
ENCODE_DELAY_MS = 500  # a trace shown this long gets its steps encoded for the target picker
DEFAULT_PRELABELER = "bondscope-minilm"  # the shipped classifier, as `bondscope prelabel`
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
    worker_starting = Signal(object)  # a ServiceWorker, connected but not yet started

    def __init__(
        self,
        project: Path,
        annotator: str,
        settings: dict[str, Any],
        plugins: Plugins | None = None,
        remember_layout: bool = True,
    ) -> None:
        """`remember_layout`: restore the last session's geometry and docks, save them on close
        (off for screenshots, which show the default layout and leave the saved one alone)."""
        super().__init__()
        self.annotator = annotator
        self.own_annotator = annotator  # who labels outside work packs (see open_project)
        self.settings = settings
        self.settings.setdefault(
            "shortcuts", {action: list(keys) for action, keys in DEFAULT_SHORTCUTS.items()}
        )
        self._plugins = plugins
        self.store: Store | None = None
        self.trace_id: int | None = None
        self.step_entered = time.monotonic()
        self.pending_target: int | None = None  # the R row whose target the picker asks for
        self.worker: ServiceWorker | None = None  # the one background job (import, export, ...)
        self.synthesis_box: QMessageBox | None = None  # "Synthesis done" with its report button
        self.fidelity_dialog: FidelityDialog | None = None
        # Step embeddings for the R-target picker (settings "target_embeddings": false: TF-IDF).
        self.embeddings = StepEmbeddings()
        self.embeddings.failed.connect(lambda text: self.statusBar().showMessage(text, 5000))
        self.remember_layout = remember_layout
        self._build()
        self.open_project(project)
        if remember_layout:
            self._restore_layout()

    # -- construction --------------------------------------------------------------------------

    def _build(self) -> None:
        self.filter_box = QLineEdit()
        self.filter_box.setPlaceholderText("Filter traces (name, model, source)")
        self.filter_box.setClearButtonEnabled(True)
        self.trace_model = TraceTableModel()  # lazy: sorts and filters itself (no proxy)
        self.trace_model.figures_ready.connect(self._show_project_progress)
        self.trace_model.figures_failed.connect(self._figures_failed)
        self.filter_box.textChanged.connect(self.trace_model.set_filter)
        # Typing filters and stays in the box; Enter or Down hands the keyboard to the steps.
        self.filter_box.returnPressed.connect(self.trace_view_focus)
        QShortcut(QKeySequence(Qt.Key.Key_Down), self.filter_box, self.trace_view_focus).setContext(
            Qt.ShortcutContext.WidgetShortcut
        )
        self.trace_table = QTableView()
        self.trace_table.setModel(self.trace_model)
        self.trace_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.trace_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.trace_table.setSortingEnabled(True)
        self.trace_table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
        self.trace_table.verticalHeader().hide()
        self.trace_table.setWordWrap(False)
        self.trace_table.setItemDelegateForColumn(PERCENT, ProgressDelegate(self.trace_table))
        # Elide at the end: the model has a column of its own, and a middle elision cut exactly
        # the part ("correct_" / "incorrect_") that tells copies apart.
        self.trace_table.setTextElideMode(Qt.TextElideMode.ElideRight)
        header = self.trace_table.horizontalHeader()
        for column, width in ((0, 150), (1, 80), (2, 60)):  # the name starts with the model
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(column, width)
        # The figures are narrower than their titles: size them by the header, not the rows
        # (fitting rows to contents reads every row's figures while the table is not shown yet,
        # and a live ResizeToContents re-measures every row on each label's dataChanged).
        for column in (3, PERCENT, UNCERTAINTY, AGREEMENT):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(column, header.sectionSizeHint(column))
        self.trace_table.selectionModel().selectionChanged.connect(self._trace_selection_changed)

        # Questions can be pages long (agentic scenarios): scroll them in a few lines.
        self.question = QPlainTextEdit()
        self.question.setReadOnly(True)
        self.question.setMaximumHeight(5 * self.question.fontMetrics().lineSpacing())
        self.question.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.trace_view = TraceView(key_map(self.settings))
        self.trace_view.selectionModel().currentChanged.connect(self._step_changed)
        self.trace_view.label_requested.connect(self.label_step)
        self.trace_view.accept_requested.connect(self.accept_suggestion)
        self.trace_view.clear_requested.connect(self.clear_step)
        self.trace_view.undo_requested.connect(self.undo)
        self.trace_view.redo_requested.connect(self.redo)
        self.trace_view.help_requested.connect(self.show_shortcuts)
        self.trace_view.notice.connect(lambda text: self.statusBar().showMessage(text, 3000))
        self.bond_gutter = BondGutter(self.trace_view)
        self.minimap = Minimap(self.trace_view)
        self.legend = QLabel(legend_html(self.settings["key_bindings"]))
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.picker = TargetPicker(self)
        self.picker.picked.connect(self._target_picked)
        self.picker.removed.connect(lambda: self._target_picked(None))
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
        splitter.setSizes([520, 600])
        self.setCentralWidget(splitter)

        self.structure = StructurePanel()
        self.structure_dock = QDockWidget("Structure", self)
        self.structure_dock.setObjectName("structure")
        self.structure_dock.setWidget(self.structure)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.structure_dock)
        self.resizeDocks([self.structure_dock], [380], Qt.Orientation.Horizontal)
        self.structure_dock.visibilityChanged.connect(self._structure_shown)
        # Metrics: hidden until View > Metrics; computes in worker threads, only while shown.
        # Its panel is built when first shown (`metrics`): twelve plots, ~1 s of start-up.
        self._metrics: MetricsPanel | None = None
        self.metrics_dock = QDockWidget("Metrics", self)
        self.metrics_dock.setObjectName("metrics")
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.metrics_dock)
        self.tabifyDockWidget(self.structure_dock, self.metrics_dock)
        self.structure_dock.raise_()
        self.metrics_dock.hide()
        self.metrics_dock.visibilityChanged.connect(self._metrics_shown)
        # Review queue: hidden until Tools > Review Queue; re-read after labels (debounced).
        self.review = ReviewQueue()
        self.review.step_requested.connect(self.show_step)
        self.review_dock = QDockWidget("Review queue", self)
        self.review_dock.setObjectName("review")
        self.review_dock.setWidget(self.review)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.review_dock)
        self.tabifyDockWidget(self.structure_dock, self.review_dock)
        self.structure_dock.raise_()
        self.review_dock.hide()
        self.review_dock.visibilityChanged.connect(
            lambda visible: self.refresh_review() if visible else None
        )
        self.corpus_worker: CallWorker | None = None  # the corpus snapshot, off the GUI thread
        self.corpus_again = False  # asked again while it ran: count once more
        self.corpus_tally: CorpusTally | None = None  # the snapshot plus the labels since
        # The step encoder starts once a trace has been shown for a moment: paging through
        # traces or taking a screenshot never starts it, and start-up paints first.
        self.encode_timer = QTimer(self)
        self.encode_timer.setSingleShot(True)
        self.encode_timer.setInterval(ENCODE_DELAY_MS)
        self.encode_timer.timeout.connect(self.encode_steps)
        self.corpus_timer = QTimer(self)
        self.corpus_timer.setSingleShot(True)
        self.corpus_timer.setInterval(CORPUS_DEBOUNCE_MS)
        self.corpus_timer.timeout.connect(self.refresh_corpus)
        # The trace side follows each label on the next turn of the event loop, not inside the
        # keystroke: a held key coalesces into one redraw.
        self.trace_structure_timer = QTimer(self)
        self.trace_structure_timer.setSingleShot(True)
        self.trace_structure_timer.setInterval(0)
        self.trace_structure_timer.timeout.connect(self.refresh_trace_structure)

        # A rotating backup of the open project while the app runs (bondscope.backups).
        self.backup_timer = QTimer(self)
        self.backup_timer.setInterval(BACKUP_INTERVAL_MS)
        self.backup_timer.timeout.connect(self.backup_project)
        self.backup_timer.start()

        self.project_progress = ProjectProgress()
        self.statusBar().addPermanentWidget(self.project_progress)
        self.annotator_label = QLabel(f"annotator: {self.annotator}")
        self.annotator_label.setTextFormat(Qt.TextFormat.PlainText)  # a name is never markup
        self.statusBar().addPermanentWidget(self.annotator_label)
        self.shortcuts = QMessageBox(
            QMessageBox.Icon.NoIcon, "Keyboard shortcuts", help_html(self.settings), parent=self
        )
        self.progress_dialog = QProgressDialog(self)
        self.progress_dialog.setWindowModality(Qt.WindowModality.WindowModal)
        self.progress_dialog.setMinimumDuration(300)
        self.progress_dialog.setAutoReset(False)  # a worker's `finished` closes it, nothing else
        self.progress_dialog.reset()  # a new QProgressDialog shows itself after the delay
        self.progress_dialog.canceled.connect(self._cancel_worker)
        self._build_menus()
        self.resize(self._initial_size())

    def _initial_size(self) -> QSize:
        """1440x860, shrunk to 95 % of a smaller screen so no dock starts off-screen.

        The offscreen platform reports an 800x600 screen; screenshots and tests keep the full size.
        """
        wanted = QSize(1440, 860)
        screen = QGuiApplication.primaryScreen()
        if screen is None or QGuiApplication.platformName() == "offscreen":
            return wanted
        available = screen.availableGeometry().size() * 0.95
        return wanted.boundedTo(available)

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
        self.edit_actions: dict[str, QAction] = {}
        for name, text, slot in (("undo", "&Undo", self.undo), ("redo", "&Redo", self.redo)):
            action = QAction(text, self)
            action.triggered.connect(slot)
            edit_menu.addAction(action)
            self.edit_actions[name] = action
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
        view_menu.addAction(self.structure_dock.toggleViewAction())
        view_menu.addAction(self.structure.export_action)
        metrics_action = self.metrics_dock.toggleViewAction()
        metrics_action.setText("&Metrics")
        metrics_action.triggered.connect(self._metrics_toggled)
        view_menu.addAction(metrics_action)
        self.tools_menu = self.menuBar().addMenu("&Tools")
        self.prelabel_trace_action = QAction("Pre-label &This Trace…", self)
        self.prelabel_trace_action.triggered.connect(lambda: self.choose_prelabel(all_traces=False))
        self.prelabel_all_action = QAction("Pre-label &All Traces…", self)
        self.prelabel_all_action.triggered.connect(lambda: self.choose_prelabel(all_traces=True))
        self.tools_menu.addAction(self.prelabel_trace_action)
        self.tools_menu.addAction(self.prelabel_all_action)
        self.tools_menu.addSeparator()
        self.review_action = QAction("Review &Queue…", self)
        self.review_action.triggered.connect(self.show_review_queue)
        self.tools_menu.addAction(self.review_action)
        self.accept_action = QAction("Accept Suggestions &Above…", self)
        self.accept_action.triggered.connect(self.choose_accept)
        self.tools_menu.addAction(self.accept_action)
        self.adjudicate_action = QAction("A&djudicate…", self)
        self.adjudicate_action.triggered.connect(self.show_adjudicate)
        self.tools_menu.addAction(self.adjudicate_action)
        self.tools_menu.addSeparator()
        self.synthesize_action = QAction("&Synthesize…", self)
        self.synthesize_action.triggered.connect(self.choose_synthesis)
        self.tools_menu.addAction(self.synthesize_action)
        self.resume_action = QAction("&Resume Synthesis Run…", self)
        self.resume_action.triggered.connect(self.choose_resume)
        self.tools_menu.addAction(self.resume_action)
        settings_menu = self.menuBar().addMenu("&Settings")
        self.shortcuts_action = QAction("&Shortcuts…", self)
        self.shortcuts_action.triggered.connect(self.edit_shortcuts)
        settings_menu.addAction(self.shortcuts_action)
        self.annotator_action = QAction("&Annotator…", self)
        self.annotator_action.triggered.connect(self.edit_annotator)
        settings_menu.addAction(self.annotator_action)
        help_menu = self.menuBar().addMenu("&Help")
        action = QAction("&Keyboard Shortcuts", self)
        action.triggered.connect(self.show_shortcuts)
        help_menu.addAction(action)
        self.apply_shortcuts()

    @property
    def metrics(self) -> MetricsPanel:
        """The Metrics dock's panel, built on first use and told the project and trace."""
        if self._metrics is None:
            panel = MetricsPanel(self.annotator)
            panel.step_requested.connect(self._metrics_step)
            if self.store is not None:
                panel.set_project(self.store.path, self.store)
            if self.trace_id is not None:
                panel.set_trace(self.trace_id)
            self.metrics_dock.setWidget(panel)
            self._metrics = panel
        return self._metrics

    def _metrics_shown(self, visible: bool) -> None:
        if visible or self._metrics is not None:
            self.metrics.set_live(visible, self.store)

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
        pack = pack_description(store)  # a work pack is labeled as its annotator, this session
        self.annotator = pack[1] if pack else self.own_annotator
        self.annotator_label.setText(f"annotator: {self.annotator}" + (" (pack)" if pack else ""))
        self.trace_id = None
        if self._metrics is not None:  # built later, the panel takes self.annotator then
            self._metrics.me = self.annotator
            self._metrics.set_project(path, store)
        self.reload_traces()
        self.refresh_corpus()

    def backup_project(self) -> Path | None:
        """The scheduled backup; a failure (disk full, ...) is shown, never fatal."""
        if self.store is None:
            return None
        try:
            saved = backup(self.store, reason="scheduled")
        except (OSError, sqlite3.Error) as error:
            self.statusBar().showMessage(f"backup failed: {error}", 10000)
            return None
        self.statusBar().showMessage(f"backed up to {saved.name}", 3000)
        return saved

    def reload_traces(self) -> None:
        """Re-read the list (ids and names now, figures in the background), keeping the trace."""
        assert self.store is not None
        current = self.trace_id
        self.trace_model.open(self.store, self.annotator)
        self.corpus_tally = None  # traces came or went: count the corpus afresh
        self._show_project_progress()
        if not (current is not None and self.select_trace(current)) and self.trace_model.rowCount():
            self.trace_table.selectRow(0)

    def select_trace(self, trace_id: int) -> bool:
        """Select a trace in the list (clearing the filter if it hides it); False if unknown."""
        if self.trace_model.position_of(trace_id) < 0:
            return False
        if self.trace_model.row_of(trace_id) < 0:
            self.filter_box.clear()
        self.trace_table.selectRow(self.trace_model.row_of(trace_id))
        if self.trace_id != trace_id:  # selecting the selected row emits nothing
            self.load_trace(trace_id)
        return True

    def select_trace_named(self, name: str) -> bool:
        assert self.store is not None
        trace_id = trace_list.trace_id_named(self.store, name)
        return trace_id is not None and self.select_trace(trace_id)

    def background_busy(self) -> bool:
        """Figures of the project (list, corpus) are still being computed off the GUI thread."""
        return self.trace_model.busy() or self.corpus_worker is not None

    def settle(self) -> None:
        """Wait for the background figures and show them (screenshots): nothing is pending."""
        self.trace_model.wait()
        while self.corpus_worker is not None:
            self.corpus_worker.wait()
            QApplication.processEvents()

    def _trace_selection_changed(self, selected: QItemSelection, _: QItemSelection) -> None:
        indexes = selected.indexes()
        if indexes:
            trace_id = int(indexes[0].data(TRACE_ID_ROLE))
            if trace_id != self.trace_id:
                self.load_trace(trace_id)

    def load_trace(self, trace_id: int) -> None:
        assert self.store is not None
        text, question = trace_list.trace_text(self.store, trace_id)
        tally = self.corpus_tally
        if tally is not None and tally.annotator == self.annotator:
            tally.leave(self._my_counts())  # the trace's label changes join the corpus base
        elif tally is not None and self._my_counts()[0].sum():
            self.corpus_tally = None  # I labeled while the model's labels stood for the corpus
        self.trace_id = trace_id
        steps = labeling.load_steps(self.store, trace_id, self.annotator)
        self.question.setPlainText(question)
        self.trace_view.step_model.set_trace(text, steps)
        if self.corpus_tally is not None:
            self.corpus_tally.enter(trace_id, self._my_counts())
        if self.settings.get("target_embeddings", True):
            self.encode_timer.start()
        self.reload_bonds()
        self.trace_view.go_to(0)
        if not isinstance(QApplication.focusWidget(), QLineEdit):  # never while typing a filter
            self.trace_view.setFocus()
        self._show_progress()
        self.refresh_trace_structure()
        if self._metrics is not None:
            self._metrics.set_trace(trace_id)
        self._show_position()

    def encode_steps(self) -> None:
        """Ask for the shown trace's step embeddings (encoded in a low-priority thread)."""
        if self.trace_id is not None:
            model = self.trace_view.step_model
            texts = [model.step_text(i) for i in range(model.rowCount())]
            self.embeddings.request(self.trace_id, texts)

    def reload_bonds(self) -> None:
        """Re-read every annotator's bonds of the shown trace for the gutter (one query)."""
        assert self.store is not None and self.trace_id is not None
        rows = {step.step_id: row for row, step in enumerate(self.trace_view.step_model.steps)}
        self.bond_gutter.set_bonds(trace_bonds(self.store, self.trace_id, self.annotator, rows))

    # -- structure panel -------------------------------------------------------------------------

    def refresh_trace_structure(self) -> None:
        """The panel's trace side, from the labels in memory (skipped while the dock is hidden)."""
        if not self.structure_dock.isVisible():
            return
        labels, mine = self.trace_view.step_model.shown_labels()
        behaviors, transitions = labeling.label_counts(labels)
        who = self.annotator if mine else "model suggestions"
        self.structure.trace.set_counts(
            behaviors, transitions, f"<b>This trace</b> ({who}, {behaviors.sum()} steps)"
        )

    def _my_counts(self) -> Tally:
        """My labels of the shown trace, counted as the corpus counts them."""
        return labeling.label_counts([step.label for step in self.trace_view.step_model.steps])

    def refresh_corpus(self) -> None:
        """The panel's corpus side: my labels over the project, or the newest model's when I
        have none yet. Called on a debounce timer after labeling, never per keystroke: it adds
        the shown trace's label changes to the last snapshot (CorpusTally); a snapshot is
        counted in a worker thread (structure.corpus_snapshot) when there is none or it shows
        the model's labels and I have labeled. The metrics dock hears of it here."""
        if self.store is not None and self._metrics is not None:
            self._metrics.labels_changed(self.store)
        if self.store is not None:
            self.refresh_review()
        if self.store is None or not self.structure_dock.isVisible():
            return
        tally = self.corpus_tally
        if tally is not None and (
            tally.annotator == self.annotator or not self._my_counts()[0].sum()
        ):
            self._show_corpus_tally()
            return
        if self.corpus_worker is not None:
            self.corpus_again = True
            return
        kwargs = {"annotator": self.annotator, "trace_id": self.trace_id}
        large = self.trace_model.large()

        def job(store: Store) -> CorpusSnapshot:
            if large:  # one scan of millions of labels: in a child, off this process's GIL
                return call_in_child(store.path, corpus_snapshot, kwargs, CorpusSnapshot)
            return corpus_snapshot(store, **kwargs)

        worker = CallWorker(self.store.path, job)
        worker.succeeded.connect(self._corpus_counted)
        worker.finished.connect(lambda: self._corpus_done(worker))
        self.corpus_worker = worker
        worker.start()

    def _corpus_done(self, worker: CallWorker) -> None:
        worker.wait()  # `finished` comes just before the thread ends
        worker.deleteLater()
        if self.corpus_worker is worker:
            self.corpus_worker = None
            if self.corpus_again:
                self.corpus_again = False
                self.refresh_corpus()

    def _corpus_counted(self, snapshot: CorpusSnapshot) -> None:
        if snapshot.trace_id != self.trace_id or self.corpus_again:
            self.corpus_again = True  # another trace is shown by now, or labels moved on
            return
        self.corpus_tally = CorpusTally(snapshot)
        self._show_corpus_tally()

    def _show_corpus_tally(self) -> None:
        tally = self.corpus_tally
        assert tally is not None
        behaviors, transitions, traces = tally.shown(self._my_counts())
        if tally.annotator != self.annotator:  # the model's labels: mine do not change them
            behaviors, transitions, traces = tally.behaviors, tally.transitions, tally.traces
        self.structure.corpus.set_counts(
            behaviors,
            transitions,
            f"<b>Corpus</b> ({tally.annotator}, {traces} trace{'s' * (traces != 1)},"
            f" {behaviors.sum()} steps)",
        )

    def _structure_shown(self, visible: bool) -> None:
        if visible:  # catch up on what changed while hidden
            self.refresh_trace_structure()
            self.refresh_corpus()

    def _metrics_toggled(self, shown: bool) -> None:
        """View > Metrics: bring the dock to the front of its tab group, wide enough to read."""
        if shown:
            self.metrics_dock.raise_()
            self.resizeDocks([self.metrics_dock], [640], Qt.Orientation.Horizontal)

    def _metrics_step(self, row: int) -> None:
        """A step clicked on the geometry map: go there in the trace view."""
        self.trace_view.go_to(row)
        self.trace_view.setFocus()

    # -- active learning -------------------------------------------------------------------------

    def show_review_queue(self) -> ReviewQueue:
        """Tools > Review Queue: the dock in front, its list fresh; the keyboard stays on the
        steps (a click or double-click in the queue goes there)."""
        focus = QApplication.focusWidget()
        self.review_dock.show()
        self.review_dock.raise_()
        self.refresh_review()
        (focus or self.trace_view).setFocus()
        return self.review

    def refresh_review(self) -> None:
        """Re-read the queue in its worker thread, only while it is shown (after the corpus
        debounce, never inside a keystroke)."""
        if self.store is not None and self.review_dock.isVisible():
            self.review.refresh(self.store.path, self.annotator)

    def show_step(self, trace_id: int, row: int) -> None:
        """Go to a step of any trace (from the review queue) and hand the keyboard to it."""
        if self.select_trace(trace_id):
            self.trace_view.go_to(row)
            self.trace_view.setFocus()

    def choose_accept(self) -> AcceptDialog | None:
        """Tools > Accept Suggestions Above: the newest model's suggestions become mine."""
        assert self.store is not None
        model = labeling.newest_model_annotator(self.store)
        if model is None:
            self._inform("Accept suggestions", "No model suggestions yet.")
            return None
        dialog = AcceptDialog(self.store, model, self.annotator, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted_count.connect(self._suggestions_accepted)
        dialog.open()
        return dialog

    def show_adjudicate(self) -> AdjudicateDialog | None:
        """Tools > Adjudicate: settle this trace's disputed steps; I am the one who decides."""
        if self.store is None or self.trace_id is None:
            return None
        dialog = AdjudicateDialog(self.store, self.trace_id, self.annotator, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.decided.connect(lambda _: self.reload_labels())
        dialog.open()
        return dialog

    def _suggestions_accepted(self, count: int) -> None:
        self.reload_labels()
        self.statusBar().showMessage(f"accepted {count:,} suggestions as {self.annotator}", 5000)

    def reload_labels(self) -> None:
        """Labels changed outside the keystroke path: re-read the list, the shown trace (keeping
        the position), the structure panel and the review queue."""
        assert self.store is not None
        row = self.trace_view.current_row()
        trace_id, self.trace_id = self.trace_id, None
        self.corpus_tally = None  # labels changed outside the keyboard path
        self.trace_model.open(self.store, self.annotator)
        self._show_project_progress()
        if trace_id is not None:
            self.select_trace(trace_id)
            self.trace_view.go_to(row)
        self.refresh_corpus()

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

    def _show_progress(self) -> None:
        """The shown trace's row in the list, then the project total in the status bar."""
        if self.trace_id is not None:
            model = self.trace_view.step_model
            self.trace_model.set_progress(self.trace_id, model.labeled(), model.agreement())
        self._show_project_progress()

    def _figures_failed(self, message: str) -> None:
        self.statusBar().showMessage(f"could not count the project's steps: {message}", 5000)
        self._show_project_progress()

    def _show_project_progress(self) -> None:
        self.project_progress.set_progress(self.trace_model.totals())

    def label_step(self, row: int, behavior: str) -> None:
        """Store the label with the time spent on the step; R asks for a target, others go on."""
        assert self.store is not None
        seconds = time.monotonic() - self.step_entered
        step_id = self.trace_view.step_model.steps[row].step_id
        try:
            labeling.set_label(self.store, step_id, self.annotator, behavior, seconds)
        except StoreBusy as error:
            self._store_busy(error)
            return
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
        embeddings = (
            self.embeddings.get(self.trace_id, model.rowCount())
            if self.trace_id is not None
            else None
        )
        if embeddings is not None:  # ready: rank by meaning
            ranked, how = labeling.rank_targets_by_embedding(embeddings, row), "embedding"
        else:  # not yet (or no encoder): never wait for it, rank by shared words
            ranked, how = labeling.suggest_targets(texts, row), "TF-IDF"
        self.pending_target = row
        rect = self.trace_view.visualRect(model.index(row))
        on_screen = QRect(self.trace_view.viewport().mapToGlobal(rect.topLeft()), rect.size())
        self.picker.ask(row, [(j, texts[j], score) for j, score in ranked], how, on_screen)

    def _target_picked(self, target: int | None) -> None:
        """The step's target becomes the picked one (None: no target), replacing any other."""
        assert self.store is not None and self.pending_target is not None
        steps = self.trace_view.step_model.steps
        row = self.pending_target
        to_step = None if target is None else steps[target].step_id
        try:
            labeling.set_target(self.store, steps[row].step_id, to_step, self.annotator)
        except StoreBusy as error:
            self._store_busy(error)
            return
        self.refresh_step(row)

    def clear_step(self, row: int) -> None:
        """Remove my label (and an R step's target) from the step; undo brings both back."""
        assert self.store is not None
        step_id = self.trace_view.step_model.steps[row].step_id
        try:
            labeling.set_label(self.store, step_id, self.annotator, None)
        except StoreBusy as error:
            self._store_busy(error)
            return
        self.refresh_step(row)

    def trace_view_focus(self) -> None:
        self.trace_view.setFocus()

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
        self._show_progress()
        if not self.trace_structure_timer.isActive():
            self.trace_structure_timer.start()
        self.corpus_timer.start()  # (re)start: the corpus follows once labeling pauses
        self._show_position()

    def undo(self) -> None:
        assert self.store is not None
        try:
            self._show_change(labeling.undo(self.store, self.annotator), "undo")
        except StoreBusy as error:
            self._store_busy(error)

    def redo(self) -> None:
        assert self.store is not None
        try:
            self._show_change(labeling.redo(self.store, self.annotator), "redo")
        except StoreBusy as error:
            self._store_busy(error)

    def _store_busy(self, error: StoreBusy) -> None:
        """Another process held the project past the busy timeout: say the change was not
        saved (the view still shows what is stored) instead of failing."""
        self.statusBar().showMessage(f"not saved: {error}", 15000)

    def _show_change(self, change: labeling.Change | None, what: str) -> None:
        """Go to the step an undo/redo touched, in whatever trace it is."""
        assert self.store is not None
        if change is None:
            self.statusBar().showMessage(f"nothing to {what}", 3000)
            return
        trace_id, row = labeling.step_location(self.store, change.step_id)
        self.corpus_tally = None  # the change may be in a trace that is not shown
        if trace_id != self.trace_id:
            self.select_trace(trace_id)
            self.corpus_timer.start()
        else:
            self.refresh_step(row)
        self.trace_view.go_to(row)
        self.statusBar().showMessage(f"{what}: step {row}", 3000)

    def show_shortcuts(self) -> None:
        self.shortcuts.open()

    # -- settings --------------------------------------------------------------------------------

    def apply_shortcuts(self) -> None:
        """Make the settings' key bindings live: the trace view, menus, legend and help."""
        self.trace_view.keys = key_map(self.settings)
        keys = action_keys(self.settings)
        for name, action in self.edit_actions.items():
            action.setShortcuts([QKeySequence(key) for key in keys[name]])
        self.legend.setText(legend_html(self.settings["key_bindings"]))
        self.shortcuts.setText(help_html(self.settings))

    def edit_shortcuts(self) -> ShortcutsDialog:
        """Settings > Shortcuts: OK saves to the settings file and applies at once."""
        dialog = ShortcutsDialog(self.settings, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self.set_shortcuts(dialog.keys()))
        dialog.open()
        return dialog

    def set_shortcuts(self, keys: dict[str, list[str]]) -> None:
        store_keys(self.settings, keys)
        save_settings(self.settings)
        self.apply_shortcuts()

    def edit_annotator(self) -> AnnotatorDialog:
        """Settings > Annotator: labels from then on are stored under the new name."""
        dialog = AnnotatorDialog(self.annotator, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self.set_annotator(dialog.name()))
        dialog.open()
        return dialog

    def set_annotator(self, name: str) -> None:
        """Switch annotator: save it, and re-read labels, progress and structure as theirs."""
        if not name or name == self.annotator:
            return
        self.annotator = self.own_annotator = name
        self.settings["annotator"] = name
        save_settings(self.settings)
        self.annotator_label.setText(f"annotator: {name}")
        if self._metrics is not None:
            self._metrics.me = name
        trace_id, self.trace_id = self.trace_id, None
        self.corpus_tally = None  # another annotator's labels
        self.trace_model.open(self.store, name)  # type: ignore[arg-type]
        self._show_project_progress()
        if trace_id is not None:
            self.select_trace(trace_id)
        self.refresh_corpus()

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
        if self.worker is not None and self.worker.isRunning():
            QMessageBox.information(self, "Busy", "Wait for the running job or cancel it first.")
            return
        try:
            self.open_project(path)
        except StoreError as error:
            QMessageBox.warning(self, "Cannot open project", escape(str(error)))

    def choose_import_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Import traces")
        if paths:
            self.start_import([Path(p) for p in paths])

    def choose_import_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Import a folder of traces")
        if path:
            self.start_import([Path(path)])

    def start_import(self, paths: list[Path]) -> ImportWorker | None:
        """Import in a worker thread with its own Store; the window stays responsive."""
        assert self.store is not None
        worker = ImportWorker(self.store.path, paths, self.plugins)
        worker.succeeded.connect(self._import_done)
        return worker if self.start_worker(worker) else None

    def choose_export(self) -> None:
        formats = list(self.plugins.exporters())
        format_, ok = QInputDialog.getItem(self, "Export", "Format:", formats, 0, False)
        if not ok:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export to", str(Path.home()))
        if path:
            self.start_export(format_, Path(path))

    def start_export(self, format_: str, out: Path) -> ExportWorker | None:
        """Export in a worker thread; a cancel or failure leaves no file at `out`."""
        assert self.store is not None
        worker = ExportWorker(self.store.path, self.plugins, format_, out)
        worker.succeeded.connect(self._export_done)
        return worker if self.start_worker(worker) else None

    def choose_prelabel(self, all_traces: bool) -> None:
        """Tools > Pre-label: pick a pre-labeler plugin, then run it on this trace or all."""
        names = list(self.plugins.prelabelers())
        if not names:
            QMessageBox.information(self, "Pre-label", "No pre-labeler plugin is installed.")
            return
        default = names.index(DEFAULT_PRELABELER) if DEFAULT_PRELABELER in names else 0
        name, ok = QInputDialog.getItem(self, "Pre-label", "Pre-labeler:", names, default, False)
        if ok:
            self.start_prelabel(name, None if all_traces else [self.trace_id])  # type: ignore[list-item]

    def start_prelabel(self, prelabeler: str, trace_ids: list[int] | None) -> PrelabelWorker | None:
        """Pre-label in a worker thread; the hints (hatched bands, `}`) refresh when it ends."""
        assert self.store is not None
        worker = PrelabelWorker(self.store.path, self.plugins, prelabeler, trace_ids)
        worker.succeeded.connect(self._prelabel_done)
        return worker if self.start_worker(worker) else None

    def start_worker(self, worker: ServiceWorker) -> bool:
        """Run one background job with the progress dialog and its Cancel; one at a time.

        The worker's signals go to this window's methods, so Qt queues them to the GUI thread.
        """
        if self.worker is not None and self.worker.isRunning():
            self.statusBar().showMessage("another job is still running", 3000)
            return False
        self.progress_dialog.reset()
        self.progress_dialog.setLabelText(worker.title)
        self.progress_dialog.setRange(0, 0)
        self.progress_dialog.setValue(0)
        worker.started_work.connect(self._work_started)
        worker.advanced.connect(self._work_advanced)
        worker.failed.connect(self._work_failed)
        worker.cancelled.connect(self._work_cancelled)
        worker.finished.connect(self.progress_dialog.reset)
        self.worker = worker
        self.worker_starting.emit(worker)
        worker.start()
        return True

    def _cancel_worker(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def _work_started(self, label: str, total: int) -> None:
        self.progress_dialog.setLabelText(label)
        self.progress_dialog.setMaximum(total)

    def _work_advanced(self, amount: int, note: str) -> None:
        if self.progress_dialog.wasCanceled():
            return
        self.progress_dialog.setValue(self.progress_dialog.value() + amount)
        if note:
            self.progress_dialog.setLabelText(note)

    def _work_failed(self, message: str) -> None:
        """Shown with open(), not exec(): no nested event loop while a worker is winding down."""
        box = QMessageBox(QMessageBox.Icon.Warning, "Failed", message, parent=self)
        box.setTextFormat(Qt.TextFormat.PlainText)  # messages quote names and file contents
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def _inform(self, title: str, text: str) -> QMessageBox:
        """An information box shown with open(): no nested event loop."""
        box = QMessageBox(QMessageBox.Icon.Information, title, text, parent=self)
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        return box

    def _work_cancelled(self, message: str) -> None:
        self.statusBar().showMessage(message, 5000)

    def _import_done(self, report: ImportReport) -> None:
        self.reload_traces()
        self.refresh_corpus()
        self.statusBar().showMessage(
            f"imported {report.traces} traces, {report.steps} steps"
            + (f" ({report.duplicates} already there)" if report.duplicates else ""),
            5000,
        )

    def _prelabel_done(self, report: Any) -> None:
        """Re-read the list (uncertainty) and the shown trace's hints, keeping the position."""
        self.reload_labels()
        self.statusBar().showMessage(
            f"pre-labeling {report.status}: {report.traces} traces, {report.steps} steps"
            f" as {report.annotator}",
            5000,
        )

    # -- synthesis -------------------------------------------------------------------------------

    def choose_synthesis(self) -> SynthesisDialog:
        """Tools > Synthesize: the dialog remembers its last server, model, key variable, file."""
        assert self.store is not None
        dialog = SynthesisDialog(
            self.store, list(self.plugins.prelabelers()), self.settings.get("synthesis"), self
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self.start_synthesis(dialog.request()))
        dialog.open()
        return dialog

    def start_synthesis(self, request: SynthesisRequest) -> SynthesisWorker | None:
        """Plan and run in a worker (its own Store): the graph is built and the questions read
        there too, so a large corpus or file never blocks the window; errors come as `failed`."""
        assert self.store is not None
        self.settings["synthesis"] = {
            "questions": str(request.questions),
            "base_url": request.connection.base_url,
            "model": request.connection.model,
            "api_key_env": request.connection.options["api_key_env"],
        }
        save_settings(self.settings)
        plugins = self.plugins

        def plan(store: Store) -> int:
            from bondscope.services.synthesis import plan_run, read_questions

            return plan_run(
                store,
                plugins,
                read_questions(request.questions),
                request.graph.build(store),
                request.settings,
                request.connection,
            )

        worker = SynthesisWorker(self.store.path, plugins, request.connection, plan=plan)
        return self._run_synthesis(worker, request.prelabeler)

    def choose_resume(self) -> ResumeDialog | None:
        """Tools > Resume Synthesis Run: the unfinished runs, newest first."""
        assert self.store is not None
        runs = unfinished_runs(self.store)
        if not runs:
            self._inform("Resume", "Every synthesis run of this project is done.")
            return None
        dialog = ResumeDialog(runs, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self.resume_synthesis(*dialog.chosen()))
        dialog.open()
        return dialog

    def resume_synthesis(self, run_id: int, connection: Any) -> SynthesisWorker | None:
        assert self.store is not None
        worker = SynthesisWorker(self.store.path, self.plugins, connection, run_id=run_id)
        return self._run_synthesis(worker, None)

    def _run_synthesis(
        self, worker: SynthesisWorker, prelabeler: str | None
    ) -> SynthesisWorker | None:
        worker.succeeded.connect(lambda report: self._synthesis_done(report, prelabeler))
        # A cancel or a failure keeps the traces finished so far: show them.
        worker.cancelled.connect(lambda _: self.reload_traces())
        worker.failed.connect(lambda _: self.reload_traces())
        return worker if self.start_worker(worker) else None

    def _synthesis_done(self, report: Any, prelabeler: str | None) -> QMessageBox:
        """The corpus grew: show the new traces, then offer the fidelity report."""
        self.reload_traces()
        self.refresh_corpus()
        box = QMessageBox(
            QMessageBox.Icon.Information,
            "Synthesis done",
            f"Run {report.run_id}: {report.traces} of {report.items} traces, {report.steps} steps"
            f" ({report.generated} generated now, {report.resumed_steps} resumed).",
            QMessageBox.StandardButton.Close,
            self,
        )
        button = box.addButton("Fidelity Report", QMessageBox.ButtonRole.ActionRole)
        button.clicked.connect(lambda: self.start_fidelity(report.run_id, prelabeler))
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda _: setattr(self, "synthesis_box", None))  # deleted on close
        box.open()
        self.synthesis_box = box
        return box

    def start_fidelity(self, run_id: int, prelabeler: str | None = None) -> FidelityWorker | None:
        assert self.store is not None
        worker = FidelityWorker(self.store.path, self.plugins, run_id, prelabeler)
        worker.succeeded.connect(self._fidelity_done)
        return worker if self.start_worker(worker) else None

    def _fidelity_done(self, report: Any) -> FidelityDialog:
        """The measured labels are label events of a model annotator: the views show them."""
        self.reload_labels()
        dialog = FidelityDialog(report, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.finished.connect(lambda _: setattr(self, "fidelity_dialog", None))
        dialog.open()
        self.fidelity_dialog = dialog
        return dialog

    def _export_done(self, report: ExportReport) -> None:
        self.statusBar().showMessage(f"exported {report.traces} traces to {report.out}", 5000)

    def _restore_layout(self) -> None:
        """Size, position and docks as the window was last closed (settings "window")."""
        saved = self.settings.get("window")
        if isinstance(saved, dict):
            self.restoreGeometry(QByteArray.fromBase64(str(saved.get("geometry", "")).encode()))
            self.restoreState(QByteArray.fromBase64(str(saved.get("state", "")).encode()))

    def _save_layout(self) -> None:
        self.settings["window"] = {
            "geometry": bytes(self.saveGeometry().toBase64().data()).decode(),
            "state": bytes(self.saveState().toBase64().data()).decode(),
        }
        save_settings(self.settings)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.remember_layout:
            self._save_layout()
        if self.worker is not None and self.worker.isRunning():
            self.worker.cancel()
            self.worker.wait()
        self.corpus_timer.stop()
        self.trace_structure_timer.stop()
        self.encode_timer.stop()
        self.trace_model.shutdown()
        if self.corpus_worker is not None:
            self.corpus_worker.wait()
        if self._metrics is not None:
            self._metrics.shutdown()
        self.review.shutdown()
        self.embeddings.shutdown()
        if self.store is not None:
            self.store.close()
            self.store = None
        super().closeEvent(event)
