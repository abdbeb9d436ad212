"""The Metrics dock (`MetricsPanel`): one tab per metric over the jobs of services/metrics.py.

`panel` holds the selection bar and the tabs, `tab` their base (`MetricsTab`), one module per tab,
and `plots` the pyqtgraph figures the structure panel and the synthesis report reuse.
"""

from bondscope.services.metrics import fmt, stability_sizes
from bondscope.ui.metrics.agreement import AgreementTab
from bondscope.ui.metrics.geometry import GeometryTab
from bondscope.ui.metrics.panel import MetricsPanel
from bondscope.ui.metrics.stability import StabilityTab
from bondscope.ui.metrics.tab import MetricsTab, table_texts
from bondscope.ui.metrics.transition import TransitionTab

__all__ = [
    "AgreementTab",
    "GeometryTab",
    "MetricsPanel",
    "MetricsTab",
    "StabilityTab",
    "TransitionTab",
    "fmt",
    "stability_sizes",
    "table_texts",
]
