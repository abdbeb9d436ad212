"""The live structure panel: behavior distribution (bars) and transition heatmap (row percent),
for the shown trace and for the whole corpus, side by side.

The trace's side is counted from the labels the view already holds (no query, cheap enough per
keystroke). The corpus side is an incrementally kept aggregate (`CorpusTally`): a snapshot counted
in a worker thread (`structure.corpus_snapshot`, one scan of the project) when the project, the
annotator or labels outside the keyboard path change, plus what the labels in memory changed
since; the window updates it on a debounce timer, never once per keystroke.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from bondscope.services.metrics import percent_texts
from bondscope.services.structure import CorpusSnapshot, transition_matrix
from bondscope.ui.metrics.plots import TICKS, Heatmap, export_png, fixed_plot, set_text
from bondscope.ui.palette import BEHAVIOR_COLORS
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QVBoxLayout, QWidget

EXPORT_WIDTH = 900


class StructureSide:
    """One row of the panel: a title, the distribution bars and the heatmap with cell texts."""

    def __init__(self, layout: pg.GraphicsLayout, row: int) -> None:
        self.behaviors = np.zeros(4, dtype=np.int64)
        self.transitions = np.zeros((4, 4), dtype=np.int64)
        self.title = layout.addLabel("", row=row, col=0, colspan=2, color="#202020")
        self.bars_plot = layout.addPlot(row=row + 1, col=0)
        fixed_plot(self.bars_plot)
        self.bars_plot.getAxis("bottom").setTicks(TICKS)
        self.bars_plot.setYRange(0, 100, padding=0.05)
        self.bars_plot.setXRange(-0.6, 3.6, padding=0)
        self.bars_plot.setLabel("left", "% of steps")
        self.bars = pg.BarGraphItem(
            x=np.arange(4), height=np.zeros(4), width=0.7, brushes=list(BEHAVIOR_COLORS.values())
        )
        self.bars_plot.addItem(self.bars)
        self.bar_texts = [pg.TextItem("", anchor=(0.5, 1.0), color="k") for _ in range(4)]
        for i, text in enumerate(self.bar_texts):
            text.setPos(i, 0)
            self.bars_plot.addItem(text)
        self.heat = Heatmap(layout.addPlot(row=row + 1, col=1))
        self.heat.plot.setLabel("left", "from")
        self.heat.plot.setLabel("bottom", "to (% of the row)")
        self.cell_texts = self.heat.cells
        layout.layout.setColumnStretchFactor(0, 2)
        layout.layout.setColumnStretchFactor(1, 3)

    def percent(self) -> np.ndarray:
        """P(to | from) in percent, each row summing to 100 (0 for a behavior never left)."""
        return 100 * transition_matrix(self.transitions)

    def distribution(self) -> np.ndarray:
        total = self.behaviors.sum()
        return 100 * self.behaviors / total if total else np.zeros(4)

    def set_counts(
        self, behaviors: np.ndarray, transitions: np.ndarray, heading: str, detail: str
    ) -> None:
        """Show new counts under "<b>heading</b> (detail)". Items are updated in place, and only
        what changed: a text item's setText re-lays out its document, so 20 unchanged ones would
        cost more than the rest."""
        # A LabelItem renders HTML: the heading is ours, the detail holds names shown as typed.
        title = f"<b>{escape(heading)}</b> ({escape(detail)})"
        if title != self.title.text:
            self.title.setText(title)
        if np.array_equal(behaviors, self.behaviors) and np.array_equal(
            transitions, self.transitions
        ):
            return
        self.behaviors = np.asarray(behaviors, dtype=np.int64).copy()
        self.transitions = np.asarray(transitions, dtype=np.int64).copy()
        shares = self.distribution()
        self.bars.setOpts(height=shares)
        for i, text in enumerate(self.bar_texts):
            set_text(text, f"{shares[i]:.0f}%" if self.behaviors.sum() else "")
            text.setPos(i, shares[i])
        P = transition_matrix(self.transitions)
        self.heat.set_matrix(100 * P, percent_texts(P), 100)


Tally = tuple[np.ndarray, np.ndarray]  # (behaviors[4], transitions[4, 4]) of one trace


class CorpusTally:
    """Corpus counts kept current without re-reading the project: the snapshot's counts, plus,
    for each trace shown since, its counts now minus its counts when the snapshot or the trace
    was taken (whichever came later). Labels are written only in the shown trace."""

    def __init__(self, snapshot: CorpusSnapshot) -> None:
        self.annotator = snapshot.annotator
        self.behaviors = snapshot.counts.behaviors.copy()
        self.transitions = snapshot.counts.transitions.copy()
        self.traces = snapshot.counts.traces
        self.trace_id = snapshot.trace_id
        self.start: Tally = (snapshot.trace_behaviors, snapshot.trace_transitions)

    def leave(self, now: Tally) -> None:
        """The shown trace is left with counts `now`: fold its change into the base."""
        self.behaviors, self.transitions, self.traces = self.shown(now)

    def enter(self, trace_id: int, now: Tally) -> None:
        self.trace_id, self.start = trace_id, now

    def shown(self, now: Tally) -> tuple[np.ndarray, np.ndarray, int]:
        """(behaviors, transitions, labeled traces) with the shown trace at `now`."""
        was, labeled = self.start[0].sum() > 0, now[0].sum() > 0
        return (
            self.behaviors - self.start[0] + now[0],
            self.transitions - self.start[1] + now[1],
            self.traces + int(labeled) - int(was),
        )


class StructurePanel(QWidget):
    """Two StructureSides, "this trace" above "corpus"; right-click exports the panel as PNG."""

    def __init__(self) -> None:
        super().__init__()
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        self.graphics.setMinimumSize(300, 420)
        layout = self.graphics.ci
        self.trace = StructureSide(layout, 0)
        self.corpus = StructureSide(layout, 2)
        self.export_action = QAction("Export Panel as PNG…", self)
        self.export_action.triggered.connect(self.choose_export)
        self.graphics.addAction(self.export_action)
        self.graphics.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.graphics)

    def export_png(self, path: Path, width: int = EXPORT_WIDTH) -> None:
        """Render both sides to a PNG with pyqtgraph's exporter (works offscreen too)."""
        export_png(self.graphics.ci, path, width)

    def choose_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export structure panel", str(Path.home() / "structure.png"), "PNG (*.png)"
        )
        if path:
            self.export_png(Path(path))
