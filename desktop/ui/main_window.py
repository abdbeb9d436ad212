"""The main window: trace list on the left, the keyboard-first trace view on the right, docks for
the structure panel, metrics and review queue.

This module lays the widgets out (`panes`), adds the docks, builds the menus and wires them
together. The flows live beside it, each reporting through Qt signals: labeling
(`labeling_controller`), the structure panel's counts (`structure_feed`), the job runner
(`jobs`), project files and jobs (`project_jobs`), accept and adjudicate (`review`), synthesis
(`synthesis_flow`) and settings (`settings_flow`). Every read and write is a call into
`bondscope.services`.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from bondscope.plugin_manager import Plugins
from bondscope.services import trace_list
from bondscope.services.packs import pack_description
from bondscope.services.settings import Settings, save_settings
from bondscope.store import Store, StoreError
from bondscope.ui.embeddings import StepEmbeddings
from bondscope.ui.jobs import JobRunner
from bondscope.ui.labeling_controller import LabelingController
from bondscope.ui.metrics import MetricsPanel
from bondscope.ui.palette import legend_html
from bondscope.ui.panes import TraceListPane, TracePane
from bondscope.ui.project_jobs import ProjectJobs
from bondscope.ui.review import ReviewFlow, ReviewQueue
from bondscope.ui.session import Session
from bondscope.ui.settings_flow import SettingsFlow
from bondscope.ui.shortcuts import action_keys, help_html, key_map
from bondscope.ui.structure_feed import StructureFeed
from bondscope.ui.structure_panel import StructurePanel
from bondscope.ui.synthesis_flow import SynthesisFlow
from bondscope.ui.target_picker import TargetPicker
from bondscope.ui.window_parts import add_menu, add_toggle, dock, initial_size, timer
from PySide6.QtCore import QByteArray, Qt
from PySide6.QtGui import QCloseEvent, QKeySequence
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow, QMessageBox, QSplitter

CORPUS_DEBOUNCE_MS = 400  # the corpus side of the structure panel waits for a pause in labeling
BACKUP_INTERVAL_MS = 30 * 60 * 1000  # scheduled backups of the open project, newest 10 kept


class MainWindow(QMainWindow):
    def __init__(
        self,
        project: Path,
        annotator: str,
        settings: Settings,
        plugins: Plugins | None = None,
        remember_layout: bool = True,
    ) -> None:
        """`remember_layout`: restore the last session's geometry and docks, save them on close
        (off for screenshots, which show the default layout and leave the saved one alone)."""
        super().__init__()
        self.session = Session(annotator=annotator)  # the project, annotator and trace shown
        self.own_annotator = annotator  # who labels outside work packs (see open_project)
        self.settings = settings
        self._plugins = plugins
        self.remember_layout = remember_layout
        self._build()
        self.open_project(project)
        if remember_layout:
            self._restore_layout()

    @property
    def store(self) -> Store | None:
        return self.session.store

    @property
    def annotator(self) -> str:
        return self.session.annotator

    @property
    def trace_id(self) -> int | None:
        return self.session.trace_id

    # -- construction --------------------------------------------------------------------------

    def _build(self) -> None:
        self.traces = TraceListPane()
        self.traces.trace_selected.connect(self._trace_selected)
        self.traces.keyboard_passed.connect(self.trace_view_focus)
        self.traces.model.figures_failed.connect(
            lambda message: self.statusBar().showMessage(
                f"could not count the project's steps: {message}", 5000
            )
        )
        self.filter_box, self.trace_table = self.traces.filter_box, self.traces.table
        self.trace_model = self.traces.model
        # Step embeddings for the R-target picker (settings.target_embeddings False: TF-IDF).
        self.embeddings = StepEmbeddings()
        self.embeddings.failed.connect(lambda text: self.statusBar().showMessage(text, 5000))
        self.shown = TracePane(
            self.session,
            key_map(self.settings),
            self.settings.key_bindings,
            self.embeddings,
            self.settings.target_embeddings,
        )
        self.trace_view, self.legend = self.shown.view, self.shown.legend
        self.bond_gutter, self.minimap = self.shown.gutter, self.shown.minimap
        self.trace_view.selectionModel().currentChanged.connect(self._show_position)
        self.trace_view.help_requested.connect(self.show_shortcuts)
        self.trace_view.notice.connect(lambda text: self.statusBar().showMessage(text, 3000))
        splitter = QSplitter()
        splitter.addWidget(self.traces)
        splitter.addWidget(self.shown)
        splitter.setSizes([520, 600])
        self.setCentralWidget(splitter)
        self.picker = TargetPicker(self)
        self.labeling = LabelingController(
            self.session, self.trace_view, self.picker, self.embeddings
        )
        self.labeling.step_saved.connect(self._step_saved)
        self.labeling.bonds_changed.connect(self.shown.reload_bonds)
        self.labeling.history_moved.connect(self._history_moved)
        self.labeling.notice.connect(self.statusBar().showMessage)

        self.structure = StructurePanel()
        self.structure_dock = dock(self, "Structure", "structure", self.structure)
        self.resizeDocks([self.structure_dock], [380], Qt.Orientation.Horizontal)
        self.structure_dock.visibilityChanged.connect(self._structure_shown)
        self.structure_feed = StructureFeed(
            self.session,
            self.structure,
            self.structure_dock,
            self.trace_view.step_model,
            self.trace_model.large,
        )
        # Metrics: hidden until View > Metrics; computes in worker threads, only while shown.
        # Its panel is built when first shown (`metrics`): twelve plots, ~1 s of start-up.
        self._metrics: MetricsPanel | None = None
        self.metrics_dock = dock(self, "Metrics", "metrics", None)
        self.metrics_dock.visibilityChanged.connect(self._metrics_shown)
        # Review queue: hidden until Tools > Review Queue; re-read after labels (debounced).
        self.review = ReviewQueue()
        self.review.step_requested.connect(self.show_step)
        self.review_dock = dock(self, "Review queue", "review", self.review)
        self.review_dock.visibilityChanged.connect(
            lambda visible: self.refresh_review() if visible else None
        )
        for hidden in (self.metrics_dock, self.review_dock):
            self.tabifyDockWidget(self.structure_dock, hidden)
            self.structure_dock.raise_()
            hidden.hide()
        self.corpus_timer = timer(self, CORPUS_DEBOUNCE_MS, self.refresh_corpus)
        # The trace side follows each label on the next turn of the event loop, not inside the
        # keystroke: a held key coalesces into one redraw.
        self.trace_structure_timer = timer(self, 0, self.structure_feed.refresh_trace)

        self.statusBar().addPermanentWidget(self.traces.progress)
        self.annotator_label = QLabel(f"annotator: {self.annotator}")
        self.annotator_label.setTextFormat(Qt.TextFormat.PlainText)  # a name is never markup
        self.statusBar().addPermanentWidget(self.annotator_label)
        self.shortcuts = QMessageBox(
            QMessageBox.Icon.NoIcon, "Keyboard shortcuts", help_html(self.settings), parent=self
        )
        self.jobs = JobRunner(self)
        plugins = lambda: self.plugins  # noqa: E731 - loaded on first use
        self.project_jobs = ProjectJobs(self, self.session, self.jobs, plugins)
        self.project_jobs.project_chosen.connect(self._open_or_warn)
        # A rotating backup of the open project while the app runs (bondscope.backups).
        self.backup_timer = timer(self, BACKUP_INTERVAL_MS, self.project_jobs.backup, False)
        self.backup_timer.start()
        self.synthesis = SynthesisFlow(self, self.session, self.jobs, plugins, self.settings)
        self.review_flow = ReviewFlow(self, self.session)
        self.settings_flow = SettingsFlow(self, self.session, self.settings)
        self.settings_flow.shortcuts_changed.connect(self.apply_shortcuts)
        self.settings_flow.annotator_changed.connect(self._annotator_changed)
        for flow in (self.project_jobs, self.synthesis, self.review_flow):
            flow.traces_added.connect(self._traces_added)
            flow.labels_added.connect(self.reload_labels)
        self._build_menus()
        self.resize(initial_size())

    def _build_menus(self) -> None:
        keys = QKeySequence.StandardKey
        jobs = self.project_jobs
        add_menu(
            self,
            "&File",
            (
                ("&New Project…", jobs.choose_new, keys.New),
                ("&Open Project…", jobs.choose_open, keys.Open),
                ("&Import Files…", jobs.choose_import_files),
                ("Import &Folder…", jobs.choose_import_folder),
                ("&Export…", jobs.choose_export),
                ("&Quit", self.close, keys.Quit),
            ),
        )
        undo, redo = add_menu(
            self, "&Edit", (("&Undo", self.labeling.undo), ("&Redo", self.labeling.redo))
        )
        self.edit_actions = {"undo": undo, "redo": redo}
        view_menu = self.menuBar().addMenu("&View")
        self.bond_actions, self.others_action = self.bond_gutter.add_toggles(view_menu)
        view_menu.addSeparator()
        self.minimap_action = add_toggle(view_menu, "&Minimap", True, self.minimap.setVisible)
        view_menu.addAction(self.structure_dock.toggleViewAction())
        view_menu.addAction(self.structure.export_action)
        metrics_action = self.metrics_dock.toggleViewAction()
        metrics_action.setText("&Metrics")
        metrics_action.triggered.connect(self._metrics_toggled)
        view_menu.addAction(metrics_action)
        self.review_action = add_menu(
            self,
            "&Tools",
            (
                ("Pre-label &This Trace…", lambda: jobs.choose_prelabel(all_traces=False)),
                ("Pre-label &All Traces…", lambda: jobs.choose_prelabel(all_traces=True)),
                (),
                ("Review &Queue…", self.show_review_queue),
                ("Accept Suggestions &Above…", self.review_flow.choose_accept),
                ("A&djudicate…", self.review_flow.show_adjudicate),
                (),
                ("&Synthesize…", self.synthesis.choose_synthesis),
                ("&Resume Synthesis Run…", self.synthesis.choose_resume),
            ),
        )[2]
        settings = self.settings_flow
        self.shortcuts_action, _ = add_menu(
            self,
            "&Settings",
            (("&Shortcuts…", settings.edit_shortcuts), ("&Annotator…", settings.edit_annotator)),
        )
        add_menu(self, "&Help", (("&Keyboard Shortcuts", self.show_shortcuts),))
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

    def _metrics_toggled(self, shown: bool) -> None:
        """View > Metrics: bring the dock to the front of its tab group, wide enough to read."""
        if shown:
            self.metrics_dock.raise_()
            self.resizeDocks([self.metrics_dock], [640], Qt.Orientation.Horizontal)

    def _metrics_step(self, row: int) -> None:
        """A step clicked on the geometry map: go there in the trace view."""
        self.trace_view.go_to(row)
        self.trace_view.setFocus()

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
        self.session.store = store
        self.settings.last_project = str(path.resolve())
        save_settings(self.settings)
        self.setWindowTitle(f"Bondscope: {path.name}")
        pack = pack_description(store)  # a work pack is labeled as its annotator, this session
        self.session.annotator = pack[1] if pack else self.own_annotator
        self.annotator_label.setText(f"annotator: {self.annotator}" + (" (pack)" if pack else ""))
        self.session.trace_id = None
        if self._metrics is not None:  # built later, the panel takes self.annotator then
            self._metrics.me = self.annotator
            self._metrics.set_project(path, store)
        self.reload_traces()
        self.refresh_corpus()

    def _open_or_warn(self, path: Path) -> None:
        """File > New or Open Project: a file that is no project is refused with its reason."""
        try:
            self.open_project(path)
        except StoreError as error:
            QMessageBox.warning(self, "Cannot open project", escape(str(error)))

    def reload_traces(self) -> None:
        """Re-read the list (ids and names now, figures in the background), keeping the trace."""
        assert self.store is not None
        current = self.trace_id
        self.traces.open(self.store, self.annotator)
        self.structure_feed.recount()  # traces came or went
        if not (current is not None and self.select_trace(current)) and self.trace_model.rowCount():
            self.trace_table.selectRow(0)

    def reload_labels(self, keep_position: bool = True) -> None:
        """Labels changed outside the keystroke path: re-read the list, the shown trace (at the
        same step, or its first), the structure panel and the review queue."""
        assert self.store is not None
        row = self.trace_view.current_row()
        trace_id, self.session.trace_id = self.trace_id, None
        self.structure_feed.recount()  # labels changed outside the keyboard path
        self.traces.open(self.store, self.annotator)
        if trace_id is not None:
            self.select_trace(trace_id)
            if keep_position:
                self.trace_view.go_to(row)
        self.refresh_corpus()

    def select_trace(self, trace_id: int) -> bool:
        """Select a trace in the list (clearing the filter if it hides it); False if unknown."""
        if not self.traces.select(trace_id):
            return False
        if self.trace_id != trace_id:  # selecting the selected row emits nothing
            self.load_trace(trace_id)
        return True

    def select_trace_named(self, name: str) -> bool:
        assert self.store is not None
        trace_id = trace_list.trace_id_named(self.store, name)
        return trace_id is not None and self.select_trace(trace_id)

    def background_busy(self) -> bool:
        """Figures of the project (list, corpus) are still being computed off the GUI thread."""
        return self.trace_model.busy() or self.structure_feed.busy()

    def settle(self) -> None:
        """Wait for the background figures and show them (screenshots): nothing is pending."""
        self.trace_model.wait()
        self.structure_feed.wait()

    def _trace_selected(self, trace_id: int) -> None:
        if trace_id != self.trace_id:
            self.load_trace(trace_id)

    def load_trace(self, trace_id: int) -> None:
        self.structure_feed.leave_trace()
        self.session.trace_id = trace_id
        self.shown.load()
        self.structure_feed.enter_trace(trace_id)
        self._show_progress()
        self.structure_feed.refresh_trace()
        if self._metrics is not None:
            self._metrics.set_trace(trace_id)
        self._show_position()

    def refresh_corpus(self) -> None:
        """After labeling pauses (debounced), never per keystroke: the metrics dock hears of it,
        the review queue and the structure panel's corpus side are re-read while shown."""
        if self.store is None:
            return
        if self._metrics is not None:
            self._metrics.labels_changed(self.store)
        self.refresh_review()
        self.structure_feed.refresh_corpus()

    def _structure_shown(self, visible: bool) -> None:
        if visible:  # catch up on what changed while hidden
            self.structure_feed.refresh_trace()
            self.refresh_corpus()

    def _traces_added(self) -> None:
        self.reload_traces()
        self.refresh_corpus()

    # -- labeling (the flow itself is self.labeling's) --------------------------------------------

    def _step_saved(self, row: int) -> None:
        """A step's stored state is shown: the minimap, progress and, debounced, the panels."""
        self.minimap.refresh_row(row)
        self._show_progress()
        if not self.trace_structure_timer.isActive():
            self.trace_structure_timer.start()
        self.corpus_timer.start()  # (re)start: the corpus follows once labeling pauses
        self._show_position()

    def _history_moved(self, trace_id: int) -> None:
        """An undo or redo changed a step of `trace_id`: show that trace if it is another."""
        self.structure_feed.recount()  # the change may be in a trace that is not shown
        if trace_id != self.trace_id:
            self.select_trace(trace_id)
            self.corpus_timer.start()

    def _show_position(self) -> None:
        self.statusBar().showMessage(self.shown.position())

    def _show_progress(self) -> None:
        """The shown trace's row in the list, then the project total in the status bar."""
        if self.trace_id is not None:
            steps = self.trace_view.step_model
            self.traces.set_progress(self.trace_id, steps.labeled(), steps.agreement())

    def trace_view_focus(self) -> None:
        self.trace_view.setFocus()

    def show_shortcuts(self) -> None:
        self.shortcuts.open()

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

    # -- settings --------------------------------------------------------------------------------

    def apply_shortcuts(self) -> None:
        """Make the settings' key bindings live: the trace view, menus, legend and help."""
        self.trace_view.keys = key_map(self.settings)
        keys = action_keys(self.settings)
        for name, action in self.edit_actions.items():
            action.setShortcuts([QKeySequence(key) for key in keys[name]])
        self.legend.setText(legend_html(self.settings.key_bindings))
        self.shortcuts.setText(help_html(self.settings))

    def _annotator_changed(self, name: str) -> None:
        """Switched annotator (saved by the settings flow): re-read labels, progress and structure
        as theirs."""
        self.session.annotator = self.own_annotator = name
        self.annotator_label.setText(f"annotator: {name}")
        if self._metrics is not None:
            self._metrics.me = name
        self.reload_labels(keep_position=False)  # another annotator's labels, from the top

    # -- layout and closing ----------------------------------------------------------------------

    def _restore_layout(self) -> None:
        """Size, position and docks as the window was last closed (settings.window)."""
        saved = self.settings.window
        if saved is not None:
            self.restoreGeometry(QByteArray.fromBase64(saved.get("geometry", "").encode()))
            self.restoreState(QByteArray.fromBase64(saved.get("state", "").encode()))

    def _save_layout(self) -> None:
        self.settings.window = {
            "geometry": bytes(self.saveGeometry().toBase64().data()).decode(),
            "state": bytes(self.saveState().toBase64().data()).decode(),
        }
        save_settings(self.settings)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.remember_layout:
            self._save_layout()
        self.jobs.stop()
        self.corpus_timer.stop()
        self.trace_structure_timer.stop()
        self.shown.encode_timer.stop()
        self.trace_model.shutdown()
        self.structure_feed.shutdown()
        if self._metrics is not None:
            self._metrics.shutdown()
        self.review.shutdown()
        self.embeddings.shutdown()
        if self.store is not None:
            self.store.close()
            self.session.store = None
        super().closeEvent(event)
