"""The trace view: one row per step, painted by a delegate, so a 1,000-step trace stays cheap.

Model/view on purpose: Qt lays out and paints only the rows on screen, and a label change repaints
one row. One big rich-text document would re-layout the whole trace on every keystroke.
"""

from __future__ import annotations

from bondscope.services.labeling import StepState
from bondscope.ui.palette import BEHAVIOR_COLORS
from bondscope.ui.shortcuts import LOW_CONFIDENCE, event_keys
from PySide6.QtCore import (
    QAbstractListModel,
    QEvent,
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QBrush, QFont, QFontMetrics, QKeyEvent, QPainter, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
)

ModelIndex = QModelIndex | QPersistentModelIndex
TAG_ROLE = Qt.ItemDataRole.UserRole + 1  # the tag text the delegate draws at the right


def tag_text(step: StepState) -> str:
    """My label with its R targets ("R ↩3,5"), else the model's hint with its confidence
    ("R? 0.82", or "R?" when the model gave none): how sure the hint is decides whether to check
    it, so it is shown where the eye already is."""
    if step.label is not None:
        return step.label + (" ↩" + ",".join(map(str, step.targets)) if step.targets else "")
    if step.suggestion is not None:
        confidence = "" if step.confidence is None else f" {step.confidence:.2f}"
        return f"{step.suggestion}?{confidence}"
    return ""


class StepModel(QAbstractListModel):
    """The steps of one trace; text is sliced from the trace on demand, never copied per row."""

    def __init__(self) -> None:
        super().__init__()
        self.text = ""
        self.steps: list[StepState] = []

    def set_trace(self, text: str, steps: list[StepState]) -> None:
        self.beginResetModel()
        self.text = text
        self.steps = steps
        self.endResetModel()

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.steps)

    def step_text(self, row: int) -> str:
        step = self.steps[row]
        return self.text[step.start : step.end].strip()

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        """Text only (for accessibility and copy); the delegate reads `steps` directly, which is
        faster and avoids passing None through QVariant on every paint."""
        if index.isValid() and role == Qt.ItemDataRole.DisplayRole:
            return self.step_text(index.row())
        if index.isValid() and role == TAG_ROLE:
            return tag_text(self.steps[index.row()])
        return None

    def update_step(self, row: int, state: StepState) -> None:
        """Replace one step's state (after a label, bond, undo or redo).

        No dataChanged: QListView answers it by re-measuring every row (1,000 sizeHints per
        keystroke), yet a label never changes a row's height. TraceView.repaint_row repaints it.
        """
        self.steps[row] = state

    def labeled(self) -> int:
        return sum(1 for step in self.steps if step.label is not None)

    def agreement(self) -> float | None:
        """Share of my labeled steps with a hint whose label equals it (None: no such step)."""
        pairs = [s.label == s.suggestion for s in self.steps if s.label and s.suggestion]
        return sum(pairs) / len(pairs) if pairs else None

    def shown_labels(self) -> tuple[list[str | None], bool]:
        """My labels, or the model's hints when I labeled none of the steps; and whether mine."""
        mine = [step.label for step in self.steps]
        if any(label is not None for label in mine):
            return mine, True
        return [step.suggestion for step in self.steps], False


class StepDelegate(QStyledItemDelegate):
    """Paints index gutter, behavior band (solid: mine; hatched: the model's hint), text, tag."""

    GUTTER = 44
    BAND = 6
    TAG = 72  # room for "R? 0.82" and a few R targets
    PAD = 6

    def __init__(self, view: TraceView) -> None:
        super().__init__(view)
        self.view: TraceView = view
        self.heights: dict[tuple[int, int], int] = {}

    def text_width(self) -> int:
        return max(
            100, self.view.viewport().width() - self.GUTTER - self.BAND - self.TAG - 3 * self.PAD
        )

    def sizeHint(self, option: QStyleOptionViewItem, index: ModelIndex) -> QSize:
        width = self.text_width()
        key = (index.row(), width)
        height = self.heights.get(key)
        if height is None:
            metrics = QFontMetrics(option.font)
            rect = metrics.boundingRect(
                QRect(0, 0, width, 1_000_000),
                Qt.TextFlag.TextWordWrap,
                self.view.step_model.step_text(index.row()),
            )
            height = max(rect.height(), metrics.height()) + 2 * self.PAD
            self.heights[key] = height
        return QSize(width, height)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: ModelIndex) -> None:
        painter.save()
        rect = option.rect
        palette = option.palette
        if option.state & QStyle.StateFlag.State_Selected:
            painter.fillRect(rect, palette.highlight().color().lighter(170))
        elif index.row() % 2:
            painter.fillRect(rect, palette.alternateBase())
        model = self.view.step_model
        step = model.steps[index.row()]
        label, suggestion = step.label, step.suggestion
        band = QRect(rect.left() + self.GUTTER, rect.top() + 1, self.BAND, rect.height() - 2)
        if label is not None:
            painter.fillRect(band, BEHAVIOR_COLORS[label])
        elif suggestion is not None:
            painter.fillRect(band, QBrush(BEHAVIOR_COLORS[suggestion], Qt.BrushStyle.Dense4Pattern))
        painter.setPen(palette.placeholderText().color())
        gutter = QRect(rect.left(), rect.top() + self.PAD, self.GUTTER - self.PAD, rect.height())
        painter.drawText(
            gutter, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop, str(index.row())
        )
        painter.setPen(palette.text().color())
        left = band.right() + 1 + self.PAD
        text_rect = QRect(
            left, rect.top() + self.PAD, self.text_width(), rect.height() - 2 * self.PAD
        )
        painter.drawText(text_rect, Qt.TextFlag.TextWordWrap, model.step_text(index.row()))
        tag = QRect(
            rect.right() - self.TAG, rect.top() + self.PAD, self.TAG - self.PAD, rect.height()
        )
        font = QFont(option.font)
        if label is not None:
            font.setBold(True)
            painter.setFont(font)
            painter.setPen(QPen(BEHAVIOR_COLORS[label]))
        elif suggestion is not None:
            font.setItalic(True)
            painter.setFont(font)
            painter.setPen(QPen(BEHAVIOR_COLORS[suggestion]))
        if label is not None or suggestion is not None:
            painter.drawText(
                tag, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, tag_text(step)
            )
        painter.restore()


class TraceView(QListView):
    """Keyboard-first labeling: the view turns keys into requests; the window does the work.

    Keys are looked up in `keys` (key text -> action, see bondscope.ui.shortcuts), which the
    window replaces when the user rebinds them.
    """

    label_requested = Signal(int, str)  # row, behavior
    accept_requested = Signal(int)  # row: take the model's hint
    clear_requested = Signal(int)  # row: remove my label
    undo_requested = Signal()
    redo_requested = Signal()
    help_requested = Signal()
    notice = Signal(str)  # a short status-bar message (e.g. nothing left to jump to)

    def __init__(self, keys: dict[str, str]) -> None:
        super().__init__()
        self.keys = keys
        self.step_model = StepModel()
        self.setModel(self.step_model)
        self.delegate = StepDelegate(self)
        self.setItemDelegate(self.delegate)
        self.setUniformItemSizes(False)
        self.setWordWrap(True)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        # Measure rows in batches between events: the first screen shows at once on long traces.
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(100)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.step_model.modelAboutToBeReset.connect(self.delegate.heights.clear)

    def repaint_row(self, row: int) -> None:
        self.viewport().update(self.visualRect(self.step_model.index(row)))

    def visible_rows(self) -> tuple[int, int]:
        """First and last row crossing the viewport; (0, -1) when none.

        A binary search over visualRect rather than indexAt: while the batched layout is still
        measuring rows, indexAt misses rows that visualRect already places. Rows not laid out yet
        (an invalid rect) always come after the laid-out ones.
        """
        model = self.step_model
        height = self.viewport().height()
        low, high = 0, model.rowCount()
        while low < high:  # first row that is unplaced or ends below the viewport's top
            mid = (low + high) // 2
            rect = self.visualRect(model.index(mid))
            if rect.isValid() and rect.bottom() < 0:
                low = mid + 1
            else:
                high = mid
        first = low
        low, high = first, model.rowCount()
        while low < high:  # first row that is unplaced or starts below the viewport's bottom
            mid = (low + high) // 2
            rect = self.visualRect(model.index(mid))
            if rect.isValid() and rect.top() < height:
                low = mid + 1
            else:
                high = mid
        return (first, low - 1) if low > first else (0, -1)

    def current_row(self) -> int:
        return self.currentIndex().row()

    def go_to(self, row: int) -> None:
        if 0 <= row < self.step_model.rowCount():
            index = self.step_model.index(row)
            self.setCurrentIndex(index)
            self.scrollTo(index)

    def next_unlabeled(self) -> None:
        """Jump to the first step after the current one (wrapping) without my label."""
        steps = self.step_model.steps
        start = self.current_row() + 1
        for offset in range(len(steps)):
            row = (start + offset) % len(steps)
            if steps[row].label is None:
                self.go_to(row)
                return

    def next_low_confidence(self, threshold: float = LOW_CONFIDENCE) -> int | None:
        """Jump to where review is most needed next: the first step after the current one that I
        have not labeled and whose model hint has confidence < `threshold`; if none is left, the
        least confident unlabeled hint after the current step. No wrapping: "after" is literal.
        Returns the row, or None (and a notice) when no step after this one has a confidence.
        """
        steps = self.step_model.steps
        candidates = [
            (step.confidence, row)
            for row in range(self.current_row() + 1, len(steps))
            if (step := steps[row]).label is None and step.confidence is not None
        ]
        if not candidates:
            self.notice.emit("no unlabeled step with a model confidence after this one")
            return None
        below = [row for confidence, row in candidates if confidence < threshold]
        row = below[0] if below else min(candidates)[1]
        self.go_to(row)
        return row

    def event(self, event: QEvent) -> bool:
        # Keep Ctrl+Z and friends here rather than letting the menu's shortcuts take them.
        if (
            isinstance(event, QKeyEvent)
            and event.type() == QEvent.Type.ShortcutOverride
            and self._action(event) is not None
        ):
            event.accept()
            return True
        return super().event(event)

    def _action(self, event: QKeyEvent) -> str | None:
        for key in event_keys(event):
            action = self.keys.get(key)
            if action is not None:
                return action
        return None

    def keyboardSearch(self, search: str) -> None:
        """No type-ahead: a letter that is not bound must not move the cursor to a step that
        happens to start with it (the next bound key would then label the wrong step)."""

    def keyPressEvent(self, event: QKeyEvent) -> None:
        action = self._action(event)
        row = self.current_row()
        if action is None:
            text = event.text()
            if text and text.isprintable():  # an unbound character: do nothing, say so
                event.accept()
                self.notice.emit(f"{text!r} is not bound to anything; ? lists the keys")
            else:  # navigation (Page Up/Down, Home, End), Tab, ...
                super().keyPressEvent(event)
        elif action.startswith("label:"):
            if row >= 0:
                self.label_requested.emit(row, action.removeprefix("label:"))
        elif action == "accept":
            if row >= 0:
                self.accept_requested.emit(row)
        elif action == "clear":
            if row >= 0:
                self.clear_requested.emit(row)
        elif action == "down":
            self.go_to(row + 1)
        elif action == "up":
            self.go_to(row - 1)
        elif action == "unlabeled":
            self.next_unlabeled()
        elif action == "low_confidence":
            self.next_low_confidence()
        elif action == "undo":
            self.undo_requested.emit()
        elif action == "redo":
            self.redo_requested.emit()
        elif action == "help":
            self.help_requested.emit()
