"""The Stability tab: bootstrap r against sample size."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from html import escape
from typing import TYPE_CHECKING, Any

import numpy as np
import pyqtgraph as pg
from bondscope.services.metrics import (
    REPEATS,
    StabilityResult,
    stability_csv_rows,
    stability_job,
    stability_rows,
)
from bondscope.store import Store
from bondscope.ui.metrics.plots import fixed_plot
from bondscope.ui.metrics.tab import MetricsTab, fill_table, make_table
from PySide6.QtCore import Qt

if TYPE_CHECKING:
    from bondscope.ui.metrics.panel import MetricsPanel


class StabilityTab(MetricsTab):
    """Bootstrap r against sample size: how many traces make the corpus matrix stable."""

    name = "stability"
    csv_header = ("traces", "mean_r", "sd_r", "resamples")

    def __init__(self, panel: MetricsPanel) -> None:
        super().__init__(panel)
        self.plot = self.graphics.ci.addPlot(row=0, col=0)
        fixed_plot(self.plot)
        self.plot.setLabel("bottom", "traces resampled (with replacement)")
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.plot.setLabel("left", "r with the whole corpus")
        self.plot.showGrid(y=True, alpha=0.3)
        for value, color in ((0.9, "#2e7d32"), (0.8, "#c62828")):
            line = pg.InfiniteLine(value, angle=0, pen=pg.mkPen(color, style=Qt.PenStyle.DashLine))
            self.plot.addItem(line)
        self.bars = pg.ErrorBarItem(x=np.zeros(0), y=np.zeros(0), height=np.zeros(0), beam=0.2)
        self.plot.addItem(self.bars)
        self.curve = self.plot.plot([], [], pen=pg.mkPen("#1e88e5", width=2), symbol="o")
        self.graphics.setMinimumHeight(300)
        self.table = make_table(["traces", "mean r", "sd"])
        self.table.setMaximumHeight(180)
        self.box.addWidget(self.graphics, 1)
        self.box.addWidget(self.table)
        self.setToolTip(
            f"structure.bootstrap_r: for each size n, {REPEATS} samples of n traces drawn with "
            "replacement (seed 0); r between each sample's P̂ and the whole corpus's. Error bars: "
            "± 1 sd. Dashed: r = 0.9 (compatible) and 0.8 (incompatible below)."
        )

    def job(self) -> Callable[[Store], Any]:
        return partial(stability_job, scope=self.panel.scope())

    def show_result(self, result: StabilityResult) -> None:
        curve = result.curve
        x = np.arange(len(curve.sizes), dtype=float)  # evenly spaced: the sizes are a ladder
        self.plot.getAxis("bottom").setTicks([[(i, str(n)) for i, n in enumerate(curve.sizes)]])
        self.bars.setData(x=x, y=curve.mean, height=2 * curve.sd)
        self.curve.setData(x, curve.mean)
        if len(x):
            low = float(np.nanmin(curve.mean - curve.sd)) if np.isfinite(curve.mean).any() else 0
            self.plot.setRange(xRange=(-0.5, len(x) - 0.5), yRange=(min(low, 0.75), 1.0))
        self.status.setText(
            f"{escape(result.selection.describe())}: {result.traces} traces; "
            f"{REPEATS} resamples per size, seed 0"
        )
        fill_table(self.table, stability_rows(curve))

    def csv_rows(self) -> list[list[Any]]:
        return [] if self.result is None else stability_csv_rows(self.result)
