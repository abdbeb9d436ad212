"""The trace list: a table model over `labeling.trace_rows`, filtered by a proxy."""

from __future__ import annotations

from bondscope.services.labeling import TraceRow
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

ModelIndex = QModelIndex | QPersistentModelIndex
COLUMNS = ("name", "model", "source", "steps", "% done")
TRACE_ID_ROLE = Qt.ItemDataRole.UserRole + 1


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
            return "share of the steps you labeled" if section == 4 else None
        return None

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        if role == TRACE_ID_ROLE:
            return row.trace_id
        column = index.column()
        if role == Qt.ItemDataRole.TextAlignmentRole and column >= 3:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole and column <= 2:
            # Names are elided in the middle to fit; the tooltip keeps them whole.
            return f"{row.name}\nmodel: {row.model}\nsource: {row.source}"
        if role not in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            return None
        if column == 0:
            return row.name
        if column == 1:
            return row.model
        if column == 2:
            return row.source
        if column == 3:
            return row.steps
        percent = 100.0 * row.labeled / row.steps if row.steps else 0.0
        return f"{percent:.0f}" if role == Qt.ItemDataRole.DisplayRole else percent

    def row_of(self, trace_id: int) -> int:
        for i, row in enumerate(self.rows):
            if row.trace_id == trace_id:
                return i
        return -1

    def set_labeled(self, trace_id: int, labeled: int) -> None:
        """Update one trace's progress after a label, without re-querying the project."""
        i = self.row_of(trace_id)
        if i >= 0 and self.rows[i].labeled != labeled:
            self.rows[i].labeled = labeled
            index = self.index(i, len(COLUMNS) - 1)
            self.dataChanged.emit(index, index)
