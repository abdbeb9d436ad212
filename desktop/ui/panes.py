"""The main window's two sides: the trace list (a filter box over the lazy trace table, and the
project's progress for the status bar) and the shown trace (its question, the legend, the bond
gutter, the steps and the minimap), each reading what it shows through the services."""

from __future__ import annotations

from bondscope.services import labeling
from bondscope.store import Store
from bondscope.ui.bond_gutter import BondGutter
from bondscope.ui.embeddings import StepEmbeddings
from bondscope.ui.minimap import Minimap
from bondscope.ui.palette import legend_html
from bondscope.ui.session import Session
from bondscope.ui.trace_list import (
    AGREEMENT,
    PERCENT,
    TRACE_ID_ROLE,
    UNCERTAINTY,
    ProgressDelegate,
    ProjectProgress,
    TraceTableModel,
)
from bondscope.ui.trace_view import TraceView
from PySide6.QtCore import QItemSelection, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

ENCODE_DELAY_MS = 500  # a trace shown this long gets its steps encoded for the target picker


class TraceListPane(QWidget):
    """The traces of the project, filtered by name, model or source as one types."""

    trace_selected = Signal(int)  # the trace of the newly selected row
    keyboard_passed = Signal()  # Enter or Down in the filter box: the steps take the keyboard

    def __init__(self) -> None:
        super().__init__()
        self.filter_box = QLineEdit()
        self.filter_box.setPlaceholderText("Filter traces (name, model, source)")
        self.filter_box.setClearButtonEnabled(True)
        self.model = TraceTableModel()  # lazy: sorts and filters itself (no proxy)
        self.progress = ProjectProgress()  # the project's labeled steps, for the status bar
        self.model.figures_ready.connect(self.show_totals)
        self.model.figures_failed.connect(self.show_totals)
        self.filter_box.textChanged.connect(self.model.set_filter)
        # Typing filters and stays in the box; Enter or Down hands the keyboard to the steps.
        self.filter_box.returnPressed.connect(self.keyboard_passed)
        QShortcut(
            QKeySequence(Qt.Key.Key_Down), self.filter_box, self.keyboard_passed.emit
        ).setContext(Qt.ShortcutContext.WidgetShortcut)
        self.table = table = QTableView()
        table.setModel(self.model)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setSortingEnabled(True)
        table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
        table.verticalHeader().hide()
        table.setWordWrap(False)
        table.setItemDelegateForColumn(PERCENT, ProgressDelegate(table))
        # Elide at the end: the model has a column of its own, and a middle elision cut exactly
        # the part ("correct_" / "incorrect_") that tells copies apart.
        table.setTextElideMode(Qt.TextElideMode.ElideRight)
        header = table.horizontalHeader()
        for column, width in ((0, 150), (1, 80), (2, 60)):  # the name starts with the model
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(column, width)
        # The figures are narrower than their titles: size them by the header, not the rows
        # (fitting rows to contents reads every row's figures while the table is not shown yet,
        # and a live ResizeToContents re-measures every row on each label's dataChanged).
        for column in (3, PERCENT, UNCERTAINTY, AGREEMENT):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(column, header.sectionSizeHint(column))
        table.selectionModel().selectionChanged.connect(self._selection_changed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.filter_box)
        layout.addWidget(table)

    def open(self, store: Store, annotator: str) -> None:
        """List `store`'s traces as `annotator` sees them (figures follow in the background)."""
        self.model.open(store, annotator)
        self.show_totals()

    def set_progress(self, trace_id: int, labeled: int, agreement: float | None) -> None:
        """A trace's figures after a label, in its row and in the project's total."""
        self.model.set_progress(trace_id, labeled, agreement)
        self.show_totals()

    def show_totals(self) -> None:
        self.progress.set_progress(self.model.totals())

    def select(self, trace_id: int) -> bool:
        """Select the trace's row (clearing the filter if it hides it); False if unknown."""
        if self.model.position_of(trace_id) < 0:
            return False
        if self.model.row_of(trace_id) < 0:
            self.filter_box.clear()
        self.table.selectRow(self.model.row_of(trace_id))
        return True

    def _selection_changed(self, selected: QItemSelection, _: QItemSelection) -> None:
        indexes = selected.indexes()
        if indexes:
            self.trace_selected.emit(int(indexes[0].data(TRACE_ID_ROLE)))


class TracePane(QWidget):
    """The shown trace: the question above the steps, bonds on their left, the whole trace as
    a strip on their right. Once a trace has been shown for a moment its steps are encoded for
    the target picker: paging through traces or taking a screenshot never starts the encoder."""

    def __init__(
        self,
        session: Session,
        keys: dict[str, str],
        key_bindings: dict[str, str],
        embeddings: StepEmbeddings,
        encode: bool,
    ) -> None:
        """`keys`: key -> action for the trace view; `key_bindings`: label key -> behavior (the
        legend); `encode`: ask `embeddings` for the steps' vectors (else the picker ranks by
        TF-IDF)."""
        super().__init__()
        self.session = session
        self.embeddings = embeddings
        self.encode_timer = QTimer(self)
        self.encode_timer.setSingleShot(True)
        self.encode_timer.setInterval(ENCODE_DELAY_MS)
        self.encode_timer.timeout.connect(self.encode_steps)
        self.encode = encode
        # Questions can be pages long (agentic scenarios): scroll them in a few lines.
        self.question = QPlainTextEdit()
        self.question.setReadOnly(True)
        self.question.setMaximumHeight(5 * self.question.fontMetrics().lineSpacing())
        self.question.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.view = TraceView(keys)
        self.gutter = BondGutter(self.view)
        self.minimap = Minimap(self.view)
        self.legend = QLabel(legend_html(key_bindings))
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.question)
        layout.addWidget(self.legend)
        steps_row = QHBoxLayout()
        steps_row.setSpacing(0)
        steps_row.addWidget(self.gutter)
        steps_row.addWidget(self.view, 1)
        steps_row.addSpacing(2)
        steps_row.addWidget(self.minimap)
        layout.addLayout(steps_row, 1)

    def load(self) -> None:
        """Show the session's trace from its first step, with my labels, hints and bonds."""
        store, trace_id = self.session.require_store(), self.session.trace_id
        assert trace_id is not None
        header = labeling.trace_header(store, trace_id)
        steps = labeling.load_steps(store, trace_id, self.session.annotator)
        self.question.setPlainText(header.question)
        self.view.step_model.set_trace(header.text, steps)
        if self.encode:
            self.encode_timer.start()
        self.reload_bonds()
        self.view.go_to(0)
        if not isinstance(QApplication.focusWidget(), QLineEdit):  # never while typing a filter
            self.view.setFocus()

    def reload_bonds(self) -> None:
        """Re-read every annotator's bonds of the shown trace for the gutter (one query)."""
        trace_id = self.session.trace_id
        assert trace_id is not None
        rows = {step.step_id: row for row, step in enumerate(self.view.step_model.steps)}
        store, annotator = self.session.require_store(), self.session.annotator
        self.gutter.set_bonds(labeling.trace_bonds(store, trace_id, annotator, rows))

    def encode_steps(self) -> None:
        """Ask for the shown trace's step embeddings (encoded in a low-priority thread)."""
        if self.session.trace_id is not None:
            model = self.view.step_model
            texts = [model.step_text(i) for i in range(model.rowCount())]
            self.embeddings.request(self.session.trace_id, texts)

    def position(self) -> str:
        """Where the current step is and how much of the trace I labeled (the status bar)."""
        model = self.view.step_model
        n = model.rowCount()
        return (
            f"step {self.view.current_row()} of {n}   {model.labeled()}/{n} labeled"
            if n
            else "no steps"
        )
