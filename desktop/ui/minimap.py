"""The minimap: the whole trace's behavior sequence as a thin colored strip; clicking jumps.

One pixel per step in a 1 x n image that is scaled to the strip: a label changes one pixel, and
painting is one image blit however long the trace is.
"""

from __future__ import annotations

from bondscope.ui.palette import BEHAVIOR_COLORS
from bondscope.ui.trace_view import TraceView
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

SUGGESTION_ALPHA = 70  # the model's hint shows faint, a person's label solid


class Minimap(QWidget):
    """A vertical strip right of the trace view, one cell per step, the viewport outlined."""

    WIDTH = 16

    def __init__(self, view: TraceView) -> None:
        super().__init__()
        self.view = view
        self.image = QImage(1, 1, QImage.Format.Format_ARGB32_Premultiplied)
        self.setFixedWidth(self.WIDTH)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Expanding)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Whole trace: solid = your label, faint = the model's hint; click to jump")
        bar = view.verticalScrollBar()
        bar.valueChanged.connect(self.update)
        bar.rangeChanged.connect(self.update)
        view.step_model.modelReset.connect(self.rebuild)

    def sizeHint(self) -> QSize:
        return QSize(self.WIDTH, 100)

    @staticmethod
    def cell_color(label: str | None, suggestion: str | None) -> QColor:
        """A person's label solid, else the model's hint faint, else nothing."""
        if label is not None:
            return QColor(BEHAVIOR_COLORS[label])
        if suggestion is not None:
            color = QColor(BEHAVIOR_COLORS[suggestion])
            color.setAlpha(SUGGESTION_ALPHA)
            return color
        return QColor(Qt.GlobalColor.transparent)

    def rebuild(self) -> None:
        steps = self.view.step_model.steps
        self.image = QImage(1, max(1, len(steps)), QImage.Format.Format_ARGB32_Premultiplied)
        self.image.fill(Qt.GlobalColor.transparent)
        for row, step in enumerate(steps):
            self.image.setPixelColor(0, row, self.cell_color(step.label, step.suggestion))
        self.update()

    def refresh_row(self, row: int) -> None:
        """After a label change: one pixel, one repaint."""
        step = self.view.step_model.steps[row]
        self.image.setPixelColor(0, row, self.cell_color(step.label, step.suggestion))
        self.update()

    def row_at(self, y: float) -> int:
        """The step whose cell holds height `y`; cells split the strip's height evenly."""
        n = self.view.step_model.rowCount()
        return max(0, min(n - 1, int(y * n / max(1, self.height()))))

    def _cells(self) -> QRectF:
        return QRectF(2, 0, self.width() - 4, self.height())

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(event.rect(), self.palette().base())
        n = self.view.step_model.rowCount()
        if n == 0:
            painter.end()
            return
        painter.drawImage(self._cells(), self.image)
        top, last = self.view.visible_rows()
        bottom = max(top, last) + 1
        scale = self.height() / n
        marker = QRectF(0.5, top * scale, self.width() - 1, max(3.0, (bottom - top) * scale))
        color = self.palette().text().color()
        painter.setPen(QPen(color, 1))
        fill = QColor(color)
        fill.setAlpha(40)
        painter.setBrush(fill)
        painter.drawRect(marker)
        painter.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._jump(event.position().y())
        else:
            super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:  # drag to scrub through the trace
            self._jump(event.position().y())

    def _jump(self, y: float) -> None:
        if self.view.step_model.rowCount():
            self.view.go_to(self.row_at(y))
            self.view.setFocus()
