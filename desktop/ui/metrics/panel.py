"""The Metrics dock: transition graph, stability, geometry and agreement, one tab each.

Every number comes from the Qt-free jobs of `services/metrics.py`, computed in a CallWorker thread
with its own Store: t-SNE takes seconds and a corpus scan can too, and neither may stall a
keystroke. A tab computes only while it is shown; label changes reach it through the window's
debounce timer, so a burst of labels costs one computation. Each tab exports its figure (PNG,
pyqtgraph's ImageExporter) and its table (CSV).
"""

from __future__ import annotations

from pathlib import Path

from bondscope.services.labeling import project_choices
from bondscope.services.metrics import Scope
from bondscope.store import Store
from bondscope.ui.metrics.agreement import AgreementTab
from bondscope.ui.metrics.geometry import GeometryTab
from bondscope.ui.metrics.stability import StabilityTab
from bondscope.ui.metrics.tab import MetricsTab
from bondscope.ui.metrics.transition import TransitionTab
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QTabWidget, QVBoxLayout, QWidget

AUTO = "Auto"
ALL = "All"


class MetricsPanel(QWidget):
    """The selection bar (annotator, model, source) above the four tabs.

    The window tells it what changed (project, trace, labels, annotator) and whether it is on
    screen; it decides what to recompute. Clicking a step on the geometry map emits
    `step_requested` with the step's row.
    """

    step_requested = Signal(int)

    def __init__(self, me: str) -> None:
        super().__init__()
        self.me = me
        self.project: Path | None = None
        self.trace_id: int | None = None
        self.live = False
        self.annotator_box = QComboBox()
        self.model_box = QComboBox()
        self.source_box = QComboBox()
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 4, 4, 0)
        for label, box in (
            ("Annotator:", self.annotator_box),
            ("Model:", self.model_box),
            ("Source:", self.source_box),
        ):
            box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
            box.currentIndexChanged.connect(self._scope_changed)
            box.setToolTip(
                "Annotator Auto: my labels when I have any, else the newest model's. "
                "Transition graph and stability count one annotator; agreement compares all."
                if box is self.annotator_box
                else "Only traces of this value count (All: no filter)."
            )
            bar.addWidget(QLabel(label))
            bar.addWidget(box)
        bar.addStretch(1)
        self.transition = TransitionTab(self)
        self.stability = StabilityTab(self)
        self.geometry = GeometryTab(self)
        self.agreement = AgreementTab(self)
        self.geometry.step_clicked.connect(self.step_requested)
        self.tabs = QTabWidget()
        self.tabs.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        for tab, title in (
            (self.transition, "Transition graph"),
            (self.stability, "Stability"),
            (self.geometry, "Geometry"),
            (self.agreement, "Agreement"),
        ):
            self.tabs.addTab(tab, title)
            self.tabs.setTabToolTip(self.tabs.count() - 1, tab.toolTip())
        self.tabs.currentChanged.connect(lambda _: self._catch_up())
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addLayout(bar)
        box.addWidget(self.tabs, 1)

    def all_tabs(self) -> list[MetricsTab]:
        return [self.transition, self.stability, self.geometry, self.agreement]

    def scope(self) -> Scope:
        return Scope(
            self.me,
            self.annotator_box.currentData(),
            self.model_box.currentData(),
            self.source_box.currentData(),
        )

    def is_live(self, tab: MetricsTab) -> bool:
        return self.live and self.tabs.currentWidget() is tab

    # what the window reports ------------------------------------------------------------------

    def set_live(self, live: bool, store: Store | None) -> None:
        """The dock was shown or hidden: a shown tab catches up on what it missed."""
        self.live = live
        if live and store is not None:
            self.fill_choices(store)
        self._catch_up()

    def set_project(self, path: Path, store: Store) -> None:
        self.project = path
        self.trace_id = None
        self.fill_choices(store)
        for tab in self.all_tabs():
            tab.request()

    def set_trace(self, trace_id: int) -> None:
        if trace_id != self.trace_id:
            self.trace_id = trace_id
            self.geometry.request(150)  # paging through traces with the list: the last one

    def labels_changed(self, store: Store) -> None:
        """Called after the window's debounce: labels, bonds or the annotator list changed."""
        if self.live:
            self.fill_choices(store)
        for tab in self.all_tabs():
            tab.request()

    def fill_choices(self, store: Store) -> None:
        """Annotators, models and sources of the project (cheap queries), keeping choices."""
        choices = project_choices(store)
        for box, first, values in (
            (self.annotator_box, AUTO, choices.annotators),
            (self.model_box, ALL, choices.models),
            (self.source_box, ALL, choices.sources),
        ):
            current = box.currentData()
            box.blockSignals(True)
            box.clear()
            box.addItem(first, None)
            for value in values:
                box.addItem(value, value)
            box.setCurrentIndex(max(0, box.findData(current)) if current else 0)
            box.blockSignals(False)
            if box.currentData() != current:  # the chosen value is gone
                self._scope_changed()

    def _scope_changed(self) -> None:
        for tab in self.all_tabs():
            tab.request()

    def _catch_up(self) -> None:
        tab = self.tabs.currentWidget()
        if self.live and isinstance(tab, MetricsTab):
            tab.catch_up()

    def shutdown(self) -> None:
        """Wait for running computations: a QThread may not be destroyed while it runs."""
        for tab in self.all_tabs():
            tab.shutdown()
