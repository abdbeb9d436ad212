"""The Agreement tab: pairwise agreement of every annotator and a chosen pair's confusion."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
from bondscope.services.metrics import (
    agreement_csv_rows,
    agreement_job,
    agreement_rows,
    agreement_summary,
)
from bondscope.store import Store
from bondscope.ui.metrics.plots import Heatmap
from bondscope.ui.metrics.tab import MetricsTab, fill_table, make_table
from PySide6.QtWidgets import QLabel

if TYPE_CHECKING:
    from bondscope.ui.metrics.panel import MetricsPanel

AGREEMENT_COLUMNS = ["a", "b", "kind", "steps", "raw", "κ", "AC1", "bond F1"]


class AgreementTab(MetricsTab):
    """Pairwise κ / AC1 / raw agreement and bond F1, α over all, a chosen pair's confusion."""

    name = "agreement"
    csv_header = (
        "a",
        "b",
        "kind",
        "steps",
        "observed",
        "cohen_kappa",
        "gwet_ac1",
        "bond_f1",
        "bond_precision",
        "bond_recall",
    )

    def __init__(self, panel: MetricsPanel) -> None:
        super().__init__(panel)
        self.summary = QLabel("")
        self.table = make_table(AGREEMENT_COLUMNS)
        self.table.setMaximumHeight(200)
        self.table.itemSelectionChanged.connect(self._pair_chosen)
        plot = self.graphics.ci.addPlot(row=0, col=0)
        self.confusion = Heatmap(plot)
        self.graphics.setMinimumHeight(320)
        self.box.addWidget(self.summary)
        self.box.addWidget(self.table)
        self.box.addWidget(self.graphics, 1)
        self.setToolTip(
            "Labels are compared on steps both annotators labeled (by step id); bonds match when "
            "in the same trace, of the same type, with both ends within ±1 step. κ collapses when "
            "one behavior dominates; AC1 does not. Select a pair to see its confusion matrix."
        )

    def job(self) -> Callable[[Store], Any]:
        return partial(agreement_job, scope=self.panel.scope())

    def show_result(self, result: dict[str, Any]) -> None:
        self.summary.setText(agreement_summary(result))
        fill_table(self.table, agreement_rows(result))
        if result["pairs"]:
            self.table.selectRow(0)
        self._pair_chosen()

    def _failed(self, message: str) -> None:
        super()._failed(message)
        if not self.pending:
            self.summary.setText("")
            self.table.setRowCount(0)

    def selected_pair(self) -> dict[str, Any] | None:
        rows = self.table.selectionModel().selectedRows()
        if self.result is None or not rows:
            return None
        return self.result["pairs"][rows[0].row()]

    def _pair_chosen(self) -> None:
        pair = self.selected_pair()
        if pair is None:
            return
        counts = np.asarray(pair["confusion"], dtype=float)
        self.confusion.set_matrix(
            counts, [[str(int(v)) for v in row] for row in counts], counts.max()
        )
        self.confusion.plot.setLabel("left", f"{pair['a']} (rows)")
        self.confusion.plot.setLabel("bottom", f"{pair['b']} (columns)")
        self.confusion.plot.setTitle(
            f"confusion: {pair['steps']} steps labeled by both", size="9pt"
        )

    def csv_rows(self) -> list[list[Any]]:
        return [] if self.result is None else agreement_csv_rows(self.result)
