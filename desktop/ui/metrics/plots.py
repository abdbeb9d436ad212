"""pyqtgraph building blocks of the metrics dock, the structure panel and the synthesis report:
a labeled heatmap, a 4-node transition graph, and PNG export.

Both figures wrap a PlotItem and are updated in place (setImage / setData), so a recomputation
redraws the same items instead of rebuilding the scene.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
import pyqtgraph.exporters  # noqa: F401 - not imported by `import pyqtgraph`
from bondscope.domain import BEHAVIORS
from bondscope.ui.palette import BEHAVIOR_COLORS
from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QColor, QPen, QTransform
from PySide6.QtWidgets import QGraphicsEllipseItem

TICKS = [[(i, behavior) for i, behavior in enumerate(BEHAVIORS)]]
COLORMAP = pg.colormap.get("viridis")
DARK, LIGHT = QColor("black"), QColor("white")
EDGE_LABEL_MIN = 0.05  # edges below 5% get no text label: 12 labels on a small graph are noise
NODE_RADIUS = 0.2  # in data units; the nodes sit on the unit circle
LOOP_RADIUS = 0.16
EDGE_OFFSET = 0.06  # a->b and b->a are drawn side by side, each to the right of its direction


def fixed_plot(plot: pg.PlotItem) -> None:
    """A figure, not an explorer: no mouse zoom, context menu or auto-range button."""
    plot.setMouseEnabled(False, False)
    plot.setMenuEnabled(False)
    plot.hideButtons()


def export_png(layout: pg.GraphicsLayout, path: Path, width: int) -> None:
    """Render a figure to a PNG with pyqtgraph's exporter (works offscreen too)."""
    exporter = pg.exporters.ImageExporter(layout)
    exporter.parameters()["width"] = width
    exporter.export(str(path))


def set_text(item: pg.TextItem, text: str) -> None:
    """setText re-lays out the document: skip it when nothing changed."""
    if item.toPlainText() != text:
        item.setText(text)


class Heatmap:
    """A square matrix as an image with a text in every cell (row-major: rows are "from")."""

    def __init__(self, plot: pg.PlotItem, size: int = 4, ticks: list | None = None) -> None:
        self.plot = plot
        self.size = size
        fixed_plot(plot)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setColorMap(COLORMAP)
        self.image.setTransform(QTransform().translate(-0.5, -0.5))  # cell centres on the ticks
        self.image.setImage(np.zeros((size, size)), levels=(0, 1))
        plot.addItem(self.image)
        plot.invertY(True)
        plot.setAspectLocked(True)
        plot.setRange(xRange=(-0.5, size - 0.5), yRange=(-0.5, size - 0.5), padding=0)
        for axis in ("left", "bottom"):
            plot.getAxis(axis).setTicks(ticks or TICKS)
        self.cells = [
            [pg.TextItem("", anchor=(0.5, 0.5)) for _ in range(size)] for _ in range(size)
        ]
        for i, row in enumerate(self.cells):
            for j, text in enumerate(row):
                text.setPos(j, i)
                plot.addItem(text)

    def set_matrix(self, values: np.ndarray, texts: list[list[str]], top: float) -> None:
        """Colors from `values` scaled to [0, top]; `texts` are written as given."""
        top = top if top > 0 else 1.0
        self.image.setImage(np.asarray(values, dtype=float), levels=(0, top))
        for i, row in enumerate(self.cells):
            for j, text in enumerate(row):
                set_text(text, texts[i][j])
                color = DARK if values[i][j] > 0.6 * top else LIGHT  # bright end of viridis
                if text.color != color:
                    text.setColor(color)

    def texts(self) -> list[list[str]]:
        return [[text.toPlainText() for text in row] for row in self.cells]


class TransitionGraph:
    """The 4x4 transition matrix as a node-link graph: N, D, R, E on a circle.

    Edge width and opacity grow with P(to | from); a->b and b->a are drawn as two parallel
    lines, each with an arrowhead; self-loops are small circles outside their node. Edges of at
    least 5% carry their percentage (the heatmap beside it has every cell).
    """

    def __init__(self, plot: pg.PlotItem) -> None:
        self.plot = plot
        fixed_plot(plot)
        plot.setAspectLocked(True)
        plot.hideAxis("left")
        plot.hideAxis("bottom")
        plot.setRange(xRange=(-1.55, 1.55), yRange=(-1.55, 1.55), padding=0)
        angles = np.pi / 2 - np.arange(4) * np.pi / 2  # N at the top, then clockwise
        self.centers = np.column_stack([np.cos(angles), np.sin(angles)])
        self.edges = [(i, j) for i in range(4) for j in range(4) if i != j]
        self.graph = pg.GraphItem()
        plot.addItem(self.graph)
        self.arrows = [pg.ArrowItem(headLen=10, tailLen=0, pen=None) for _ in self.edges]
        self.edge_texts = [pg.TextItem("", anchor=(0.5, 0.5), color="#202020") for _ in self.edges]
        for item in (*self.arrows, *self.edge_texts):
            plot.addItem(item)
        self.loops: list[QGraphicsEllipseItem] = []
        self.loop_texts: list[pg.TextItem] = []
        for center in self.centers:
            outward = center * (1 + NODE_RADIUS + LOOP_RADIUS * 0.8)
            loop = QGraphicsEllipseItem(
                QRectF(-LOOP_RADIUS, -LOOP_RADIUS, 2 * LOOP_RADIUS, 2 * LOOP_RADIUS)
            )
            loop.setPos(QPointF(*outward))
            plot.addItem(loop)
            self.loops.append(loop)
            text = pg.TextItem("", anchor=(0.5, 0.5), color="#202020")
            side = np.array([center[1], -center[0]])  # beside the loop, clockwise of it
            text.setPos(*(outward + side * (LOOP_RADIUS + 0.2)))
            plot.addItem(text)
            self.loop_texts.append(text)
        self.node_texts = []
        for i, behavior in enumerate(BEHAVIORS):
            text = pg.TextItem(behavior, anchor=(0.5, 0.5), color="w")
            text.setPos(*self.centers[i])
            text.setZValue(10)
            plot.addItem(text)
            self.node_texts.append(text)
        self.matrix = np.zeros((4, 4))
        self.set_matrix(np.zeros((4, 4)))

    def _segment(self, i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Start and end of the line i -> j: shifted to its right, trimmed to the node rims."""
        a, b = self.centers[i], self.centers[j]
        direction = (b - a) / np.linalg.norm(b - a)
        right = np.array([direction[1], -direction[0]])
        shift = right * EDGE_OFFSET
        return a + direction * NODE_RADIUS + shift, b - direction * (NODE_RADIUS + 0.02) + shift

    def set_matrix(self, P: np.ndarray) -> None:
        """Redraw for a row-stochastic P (a row of zeros: that behavior is never left)."""
        self.matrix = np.asarray(P, dtype=float)
        points, adjacency, pens = [*self.centers], [], []
        for k, (i, j) in enumerate(self.edges):
            p = float(self.matrix[i, j])
            start, end = self._segment(i, j)
            points += [start, end]
            adjacency.append((4 + 2 * k, 5 + 2 * k))
            color = QColor(BEHAVIOR_COLORS[BEHAVIORS[i]])
            color.setAlpha(int(30 + 225 * p) if p > 0 else 0)
            pens.append((color.red(), color.green(), color.blue(), color.alpha(), 1 + 9 * p))
            direction = end - start
            arrow = self.arrows[k]
            arrow.setStyle(
                angle=180 - np.degrees(np.arctan2(direction[1], direction[0])),
                brush=color,
                headLen=8 + 8 * p,
                headWidth=6 + 6 * p,
            )
            arrow.setPos(*end)
            arrow.setVisible(bool(p > 0))
            text = self.edge_texts[k]
            middle = start + 0.55 * direction + np.array([direction[1], -direction[0]]) * 0.12
            text.setPos(*middle)
            set_text(text, f"{100 * p:.0f}%" if p >= EDGE_LABEL_MIN else "")
        pen_array = np.array(
            pens,
            dtype=[
                ("red", np.ubyte),
                ("green", np.ubyte),
                ("blue", np.ubyte),
                ("alpha", np.ubyte),
                ("width", float),
            ],
        )
        hidden = len(points) - 4  # the edge ends: zero-size, invisible nodes
        brushes = [pg.mkBrush(BEHAVIOR_COLORS[b]) for b in BEHAVIORS] + [pg.mkBrush(None)] * hidden
        self.graph.setData(
            pos=np.array(points),
            adj=np.array(adjacency),
            pen=pen_array,
            size=[2 * NODE_RADIUS] * 4 + [0.0] * hidden,
            symbol="o",
            symbolBrush=brushes,
            symbolPen=[pg.mkPen("w", width=1.5)] * 4 + [pg.mkPen(None)] * hidden,
            pxMode=False,
        )
        for i, (loop, text) in enumerate(zip(self.loops, self.loop_texts, strict=True)):
            p = float(self.matrix[i, i])
            color = QColor(BEHAVIOR_COLORS[BEHAVIORS[i]])
            color.setAlpha(int(30 + 225 * p) if p > 0 else 0)
            pen = QPen(color)
            pen.setCosmetic(True)
            pen.setWidthF(1 + 9 * p)
            loop.setPen(pen)
            set_text(text, f"{100 * p:.0f}%" if p > 0 else "")

    def labels(self) -> dict[tuple[int, int], str]:
        """Every label shown, by (from, to): what a reader can read off the graph."""
        shown = {edge: t.toPlainText() for edge, t in zip(self.edges, self.edge_texts, strict=True)}
        shown |= {(i, i): t.toPlainText() for i, t in enumerate(self.loop_texts)}
        return {edge: text for edge, text in shown.items() if text}
