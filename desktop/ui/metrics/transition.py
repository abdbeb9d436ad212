"""The Transition graph tab: the corpus matrix as a graph and a heatmap, a preset's, and compare."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from html import escape
from typing import TYPE_CHECKING, Any

from bondscope.services.metrics import (
    FALLBACK_ALPHA,
    TransitionResult,
    fmt,
    percent_texts,
    transition_csv_rows,
    transition_job,
)
from bondscope.services.structure import presets
from bondscope.store import Store
from bondscope.ui.metrics.plots import Heatmap, TransitionGraph
from bondscope.ui.metrics.tab import MetricsTab
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox

if TYPE_CHECKING:
    from bondscope.ui.metrics.panel import MetricsPanel

DEFAULT_PRESET = "deepseek-r1-0528"


class TransitionTab(MetricsTab):
    """The corpus graph beside its heatmap, a preset's below, and the comparison line."""

    name = "transition-graph"
    csv_header = ("matrix", "from", "to", "count", "probability")

    def __init__(self, panel: MetricsPanel) -> None:
        super().__init__(panel)
        self.preset_box = QComboBox()
        for preset_id, item in presets().items():
            self.preset_box.addItem(item.name, preset_id)
        self.preset_box.setCurrentIndex(max(0, self.preset_box.findData(DEFAULT_PRESET)))
        self.preset_box.currentIndexChanged.connect(lambda _: self.request())
        self.alpha_box = QDoubleSpinBox()
        self.alpha_box.setDecimals(4)
        self.alpha_box.setRange(0, 1)
        self.alpha_box.setSingleStep(0.001)
        self.alpha_box.setToolTip(
            "Laplace smoothing added to every count. With 0 and a behavior never left, "
            f"{FALLBACK_ALPHA} is used so that the stationary π (the JS weights) exists."
        )
        self.alpha_box.valueChanged.connect(lambda _: self.request(300))
        self.add_control("Preset:", self.preset_box)
        self.add_control("α:", self.alpha_box)
        layout = self.graphics.ci
        self.corpus_title = layout.addLabel("", row=0, col=0, colspan=2, color="#202020")
        self.corpus_graph = TransitionGraph(layout.addPlot(row=1, col=0))
        self.corpus_heat = Heatmap(layout.addPlot(row=1, col=1))
        self.preset_title = layout.addLabel("", row=2, col=0, colspan=2, color="#202020")
        self.preset_graph = TransitionGraph(layout.addPlot(row=3, col=0))
        self.preset_heat = Heatmap(layout.addPlot(row=3, col=1))
        for heat in (self.corpus_heat, self.preset_heat):
            heat.plot.setLabel("left", "from")
            heat.plot.setLabel("bottom", "to (% of the row)")
        self.compare_label = layout.addLabel("", row=4, col=0, colspan=2, color="#202020")
        self.graphics.setMinimumHeight(520)
        self.box.addWidget(self.graphics, 1)
        self.setToolTip(
            "Corpus: pooled counts of one annotator over the filtered traces (rows: from). "
            "Compare: Pearson r over the 16 cells, π-weighted Jensen-Shannon (bits, weights: "
            "the corpus's stationary π) and the §3.3 verdict (r ≥ 0.9 compatible)."
        )

    def job(self) -> Callable[[Store], Any]:
        return partial(
            transition_job,
            scope=self.panel.scope(),
            preset_id=self.preset_box.currentData(),
            alpha=self.alpha_box.value(),
        )

    def show_result(self, result: TransitionResult) -> None:
        counts = result.counts
        self.corpus_title.setText(
            f"<b>Corpus</b> ({escape(result.selection.describe())}; {counts.traces} traces, "
            f"{counts.transitions.sum()} transitions; α = {result.alpha:g})"
        )
        self.corpus_graph.set_matrix(result.P)
        self.corpus_heat.set_matrix(100 * result.P, percent_texts(result.P), 100)
        self.preset_title.setText(f"<b>Preset</b> {result.preset.name}")
        self.preset_graph.set_matrix(result.preset.P)
        self.preset_heat.set_matrix(100 * result.preset.P, percent_texts(result.preset.P), 100)
        self.compare_label.setText(self.compare_text(result))

    @staticmethod
    def compare_text(result: TransitionResult) -> str:
        c = result.comparison
        if c is None:
            return "Compare: no transitions in this selection yet"
        return (
            f"Compare with {result.preset.id}:<br>r = {fmt(c['pearson_r'])} · weighted JS = "
            f"{fmt(c['weighted_js_bits'], 4)} bits · L1(π) = {fmt(c['pi_l1'])} · "
            f"<b>{c['verdict']}</b>"
        )

    def csv_rows(self) -> list[list[Any]]:
        return [] if self.result is None else transition_csv_rows(self.result)
