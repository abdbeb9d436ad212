"""The trace list: a table model over `labeling.trace_rows`, sorted and filtered by a proxy."""

from __future__ import annotations

from bondscope.services.labeling import TraceRow
from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    QSize,
    Qt,
)
from PySide6.QtGui import QPainter, QPaintEvent
from PySide6.QtWidgets import QStyledItemDelegate, QStyleOptionViewItem, QWidget

ModelIndex = QModelIndex | QPersistentModelIndex
COLUMNS = (
    "name",
    "model",
    "source",
    "steps",
    "% labeled",
    "uncertainty",
    "agreement",
    "correct",
)
PERCENT, UNCERTAINTY, AGREEMENT, CORRECT = 4, 5, 6, 7
TOOLTIPS = {
    PERCENT: "share of the steps you labeled",
    UNCERTAINTY: "1 - mean confidence of the newest model annotator's labels (blank: none)",
    AGREEMENT: "share of your labeled steps whose label equals the model's suggestion",
    CORRECT: "whether the trace's final answer is right, where the source says so",
}
TRACE_ID_ROLE = Qt.ItemDataRole.UserRole + 1
SORT_ROLE = Qt.ItemDataRole.UserRole + 2  # numbers for numeric columns; blank sorts first
PROGRESS_ROLE = Qt.ItemDataRole.UserRole + 3  # 0..1, drawn as a bar in the % column


class TraceTableModel(QAbstractTableModel):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[TraceRow] = []

    def set_rows(self, rows: list[TraceRow]) -> None:
        self.beginResetModel()
        self.rows = rows
        self.endResetModel()

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> object:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole:
            return TOOLTIPS.get(section)
        return None

    @staticmethod
    def value(row: TraceRow, column: int) -> str | int | float | None:
        """The cell's value for sorting: text, a count, or a fraction (None: blank)."""
        if column == PERCENT:
            return row.labeled / row.steps if row.steps else 0.0
        return (
            row.name,
            row.model,
            row.source,
            row.steps,
            None,
            row.uncertainty,
            row.agreement,
            row.correct,
        )[column]

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        column = index.column()
        if role == TRACE_ID_ROLE:
            return row.trace_id
        value = self.value(row, column)
        if role == SORT_ROLE:
            return -1.0 if value is None else value
        if role == PROGRESS_ROLE:
            return value if column == PERCENT else None
        if role == Qt.ItemDataRole.TextAlignmentRole and 3 <= column < CORRECT:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            if column <= 2:  # names are elided at the end to fit; the tooltip keeps them whole
                return f"{row.name}\nmodel: {row.model}\nsource: {row.source}"
            if column == PERCENT:
                return f"{row.labeled} of {row.steps} steps labeled by you"
            return None
        if role == Qt.ItemDataRole.EditRole:
            return value
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if value is None:
            return ""
        if column == PERCENT:
            return f"{100 * value:.0f}"  # type: ignore[operator]
        if column == UNCERTAINTY:
            return f"{value:.2f}"
        if column == AGREEMENT:
            return f"{100 * value:.0f}%"  # type: ignore[operator]
        return value

    def row_of(self, trace_id: int) -> int:
        for i, row in enumerate(self.rows):
            if row.trace_id == trace_id:
                return i
        return -1

    def set_progress(self, trace_id: int, labeled: int, agreement: float | None) -> None:
        """Update one trace's progress after a label, without re-querying the project."""
        i = self.row_of(trace_id)
        if i < 0:
            return
        row = self.rows[i]
        if row.labeled != labeled or row.agreement != agreement:
            row.labeled, row.agreement = labeled, agreement
            self.dataChanged.emit(self.index(i, PERCENT), self.index(i, AGREEMENT))

    def totals(self) -> tuple[int, int]:
        """(labeled, total) steps over the project, for the status bar."""
        return sum(r.labeled for r in self.rows), sum(r.steps for r in self.rows)


class ProgressDelegate(QStyledItemDelegate):
    """The % column: a bar behind the number, so progress reads at a glance."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: ModelIndex) -> None:
        fraction = index.data(PROGRESS_ROLE)
        if isinstance(fraction, float) and fraction > 0:
            rect: QRect = option.rect.adjusted(2, 3, -2, -3)
            rect.setWidth(max(1, round(rect.width() * min(1.0, fraction))))
            color = option.palette.highlight().color()
            color.setAlpha(70)
            painter.fillRect(rect, color)
        super().paint(painter, option, index)


class ProjectProgress(QWidget):
    """The status bar's "labeled / total steps" bar.

    Not a QProgressBar: its setValue repaints synchronously (a whole window flush, ~4 ms
    offscreen) on every change, i.e. inside every label keystroke; update() waits for the next
    paint, with everything else that changed.
    """

    def __init__(self) -> None:
        super().__init__()
        self.labeled = 0
        self.total = 0
        self.setToolTip("Steps of this project you labeled")

    def sizeHint(self) -> QSize:
        return QSize(220, self.fontMetrics().height() + 6)

    def text(self) -> str:
        return f"{self.labeled} / {self.total} steps labeled"

    def set_progress(self, labeled: int, total: int) -> None:
        if (labeled, total) != (self.labeled, self.total):
            self.labeled, self.total = labeled, total
            self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        rect = self.rect().adjusted(0, 1, -1, -2)
        palette = self.palette()
        painter.fillRect(rect, palette.base())
        if self.total:
            done = QRect(rect)
            done.setWidth(round(rect.width() * self.labeled / self.total))
            painter.fillRect(done, palette.highlight())
        painter.setPen(palette.mid().color())
        painter.drawRect(rect)
        painter.setPen(palette.text().color())
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, self.text())
        painter.end()
