"""Tools > Adjudicate: the disputed steps of one trace, each annotator's label side by side.

A thin view over `bondscope.services.adjudication`: the rows are `disputes` of the trace (settled
ones stay listed with their gold label), N, D, R or E on a row calls `decide` with the optional
reason typed below, and the selection moves to the next undecided row.
"""

from __future__ import annotations

from bondscope.domain import BEHAVIORS
from bondscope.services.adjudication import Dispute, decide, disputes
from bondscope.store import Store
from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

KEYS = {getattr(Qt.Key, f"Key_{b}"): b for b in BEHAVIORS}


class AdjudicateDialog(QDialog):
    """Decide the disputed steps of a trace as `by`; `decided` carries each gold step's id."""

    decided = Signal(int)

    def __init__(self, store: Store, trace_id: int, by: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store, self.trace_id, self.by = store, trace_id, by
        self.setWindowTitle("Adjudicate")
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.table = QTableWidget(0, 0)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(True)
        self.table.verticalHeader().hide()
        self.table.installEventFilter(self)
        self.reason = QLineEdit()
        self.reason.setPlaceholderText("Reason (optional), then N, D, R or E on the step")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.caption)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.reason)
        layout.addWidget(buttons)
        self.resize(900, 480)
        self.rows: list[Dispute] = []
        self.refresh()

    def refresh(self) -> None:
        """Re-read the trace's disputes; keeps the selected row."""
        current = max(self.table.currentRow(), 0)
        self.rows = disputes(self.store, trace_id=self.trace_id, include_settled=True)
        self.rows.sort(key=lambda d: d.step)
        names = sorted({name for d in self.rows for name in d.labels})
        self.table.setColumnCount(3 + len(names))
        self.table.setHorizontalHeaderLabels(["step", "text", *names, "gold"])
        self.table.setRowCount(len(self.rows))
        for row, dispute in enumerate(self.rows):
            cells = [str(dispute.step), dispute.text, *(dispute.labels.get(n, "") for n in names)]
            for column, text in enumerate([*cells, dispute.gold or ""]):
                item = QTableWidgetItem(text)
                if column != 1:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.table.setItem(row, column, item)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        open_rows = sum(1 for d in self.rows if d.gold is None)
        self.caption.setText(
            f"{len(self.rows)} disputed steps in this trace, {open_rows} undecided. "
            "Select a step and press N, D, R or E to make it the gold label."
            if self.rows
            else "The annotators agree on every step of this trace."
        )
        if self.rows:
            self.table.selectRow(min(current, len(self.rows) - 1))

    def choose(self, behavior: str) -> None:
        """Make `behavior` the gold label of the selected step, then go to the next open one."""
        row = self.table.currentRow()
        if not 0 <= row < len(self.rows):
            return
        step_id = self.rows[row].step_id
        decide(self.store, step_id, behavior, self.by, self.reason.text())
        self.reason.clear()
        self.refresh()
        following = [r for r, d in enumerate(self.rows) if d.gold is None and r > row]
        self.table.selectRow(following[0] if following else row)
        self.decided.emit(step_id)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.table and event.type() == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            behavior = KEYS.get(Qt.Key(event.key()))
            if behavior is not None and not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier:
                self.choose(behavior)
                return True
        return super().eventFilter(watched, event)
