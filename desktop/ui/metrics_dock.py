"""The Metrics dock: transition graph, stability, geometry and agreement, one tab each.

Every number comes from the Qt-free services (structure, geometry, agreement), computed in a
CallWorker thread with its own Store: t-SNE takes seconds and a corpus scan can too, and neither
may stall a keystroke. A tab computes only while it is shown; label changes reach it through the
window's debounce timer, so a burst of labels costs one computation. Each tab exports its figure
(PNG, pyqtgraph's ImageExporter) and its table (CSV).
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
import pyqtgraph.exporters  # noqa: F401 - not imported by `import pyqtgraph`
from bondscope.domain import BEHAVIORS
from bondscope.services import labeling
from bondscope.services.agreement import agreement
from bondscope.services.structure import (
    BootstrapCurve,
    Counts,
    Preset,
    Selection,
    SelectionError,
    bootstrap_r,
    compare,
    preset,
    presets,
    resolve_annotator,
    trace_transition_counts,
    transition_counts,
    transition_matrix,
)
from bondscope.store import Store
from bondscope.ui.metrics_plots import Heatmap, TransitionGraph, fixed_plot
from bondscope.ui.trace_view import BEHAVIOR_COLORS
from bondscope.ui.workers import CallWorker
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

AUTO = "Auto"
ALL = "All"
DEFAULT_PRESET = "deepseek-r1-0528"
FALLBACK_ALPHA = 1e-3  # the paper's smoothing for sparse corpora (docs/metrics.md)
SIZES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
REPEATS = 100
EXPORT_WIDTH = 1200
TIP_CHARS = 80
UNLABELED = QColor("#d0d0d0")
EMBEDDER_TIP = (
    "Steps are embedded with TF-IDF + SVD by default: about 20 ms for a trace, against ~2 s per "
    "100 steps for the MiniLM encoder on a CPU. Choose MiniLM for embeddings that see meaning "
    "rather than shared words. The 3-D t-SNE (seed 0) runs with one thread in the background; "
    "the map shows its first two axes, the distances in the table use all three."
)


def fmt(value: float | None, digits: int = 3) -> str:
    """A number as every tab shows it; an undefined one (None, NaN) as a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def csv_cell(value: Any) -> Any:
    """Floats at full precision (repr), numpy scalars as Python ones, undefined as empty."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(value) if isinstance(value, float) else value


# -- what to measure, and the Qt-free jobs the workers run ---------------------------------------


@dataclass(frozen=True)
class Scope:
    """The dock's choices: an annotator (None: mine, else the newest model) and trace filters."""

    me: str
    annotator: str | None = None
    model: str | None = None
    source: str | None = None


def has_labels(store: Store, annotator: str) -> bool:
    return (
        store.conn.execute(
            "SELECT 1 FROM label_events e JOIN annotators a ON a.id = e.annotator_id"
            " WHERE a.name = ? LIMIT 1",
            (annotator,),
        ).fetchone()
        is not None
    )


def pick_annotator(store: Store, scope: Scope) -> Selection:
    """The selection to count: one annotator, as the structure panel picks it by default."""
    selection = Selection(model=scope.model, source=scope.source, annotator=scope.annotator)
    if scope.annotator is None:
        if has_labels(store, scope.me):
            return Selection(model=scope.model, source=scope.source, annotator=scope.me)
        model = labeling.newest_model_annotator(store)
        if model is not None:
            return Selection(model=scope.model, source=scope.source, annotator=model)
    return resolve_annotator(store, selection)


@dataclass(frozen=True)
class TransitionResult:
    selection: Selection
    counts: Counts
    alpha: float  # the smoothing used: the chosen one, or FALLBACK_ALPHA when a row was empty
    P: np.ndarray
    preset: Preset
    comparison: dict[str, Any] | None  # structure.compare(P, preset.P); None: no transitions


def transition_job(store: Store, scope: Scope, preset_id: str, alpha: float) -> TransitionResult:
    """The corpus matrix and its comparison with a preset, as `bondscope compare` makes it.

    compare() needs a row-stochastic P; with alpha = 0 and a behavior never left, the paper's
    alpha = 0.001 is applied (and shown) instead of refusing, as the CLI does.
    """
    selection = pick_annotator(store, scope)
    counts = transition_counts(store, selection)
    empty_row = (counts.transitions.sum(axis=1) == 0).any()
    used = FALLBACK_ALPHA if alpha == 0 and empty_row else alpha
    P = transition_matrix(counts.transitions, used)
    chosen = preset(preset_id)
    comparison = compare(P, chosen.P) if counts.transitions.sum() else None
    return TransitionResult(selection, counts, used, P, chosen, comparison)


def stability_sizes(traces: int) -> list[int]:
    """A 1-2-5 ladder below the corpus size, then the corpus size itself."""
    return [n for n in SIZES if n < traces] + ([traces] if traces else [])


@dataclass(frozen=True)
class StabilityResult:
    selection: Selection
    traces: int
    curve: BootstrapCurve


def stability_job(store: Store, scope: Scope) -> StabilityResult:
    """structure.bootstrap_r over the selection's traces (100 resamples per size, seed 0)."""
    selection = pick_annotator(store, scope)
    ids, per_trace = trace_transition_counts(store, selection)
    curve = bootstrap_r(per_trace, stability_sizes(len(ids)), repeats=REPEATS, seed=0)
    return StabilityResult(selection, len(ids), curve)


def trace_annotator_for(store: Store, trace_id: int, scope: Scope) -> str | None:
    """Whose labels the trace's geometry shows: the chosen one, else mine, else the model's."""
    if scope.annotator is not None:
        return scope.annotator
    names = [
        row[0]
        for row in store.conn.execute(
            "SELECT DISTINCT annotator FROM current_labels WHERE trace_id = ? ORDER BY 1",
            (trace_id,),
        )
    ]
    if scope.me in names:
        return scope.me
    newest = labeling.newest_model_annotator(store)
    return newest if newest in names else (names[0] if names else None)


GEOMETRY_CHILD = """
import json, sys
from bondscope.services.geometry import geometry
from bondscope.store import Store
with Store(sys.argv[1], create=False) as store:
    data = geometry(store, sys.argv[2], sys.argv[3] or None, sys.argv[4])
print(json.dumps(data, default=float))
"""


class ChildProcess:
    """The running child of a geometry job, so that closing the window can stop it."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()


def geometry_job(
    store: Store, trace_id: int, scope: Scope, embedder: str, child: ChildProcess | None = None
) -> dict[str, Any]:
    """geometry.geometry of one trace, run in a child Python, plus step texts for the tips.

    A child process, not this thread: t-SNE's Python loop held the GIL often enough to push the
    keystroke p99 from 6 to 19 ms while a 1,000-step trace was measured. The child runs with one
    OpenMP thread: on a shared CPU, t-SNE's threads fought each other and the GUI (10 s instead of
    0.8 s for a 95-step trace), and one trace gains nothing from more.
    """
    name = store.conn.execute("SELECT name FROM traces WHERE id = ?", (trace_id,)).fetchone()[0]
    annotator = trace_annotator_for(store, trace_id, scope)
    child = child or ChildProcess()
    child.process = subprocess.Popen(
        [sys.executable, "-c", GEOMETRY_CHILD, str(store.path), name, annotator or "", embedder],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
    )
    out, err = child.process.communicate()
    if child.process.returncode != 0:
        lines = err.strip().splitlines() or [f"exit status {child.process.returncode}"]
        raise SelectionError(f"geometry failed: {lines[-1]}")
    result = json.loads(out)
    loaded = store.load_trace(trace_id, [])
    result["texts"] = [loaded.text[s.start : s.end].strip()[:TIP_CHARS] for s in loaded.steps]
    result["trace_id"] = trace_id
    return result


def agreement_job(store: Store, scope: Scope) -> dict[str, Any]:
    """agreement.agreement over every annotator of the filtered traces."""
    return agreement(store, model=scope.model, source=scope.source)


# -- tabs ----------------------------------------------------------------------------------------


def make_table(columns: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(columns))
    table.setHorizontalHeaderLabels(columns)
    table.verticalHeader().hide()
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys stay with the trace view
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 6)
    return table


def fill_table(table: QTableWidget, rows: list[list[str]]) -> None:
    table.setRowCount(len(rows))
    for i, row in enumerate(rows):
        for j, text in enumerate(row):
            table.setItem(i, j, QTableWidgetItem(text))


def table_texts(table: QTableWidget) -> list[list[str]]:
    """What the table shows, cell by cell (for tests and CSV of shown values)."""
    return [
        [table.item(i, j).text() for j in range(table.columnCount())]
        for i in range(table.rowCount())
    ]


class MetricsTab(QWidget):
    """One metric: controls, a pyqtgraph figure, its numbers, and PNG/CSV export.

    Subclasses say what to compute (`job`, a Qt-free function of a Store) and how to show it
    (`show_result`); the base runs one worker at a time and drops results that a newer request
    has made stale.
    """

    computed = Signal()  # a result (or an error) is on screen
    name = "metric"
    csv_header: tuple[str, ...] = ()

    def __init__(self, panel: MetricsPanel) -> None:
        super().__init__()
        self.panel = panel
        self.result: Any = None
        self.error: str | None = None
        self.worker: CallWorker | None = None
        self.pending = False  # a request came while the worker ran: run again when it ends
        self.dirty = True  # the result on screen is out of date
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self.start)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        self.graphics.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.controls = QHBoxLayout()
        self.controls.setContentsMargins(0, 0, 0, 0)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.export_png_action = QAction("Export PNG…", self)
        self.export_png_action.triggered.connect(self.choose_png)
        self.export_csv_action = QAction("Export CSV…", self)
        self.export_csv_action.triggered.connect(self.choose_csv)
        self.controls.addStretch(1)
        for action in (self.export_png_action, self.export_csv_action):
            button = QToolButton()
            button.setDefaultAction(action)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            self.controls.addWidget(button)
        self.box = QVBoxLayout(self)
        self.box.setContentsMargins(4, 4, 4, 4)
        self.box.addLayout(self.controls)
        self.box.addWidget(self.status)

    def add_control(self, label: str, widget: QWidget) -> None:
        """A labeled control, left of the export buttons; it may not take the keyboard focus."""
        widget.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        position = self.controls.count() - 3  # before the stretch and the two buttons
        self.controls.insertWidget(position, QLabel(label))
        self.controls.insertWidget(position + 1, widget)

    # subclasses -----------------------------------------------------------------------------

    def job(self) -> Callable[[Store], Any] | None:
        """The computation for the current choices; None when there is nothing to compute."""
        raise NotImplementedError

    def show_result(self, result: Any) -> None:
        raise NotImplementedError

    def csv_rows(self) -> list[list[Any]]:
        raise NotImplementedError

    # scheduling -----------------------------------------------------------------------------

    def request(self, delay_ms: int = 0) -> None:
        """Mark out of date; compute after `delay_ms` if the tab is on screen, else when shown."""
        self.dirty = True
        if self.panel.is_live(self):
            self.timer.start(delay_ms)

    def catch_up(self) -> None:
        if self.dirty and not self.timer.isActive():
            self.timer.start(0)

    def busy(self) -> bool:
        return self.dirty or self.worker is not None or self.timer.isActive()

    def start(self) -> None:
        if self.worker is not None:
            self.pending = True
            return
        if self.panel.project is None:
            return
        job = self.job()
        self.dirty = False
        if job is None:
            self.computed.emit()
            return
        worker = CallWorker(self.panel.project, job)
        worker.succeeded.connect(self._succeeded)
        worker.failed.connect(self._failed)
        worker.finished.connect(self._finished)
        self.worker = worker
        worker.start()

    def _succeeded(self, result: Any) -> None:
        if self.pending:  # stale: a newer computation follows at once
            return
        self.result, self.error = result, None
        self.status.setText("")
        self.show_result(result)
        self.computed.emit()

    def _failed(self, message: str) -> None:
        if self.pending:
            return
        self.error = message
        self.status.setText(f"<i>{escape(message)}</i>")
        self.computed.emit()

    def _finished(self) -> None:
        if self.worker is not None:
            self.worker.wait()  # `finished` comes just before the thread ends
            self.worker.deleteLater()
            self.worker = None
        if self.pending:
            self.pending = False
            self.start()

    def shutdown(self) -> None:
        self.timer.stop()
        self.pending = False
        if self.worker is not None:
            self.worker.wait()

    # export -------------------------------------------------------------------------------

    def export_png(self, path: Path, width: int = EXPORT_WIDTH) -> None:
        """The tab's figure, rendered by pyqtgraph's exporter (works offscreen too)."""
        exporter = pg.exporters.ImageExporter(self.graphics.ci)
        exporter.parameters()["width"] = width
        exporter.export(str(path))

    def export_csv(self, path: Path) -> None:
        """The tab's numbers at full precision; an undefined value is an empty cell."""
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(self.csv_header)
            for row in self.csv_rows():
                writer.writerow([csv_cell(v) for v in row])

    def choose_png(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export figure", str(Path.home() / f"{self.name}.png"), "PNG (*.png)"
        )
        if path:
            self.export_png(Path(path))

    def choose_csv(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export table", str(Path.home() / f"{self.name}.csv"), "CSV (*.csv)"
        )
        if path:
            self.export_csv(Path(path))


def percent_texts(P: np.ndarray) -> list[list[str]]:
    used = P.sum(axis=1) > 0
    return [[f"{100 * P[i, j]:.0f}" if used[i] else "" for j in range(4)] for i in range(4)]


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
        result: TransitionResult | None = self.result
        if result is None:
            return []
        rows: list[list[Any]] = []
        for i, a in enumerate(BEHAVIORS):
            for j, b in enumerate(BEHAVIORS):
                rows.append(["corpus", a, b, int(result.counts.transitions[i, j]), result.P[i, j]])
        for i, a in enumerate(BEHAVIORS):
            for j, b in enumerate(BEHAVIORS):
                rows.append([result.preset.id, a, b, None, float(result.preset.P[i, j])])
        return rows


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
        fill_table(
            self.table,
            [
                [str(n), fmt(m), fmt(s)]
                for n, m, s in zip(curve.sizes, curve.mean, curve.sd, strict=True)
            ],
        )

    def csv_rows(self) -> list[list[Any]]:
        result: StabilityResult | None = self.result
        if result is None:
            return []
        c = result.curve
        rows = zip(c.sizes, c.mean, c.sd, strict=True)
        return [[int(n), float(m), float(s), REPEATS] for n, m, s in rows]


def geometry_rows(result: dict[str, Any]) -> list[list[str]]:
    """The summary table of one trace's geometry: quantity, value, what it rests on."""
    local, reconnect = result["deep_locality"], result["reflection_reconnection"]
    jumps, meb = result["jump_length"], result["meb"]
    compaction, entropy = result["reflection_compaction"], result["entropy"]
    rows = [
        ["embedder", result["embedder"], f"{result['steps']} steps, {result['clusters']} clusters"],
        ["D locality", fmt(local["fraction"]), f"{local['within']}/{local['steps']} D steps < 3"],
        [
            "R reconnection",
            fmt(reconnect["rate"]),
            f"{reconnect['reconnected']}/{reconnect['steps']} R steps",
        ],
    ]
    for behavior in BEHAVIORS:
        jump = jumps[behavior]
        rows.append([f"jump {behavior}", fmt(jump["mean"], 2), f"{jump['steps']} steps"])
    rows += [
        ["MEB radius", fmt(meb["radius"], 2), f"volume {fmt(meb['volume'], 1)}"],
        [
            "Δ_Reflect %",
            fmt(compaction["mean_delta_percent"], 1),
            f"{compaction['steps']} R steps",
        ],
        ["|ΔI| > 0.1", fmt(entropy["fraction_large_change"]), f"K = {entropy['clusters']}"],
    ]
    return rows


class GeometryTab(MetricsTab):
    """The shown trace's t-SNE map (first two axes), its summary, and the entropy series."""

    name = "geometry"
    csv_header = (
        "step",
        "behavior",
        "x",
        "y",
        "z",
        "cluster",
        "information",
        "delta_information",
        "state",
    )
    step_clicked = Signal(int)

    def __init__(self, panel: MetricsPanel) -> None:
        super().__init__(panel)
        self.embedder_box = QComboBox()
        self.embedder_box.addItem("TF-IDF", "tfidf")
        self.embedder_box.addItem("MiniLM", "minilm")
        self.embedder_box.setToolTip(EMBEDDER_TIP)
        self.embedder_box.currentIndexChanged.connect(lambda _: self.request())
        self.add_control("Embedder:", self.embedder_box)
        layout = self.graphics.ci
        self.map_plot = layout.addPlot(row=0, col=0)
        self.map_plot.setMenuEnabled(False)
        self.map_plot.setLabel("bottom", "t-SNE 1")
        self.map_plot.setLabel("left", "t-SNE 2")
        self.map_plot.setAspectLocked(True)
        self.map_plot.addLegend(offset=(5, 5), labelTextSize="8pt")
        self.path = self.map_plot.plot([], [], pen=pg.mkPen(200, 200, 200, 120))
        self.scatters: dict[str | None, pg.ScatterPlotItem] = {}
        for behavior in (*BEHAVIORS, None):
            color = BEHAVIOR_COLORS[behavior] if behavior else UNLABELED
            scatter = pg.ScatterPlotItem(
                size=9,
                brush=pg.mkBrush(color),
                pen=pg.mkPen("w", width=0.5),
                hoverable=True,
                hoverSize=13,
                tip=self.tip,
                name=behavior or "unlabeled",
            )
            scatter.sigClicked.connect(self._clicked)
            self.map_plot.addItem(scatter)
            self.scatters[behavior] = scatter
        self.chosen = pg.ScatterPlotItem(
            size=17, brush=pg.mkBrush(0, 0, 0, 0), pen=pg.mkPen("k", width=2)
        )
        self.map_plot.addItem(self.chosen)
        self.entropy_plot = layout.addPlot(row=1, col=0)
        fixed_plot(self.entropy_plot)
        self.entropy_plot.addLegend(offset=(-5, 5), labelTextSize="8pt", colCount=2)
        self.entropy_plot.setLabel("bottom", "step t")
        self.entropy_plot.showGrid(y=True, alpha=0.3)
        self.information = self.entropy_plot.plot(
            [], [], pen=pg.mkPen("#1e88e5", width=2), name="I_t"
        )
        self.delta = self.entropy_plot.plot([], [], pen=pg.mkPen("#fb8c00", width=1.5), name="ΔI_t")
        layout.layout.setRowStretchFactor(0, 3)
        layout.layout.setRowStretchFactor(1, 1)
        self.graphics.setMinimumHeight(460)
        self.table = make_table(["measure", "value", "over"])
        self.table.setMaximumHeight(12 * (self.table.fontMetrics().height() + 6) + 4)
        self.box.addWidget(self.graphics, 1)
        self.box.addWidget(self.table)
        self.setToolTip(EMBEDDER_TIP)
        self.child = ChildProcess()

    def shutdown(self) -> None:
        self.child.kill()  # the window is closing: no one will read this result
        super().shutdown()

    def job(self) -> Callable[[Store], Any] | None:
        if self.panel.trace_id is None:
            return None
        self.child = ChildProcess()
        return partial(
            geometry_job,
            trace_id=self.panel.trace_id,
            scope=self.panel.scope(),
            embedder=self.embedder_box.currentData(),
            child=self.child,
        )

    def tip(self, x: float, y: float, data: Any) -> str:
        """Hover text: the step index and the first 80 characters of its text."""
        texts = self.result["texts"] if self.result else []
        step = int(data)
        return f"step {step}: {texts[step] if step < len(texts) else ''}"

    def _clicked(self, _item: pg.ScatterPlotItem, points: list, _event: Any) -> None:
        if len(points):
            step = int(points[0].data())
            self.mark(step)
            self.step_clicked.emit(step)

    def mark(self, step: int) -> None:
        """Ring the step chosen on the map."""
        if self.result is not None and step < len(self.result["points"]):
            x, y, _ = self.result["points"][step]
            self.chosen.setData([x], [y])

    def show_result(self, result: dict[str, Any]) -> None:
        points = np.asarray(result["points"], dtype=float)
        behaviors = result["behavior"]
        self.path.setData(points[:, 0], points[:, 1])
        for behavior, scatter in self.scatters.items():
            chosen = [i for i, b in enumerate(behaviors) if b == behavior]
            scatter.setData(
                x=points[chosen, 0] if chosen else [],
                y=points[chosen, 1] if chosen else [],
                data=chosen,
            )
        self.chosen.setData([], [])
        entropy = result["entropy"]
        steps = np.arange(len(entropy["information"]), dtype=float)
        self.information.setData(steps, np.asarray(entropy["information"], dtype=float))
        delta = np.array([np.nan if d is None else d for d in entropy["delta"]], dtype=float)
        self.delta.setData(steps[1:], delta[1:])
        fill_table(self.table, geometry_rows(result))
        self.status.setText(
            f"{escape(result['trace'])} ({escape(result['annotator'] or 'unlabeled')}); "
            "click a point to go to "
            "its step"
        )

    def csv_rows(self) -> list[list[Any]]:
        result = self.result
        if result is None:
            return []
        entropy = result["entropy"]
        return [
            [
                i,
                result["behavior"][i],
                *map(float, result["points"][i]),
                result["cluster"][i],
                float(entropy["information"][i]),
                entropy["delta"][i],
                entropy["states"][i],
            ]
            for i in range(result["steps"])
        ]


AGREEMENT_COLUMNS = ["a", "b", "kind", "steps", "raw", "κ", "AC1", "bond F1"]


def agreement_rows(result: dict[str, Any]) -> list[list[str]]:
    return [
        [
            pair["a"],
            pair["b"],
            pair["kind"],
            str(pair["steps"]),
            fmt(pair["observed"]),
            fmt(pair["cohen_kappa"]),
            fmt(pair["gwet_ac1"]),
            fmt(pair["bonds"]["f1"]),
        ]
        for pair in result["pairs"]
    ]


def agreement_summary(result: dict[str, Any]) -> str:
    return (
        f"Krippendorff's α = {fmt(result['krippendorff_alpha'])} · AC1 (all) = "
        f"{fmt(result['gwet_ac1'])} · {result['steps_rated_twice']} steps rated twice by "
        f"{len(result['annotators'])} annotators"
    )


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
        if self.result is None:
            return []
        return [
            [
                p["a"],
                p["b"],
                p["kind"],
                p["steps"],
                p["observed"],
                p["cohen_kappa"],
                p["gwet_ac1"],
                p["bonds"]["f1"],
                p["bonds"]["precision"],
                p["bonds"]["recall"],
            ]
            for p in self.result["pairs"]
        ]


# -- the panel -----------------------------------------------------------------------------------


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
        annotators = [r[0] for r in store.conn.execute("SELECT name FROM annotators ORDER BY 1")]
        models = [r[0] for r in store.conn.execute("SELECT DISTINCT model FROM traces ORDER BY 1")]
        sources = [
            r[0] for r in store.conn.execute("SELECT DISTINCT source FROM traces ORDER BY 1")
        ]
        for box, first, values in (
            (self.annotator_box, AUTO, annotators),
            (self.model_box, ALL, models),
            (self.source_box, ALL, sources),
        ):
            current = box.currentData()
            box.blockSignals(True)
            box.clear()
            box.addItem(first, None)
            for value in values:
                if value:
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
