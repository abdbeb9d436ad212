"""The trace list: a lazy table model over `services.trace_list`, sorted and filtered by itself.

A project may hold 100,000 traces. The model reads every trace's id, name, model and source once
(from indexes, ~0.1 s per 100,000 traces) and sorts and filters on those in memory. The figures
(steps, % labeled, uncertainty, agreement) of the rows on screen are read a page at a time, as
the view asks for them; the figures of the whole project are read in a background thread, and
once there they serve every row, sorting by a figure column, and the project total. A label
updates the shown trace's row in place: nothing is re-read per keystroke.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from html import escape
from pathlib import Path
from typing import Any, overload

import numpy as np
from bondscope.progress import Progress, Yielding
from bondscope.services.trace_list import (
    TraceColumns,
    TraceIndex,
    TraceRow,
    row_from,
    trace_columns,
    trace_index,
)
from bondscope.store import Store
from bondscope.ui.workers import ServiceWorker, call_in_child, lower_priority
from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QPainter, QPaintEvent
from PySide6.QtWidgets import QStyledItemDelegate, QStyleOptionViewItem, QWidget

ModelIndex = QModelIndex | QPersistentModelIndex
COLUMNS = ("name", "model", "source", "steps", "% labeled", "uncertainty", "agreement")
STEPS, PERCENT, UNCERTAINTY, AGREEMENT = 3, 4, 5, 6
TOOLTIPS = {
    PERCENT: "share of the steps you labeled",
    UNCERTAINTY: "1 - mean confidence of the newest model annotator's labels (blank: none)",
    AGREEMENT: "share of your labeled steps whose label equals the model's suggestion",
}
TRACE_ID_ROLE = Qt.ItemDataRole.UserRole + 1
SORT_ROLE = Qt.ItemDataRole.UserRole + 2  # numbers for numeric columns; blank sorts first
PROGRESS_ROLE = Qt.ItemDataRole.UserRole + 3  # 0..1, drawn as a bar in the % column
PAGE_ROWS = 64  # rows read per query while the project's figures are not there yet
PAGE_CACHE_ROWS = 20_000  # rows kept from those queries; more: start over
YIELD_S = 0.001  # the figures worker's pause between statements
CHILD_TRACES = 2_000  # above: whole-project reads run in a child Python, never sharing the GIL


class FiguresWorker(ServiceWorker):
    """The figures of every trace (`trace_columns`), off the GUI thread; Cancel between chunks."""

    title = "Counting…"

    def __init__(self, project: Path, annotator: str, in_child: bool) -> None:
        super().__init__(project)
        self.annotator = annotator
        self.in_child = in_child  # a large project: read in a child Python (call_in_child)
        self.result: TraceColumns | None = None  # also kept here, for a wait() without events
        self.dropped = False  # deleteLater() was called

    def run(self) -> None:
        lower_priority()  # a keystroke never waits for a core
        super().run()

    def work(self, store: Store, progress: Progress) -> TraceColumns:
        if self.in_child:
            kwargs = {"annotator": self.annotator}
            self.result = call_in_child(
                self.project, trace_columns, kwargs, TraceColumns, self.cancel_event
            )
        else:
            self.result = trace_columns(store, self.annotator, progress=Yielding(progress, YIELD_S))
        return self.result


class Rows(Sequence[TraceRow]):
    """The model's rows in list order, read on access (a page at a time)."""

    def __init__(self, model: TraceTableModel) -> None:
        self.model = model

    def __len__(self) -> int:
        return self.model.rowCount()

    @overload
    def __getitem__(self, i: int) -> TraceRow: ...
    @overload
    def __getitem__(self, i: slice) -> list[TraceRow]: ...
    def __getitem__(self, i: int | slice) -> TraceRow | list[TraceRow]:
        if isinstance(i, slice):
            return [self.model.row(j) for j in range(*i.indices(len(self)))]
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        return self.model.row(i % len(self))

    def __iter__(self) -> Iterator[TraceRow]:
        return (self.model.row(i) for i in range(len(self)))


class TraceTableModel(QAbstractTableModel):
    """Rows are positions into the project's `TraceIndex`, in the current sort and filter."""

    figures_ready = Signal()  # the whole project's figures arrived (or were updated)
    figures_failed = Signal(str)  # their read failed: the list shows pages only

    def __init__(self) -> None:
        super().__init__()
        self.store: Store | None = None
        self.annotator = ""
        self.index_ = TraceIndex(np.zeros(0, dtype=np.int64), [], [], [])
        self.haystack: list[str] = []  # "name model source", lower case, per position
        self.order = np.zeros(0, dtype=np.int64)  # position of each shown row
        self.columns: TraceColumns | None = None  # every trace's figures, once read
        self.column_at = np.zeros(0, dtype=np.int64)  # index position -> columns position
        self.page: dict[int, TraceRow] = {}  # trace id -> row, as read or built for the screen
        self.progress_since: dict[int, tuple[int, float | None]] = {}  # while figures compute
        self.worker: FiguresWorker | None = None
        self.sort_column, self.sort_order = -1, Qt.SortOrder.AscendingOrder
        self.pending_sort = False  # a figure column was chosen before the figures were there
        self.needle = ""
        self.rows = Rows(self)

    # -- the project -------------------------------------------------------------------------

    def open(self, store: Store, annotator: str) -> None:
        """Show `store`'s traces as seen by `annotator`; the figures follow in the background."""
        self.shutdown()
        self.beginResetModel()
        self.store, self.annotator = store, annotator
        self.index_ = trace_index(store)
        self.haystack = []  # built by the first filter
        self.columns, self.page, self.progress_since = None, {}, {}
        column, order = self._sort_key()  # a figure column sorts once the figures are there
        self.pending_sort = column != self.sort_column and len(self.index_) > 0
        self.order = self._sorted_positions(column, order)
        self._apply_filter()
        self.endResetModel()
        if len(self.index_):
            worker = FiguresWorker(store.path, annotator, self.large())
            worker.succeeded.connect(lambda columns, w=worker: self._figures(w, columns))
            worker.failed.connect(lambda message, w=worker: self._failed(w, message))
            worker.finished.connect(lambda w=worker: self._worker_done(w))
            self.worker = worker
            worker.start()

    def large(self) -> bool:
        """Big enough for its whole-project reads to go to a child Python (call_in_child)."""
        return len(self.index_) > CHILD_TRACES

    def busy(self) -> bool:
        """The whole project's figures are still being read."""
        return self.worker is not None

    def wait(self) -> None:
        """Block until the figures are there (screenshots, tests); they are applied at once."""
        worker = self.worker
        if worker is not None:
            worker.wait()
            if worker.result is not None:
                self._figures(worker, worker.result)
            self._worker_done(worker)

    def shutdown(self) -> None:
        """Stop reading figures (after the chunk in progress): no thread outlives the model."""
        worker, self.worker = self.worker, None
        if worker is not None:
            worker.cancel()
            worker.wait()

    def _failed(self, worker: FiguresWorker, message: str) -> None:
        if self.worker is worker:
            self.worker = None
            self.pending_sort = False
            self.figures_failed.emit(message)

    def _worker_done(self, worker: FiguresWorker) -> None:
        """Called by `finished`, and by wait() before it: the first call drops the worker."""
        if self.worker is worker:
            self.worker = None
        if not worker.dropped:
            worker.dropped = True
            worker.deleteLater()

    def _figures(self, worker: FiguresWorker, columns: TraceColumns) -> None:
        if self.worker is not worker or self.columns is not None:
            return  # a newer open() replaced this read, or wait() already applied it
        self.columns = columns
        self.column_at = np.searchsorted(columns.ids, self.index_.ids)
        for trace_id, (labeled, agreement) in self.progress_since.items():
            self._store_progress(trace_id, labeled, agreement)
        self.progress_since = {}
        self.page = {}
        if self.pending_sort:
            self.pending_sort = False
            self.sort(self.sort_column, self.sort_order)
        if self.rowCount():
            self.dataChanged.emit(self.index(0, STEPS), self.index(self.rowCount() - 1, AGREEMENT))
        self.figures_ready.emit()

    # -- rows --------------------------------------------------------------------------------

    def row(self, i: int) -> TraceRow:
        """Row `i` as shown: from the project's figures, else from a page read for the screen."""
        position = int(self.order[i])
        trace_id = int(self.index_.ids[position])
        row = self.page.get(trace_id)
        if row is None:
            if self.columns is not None:
                row = row_from(self.index_, position, self.columns, int(self.column_at[position]))
                self.page[trace_id] = row
            else:
                self._read_page(i)
                row = self.page[trace_id]
        return row

    def _read_page(self, i: int) -> None:
        assert self.store is not None
        if len(self.page) > PAGE_CACHE_ROWS:
            self.page = {}
        begin = i - i % PAGE_ROWS
        positions = self.order[begin : begin + PAGE_ROWS]
        ids = self.index_.ids[positions]
        columns = trace_columns(self.store, self.annotator, ids)
        for j, position in enumerate(positions):
            row = row_from(self.index_, int(position), columns, j)
            self.page[row.trace_id] = row

    def row_of(self, trace_id: int) -> int:
        """The row showing `trace_id`, or -1 (unknown, or hidden by the filter)."""
        position = self.position_of(trace_id)
        if position < 0:
            return -1
        rows = np.flatnonzero(self.order == position)
        return int(rows[0]) if len(rows) else -1

    def position_of(self, trace_id: int) -> int:
        """The trace's position in the project (shown or not), or -1 when there is none."""
        ids = self.index_.ids
        i = int(np.searchsorted(ids, trace_id))
        return i if i < len(ids) and ids[i] == trace_id else -1

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.order)

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
        )[column]

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        if role == TRACE_ID_ROLE:  # known without the row's figures
            return int(self.index_.ids[self.order[index.row()]])
        row = self.row(index.row())
        column = index.column()
        value = self.value(row, column)
        if role == SORT_ROLE:
            return -1.0 if value is None else value
        if role == PROGRESS_ROLE:
            return value if column == PERCENT else None
        if role == Qt.ItemDataRole.TextAlignmentRole and column >= STEPS:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            if column <= 2:  # names are elided at the end to fit; the tooltip keeps them whole
                text = f"{row.name}\nmodel: {row.model}\nsource: {row.source}"
                return "<qt>" + escape(text).replace("\n", "<br>") + "</qt>"  # never markup
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

    # -- sorting and filtering ---------------------------------------------------------------

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Stable, like a sort proxy: ties keep the project's order. A figure column sorts once
        the figures are there (the header shows the choice at once)."""
        self.sort_column, self.sort_order = column, order
        if column >= STEPS and self.columns is None:
            self.pending_sort = self.worker is not None
            if self.pending_sort:
                return
        self._relayout(lambda: self._apply_filter(self._sorted_positions(column, order)))

    def set_filter(self, text: str) -> None:
        """Rows whose name, model or source contains `text`, ignoring case."""
        self.needle = text.lower()
        self._relayout(lambda: self._apply_filter(self._sorted_positions(*self._sort_key())))

    def _sort_key(self) -> tuple[int, Qt.SortOrder]:
        column = self.sort_column
        if column >= STEPS and self.columns is None:
            column = -1  # not sortable yet: the project's order until the figures arrive
        return column, self.sort_order

    def _sorted_positions(self, column: int, order: Qt.SortOrder) -> np.ndarray:
        n = len(self.index_)
        descending = order == Qt.SortOrder.DescendingOrder
        no_figures = column >= STEPS and self.columns is None
        if column < 0 or column > AGREEMENT or n == 0 or no_figures:
            return np.arange(n, dtype=np.int64)  # no figures (their read failed): project order
        if column < STEPS:
            texts = (self.index_.names, self.index_.models, self.index_.sources)[column]
            ranked = sorted(range(n), key=texts.__getitem__, reverse=descending)
            return np.asarray(ranked, dtype=np.int64)
        key = self._figure(column)[self.column_at]
        if descending:  # stable: ties stay in the project's order
            return np.argsort(-key, kind="stable").astype(np.int64)
        return np.argsort(key, kind="stable").astype(np.int64)

    def _figure(self, column: int) -> np.ndarray:
        """A figure column over the project, as SORT_ROLE gives it (blank: -1)."""
        columns = self.columns
        assert columns is not None
        if column == STEPS:
            return columns.steps.astype(np.float64)
        if column == PERCENT:
            with np.errstate(invalid="ignore", divide="ignore"):
                share = columns.labeled / columns.steps
            return np.where(columns.steps > 0, share, 0.0)
        values = columns.uncertainty if column == UNCERTAINTY else columns.agreement
        return np.where(np.isnan(values), -1.0, values)

    def _apply_filter(self, positions: np.ndarray | None = None) -> None:
        positions = self.order if positions is None else positions
        if self.needle:
            if len(self.haystack) != len(self.index_):
                index = self.index_
                self.haystack = [
                    f"{n}\n{m}\n{s}".lower()
                    for n, m, s in zip(index.names, index.models, index.sources, strict=True)
                ]
            needle, haystack = self.needle, self.haystack
            positions = positions[[needle in haystack[p] for p in positions.tolist()]]
        self.order = positions

    def _relayout(self, change: Any) -> None:
        """Change the rows' order; the selection and the current row follow their traces."""
        self.layoutAboutToBeChanged.emit()
        persistent = self.persistentIndexList()
        positions = [int(self.order[i.row()]) if i.isValid() else -1 for i in persistent]
        change()
        row_of_position = np.full(len(self.index_), -1, dtype=np.int64)
        row_of_position[self.order] = np.arange(len(self.order))
        moved = []
        for old, position in zip(persistent, positions, strict=True):
            row = int(row_of_position[position]) if position >= 0 else -1
            moved.append(self.index(row, old.column()) if row >= 0 else QModelIndex())
        self.changePersistentIndexList(persistent, moved)
        self.layoutChanged.emit()

    # -- labels ------------------------------------------------------------------------------

    def set_progress(self, trace_id: int, labeled: int, agreement: float | None) -> None:
        """Update one trace's progress after a label, without re-querying the project."""
        if self.worker is not None:
            self.progress_since[trace_id] = (labeled, agreement)
        row = self.page.get(trace_id)
        if row is not None:
            row.labeled, row.agreement = labeled, agreement
        if self.columns is not None:
            self._store_progress(trace_id, labeled, agreement)
        shown = self.row_of(trace_id)
        if shown >= 0:
            self.dataChanged.emit(self.index(shown, PERCENT), self.index(shown, AGREEMENT))

    def _store_progress(self, trace_id: int, labeled: int, agreement: float | None) -> None:
        assert self.columns is not None
        i = self.columns.position(trace_id)
        if i >= 0:
            self.columns.labeled[i] = labeled
            self.columns.agreement[i] = np.nan if agreement is None else agreement

    def totals(self) -> tuple[int, int] | None:
        """(labeled, total) steps over the project, for the status bar; None until counted."""
        if self.columns is None:
            return None if self.worker is not None else (0, 0)
        return int(self.columns.labeled.sum()), int(self.columns.steps.sum())


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
        self.counting = False
        self.setToolTip("Steps of this project you labeled")

    def sizeHint(self) -> QSize:
        return QSize(220, self.fontMetrics().height() + 6)

    def text(self) -> str:
        if self.counting:
            return "counting steps…"
        return f"{self.labeled} / {self.total} steps labeled"

    def set_progress(self, totals: tuple[int, int] | None) -> None:
        """(labeled, total) steps, or None while they are being counted."""
        counting = totals is None
        labeled, total = totals or (0, 0)
        if (labeled, total, counting) != (self.labeled, self.total, self.counting):
            self.labeled, self.total, self.counting = labeled, total, counting
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
