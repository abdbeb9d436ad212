"""The bond gutter: arcs beside the step list from each step to the earlier step it bonds to.

Drawn from the list view's own row geometry (`visualRect`), for the arcs that cross the viewport
only, and repainted on scroll. A 1,000-step trace with a bond per step paints a few dozen arcs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from bondscope.services.labeling import TraceBond
from bondscope.ui.palette import BOND_COLORS
from bondscope.ui.trace_view import TraceView
from bondscope.ui.window_parts import add_toggle
from PySide6.QtCore import QPoint, QPointF, QRect, QSize, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QColor,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPainterPathStroker,
    QPaintEvent,
    QPen,
    QPolygonF,
)
from PySide6.QtWidgets import QMenu, QSizePolicy, QWidget

BOND_NAMES = {
    "hydrogen": "Hydrogen bonds (R → target)",
    "vdw": "Van der Waals bonds (E)",
    "covalent": "Covalent bonds",
}
DEFAULT_SHOWN = frozenset({"hydrogen", "vdw"})  # covalent bonds link nearly every step: noise


@dataclass(frozen=True, slots=True)
class Arc:
    """A bond as painted: the y of both ends in gutter coordinates."""

    bond: TraceBond
    y_source: int
    y_target: int


class BondGutter(QWidget):
    """A narrow strip left of the trace view; clicking an arc goes to the step it bonds to."""

    WIDTH = 48
    END_INSET = 3  # arcs end this far from the right edge, beside the row numbers
    HIT = 6  # pixels around an arc end or along an arc that count as a click on it

    target_clicked = Signal(int)  # the row the clicked arc points to

    def __init__(self, view: TraceView) -> None:
        super().__init__()
        self.view = view
        self.bonds: list[TraceBond] = []
        self.shown_types: set[str] = set(DEFAULT_SHOWN)
        self.show_others = True
        # The shown bonds with their row spans as arrays: finding those crossing the viewport is
        # one vectorized test, not a Python loop over every bond of the trace on every scroll.
        self._shown: list[TraceBond] = []
        self._low = np.zeros(0, dtype=np.int64)
        self._high = np.zeros(0, dtype=np.int64)
        self.setFixedWidth(self.WIDTH)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Expanding)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setToolTip("Bonds: click an arc or its end to go to the step it bonds to")
        bar = view.verticalScrollBar()
        bar.valueChanged.connect(self.update)
        bar.rangeChanged.connect(self.update)  # rows get measured in batches after opening
        view.step_model.modelReset.connect(self._clear)

    def sizeHint(self) -> QSize:
        return QSize(self.WIDTH, 100)

    def _clear(self) -> None:
        self.set_bonds([])

    def set_bonds(self, bonds: list[TraceBond]) -> None:
        self.bonds = bonds
        self._filter()

    def add_toggles(self, menu: QMenu) -> tuple[dict[str, QAction], QAction]:
        """The View menu's switches: one per bond type, and one for other annotators' bonds."""
        by_type = {
            type_: add_toggle(
                menu,
                name,
                type_ in self.shown_types,
                lambda shown, type_=type_: self.set_type_shown(type_, shown),
            )
            for type_, name in BOND_NAMES.items()
        }
        others = add_toggle(menu, "Other Annotators' Bonds (faint)", True, self.set_others_shown)
        return by_type, others

    def set_type_shown(self, type_: str, shown: bool) -> None:
        if shown:
            self.shown_types.add(type_)
        else:
            self.shown_types.discard(type_)
        self._filter()

    def set_others_shown(self, shown: bool) -> None:
        self.show_others = shown
        self._filter()

    def _filter(self) -> None:
        self._shown = [
            bond
            for bond in self.bonds
            if bond.type in self.shown_types and (bond.mine or self.show_others)
        ]
        spans = [(bond.source, bond.target) for bond in self._shown]
        array = np.array(spans, dtype=np.int64).reshape(-1, 2)
        self._low, self._high = array.min(axis=1), array.max(axis=1)
        self.update()

    # -- geometry --------------------------------------------------------------------------------

    def _offset(self) -> int:
        """Viewport y minus gutter y: the view's frame and header sit between the two."""
        window = self.window()
        return self.view.viewport().mapTo(window, QPoint()).y() - self.mapTo(window, QPoint()).y()

    def _row_ys(self, rows: set[int], first: int) -> dict[int, int]:
        """The y (gutter coordinates) of each row's first text line, where arcs end.

        One visualRect per distinct row: it is the costly call (it asks the delegate for sizes).
        Rows far off screen are pulled to one viewport height beyond the edge: the arc looks the
        same on screen, and the rasterizer need not walk a curve 40,000 pixels long.
        """
        view = self.view
        offset = self._offset()
        line = view.delegate.PAD + view.fontMetrics().height() // 2
        height = view.viewport().height()
        model = view.step_model
        ys = {}
        for row in rows:
            rect: QRect = view.visualRect(model.index(row))
            if rect.isValid():
                y = rect.top() + min(line, rect.height() // 2)
            else:  # not measured yet (batched layout): below the measured rows
                y = 2 * height if row > first else -height
            ys[row] = offset + max(-height, min(2 * height, y))
        return ys

    def arcs(self) -> list[Arc]:
        """The arcs to paint now: shown types and annotators, crossing the visible rows."""
        first, last = self.view.visible_rows()
        if last < first:
            return []
        hits = np.flatnonzero((self._low <= last) & (self._high >= first))
        crossing = [self._shown[i] for i in hits.tolist()]
        ys = self._row_ys({row for bond in crossing for row in (bond.source, bond.target)}, first)
        return [Arc(bond, ys[bond.source], ys[bond.target]) for bond in crossing]

    def end_x(self) -> int:
        return self.width() - self.END_INSET

    def _path(self, arc: Arc) -> QPainterPath:
        """A cubic from the source end to the target end, deeper for longer bonds (they nest)."""
        x = self.end_x()
        distance = abs(arc.bond.source - arc.bond.target)
        depth = min(x - 4, 4 + 7 * math.log2(1 + distance)) * 4 / 3  # apex reaches 3/4 of it
        path = QPainterPath(QPointF(x, arc.y_source))
        path.cubicTo(x - depth, arc.y_source, x - depth, arc.y_target, x, arc.y_target)
        return path

    def arc_at(self, point: QPoint) -> Arc | None:
        """The arc under a click: an end (source ends first), else the stroke; mine win ties."""
        arcs = sorted(self.arcs(), key=lambda arc: not arc.bond.mine)
        x = self.end_x()
        if abs(point.x() - x) <= self.HIT:
            for attribute in ("y_source", "y_target"):
                for arc in arcs:
                    if abs(getattr(arc, attribute) - point.y()) <= self.HIT:
                        return arc
        stroker = QPainterPathStroker()
        stroker.setWidth(self.HIT)
        for arc in arcs:
            if stroker.createStroke(self._path(arc)).contains(QPointF(point)):
                return arc
        return None

    # -- events ----------------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(event.rect(), self.palette().window())
        offset = self._offset()
        painter.setClipRect(QRect(0, offset, self.width(), self.view.viewport().height()))
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        x = self.end_x()
        # Others' arcs first and faint, so mine stay on top and readable. Pens are 1 px wide:
        # Qt strokes those on a fast path (~12 us an arc; a 2 px antialiased one costs ~200 us),
        # so my arcs get a second 1 px stroke beside the first rather than a wider pen.
        for arc in sorted(self.arcs(), key=lambda arc: arc.bond.mine):
            color = QColor(BOND_COLORS[arc.bond.type])
            if not arc.bond.mine:
                color.setAlpha(90)
            painter.setPen(QPen(color, 1.0))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            path = self._path(arc)
            painter.drawPath(path)
            if arc.bond.mine:
                painter.drawPath(path.translated(-1, 0))
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(color)
            size = 4 if arc.bond.mine else 3
            painter.drawEllipse(QPointF(x, arc.y_source), size / 2 + 0.5, size / 2 + 0.5)
            y = arc.y_target
            painter.drawPolygon(
                QPolygonF(
                    [QPointF(x + 2, y), QPointF(x - size, y - size), QPointF(x - size, y + size)]
                )
            )
        painter.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        arc = self.arc_at(event.position().toPoint())
        if event.button() == Qt.MouseButton.LeftButton and arc is not None:
            self.view.go_to(arc.bond.target)
            self.view.setFocus()
            self.target_clicked.emit(arc.bond.target)
        else:
            super().mousePressEvent(event)
