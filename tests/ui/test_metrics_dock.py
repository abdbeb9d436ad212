"""The Metrics dock against the services, on a real demo project labeled with real key events.

Each tab computes in a worker thread; the tests wait for it to settle, then compare what it shows
(heatmap cells, graph labels, table cells, the compare line) with the service called directly,
export its PNG and CSV, and click a step on the geometry map.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from bondscope.services import labeling
from bondscope.services.agreement import agreement
from bondscope.services.demo import DEMO_ANNOTATOR
from bondscope.services.geometry import geometry
from bondscope.services.structure import (
    Selection,
    bootstrap_r,
    compare,
    preset,
    trace_transition_counts,
    transition_counts,
    transition_matrix,
)
from bondscope.store import Store
from bondscope.ui.main_window import MainWindow
from bondscope.ui.metrics import (
    AgreementTab,
    GeometryTab,
    MetricsTab,
    StabilityTab,
    TransitionTab,
    fmt,
    stability_sizes,
    table_texts,
)
from PySide6.QtCore import QPointF, Qt
from threadpoolctl import threadpool_limits

from .conftest import ANNOTATOR

pytestmark = [
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints"),
]


def type_labels(qtbot, window: MainWindow, keys: str) -> None:
    """Label the shown trace from its first step with real key events (j skips a step)."""
    for key in keys:
        qtbot.keyClick(window.trace_view, key)


def show_tab(qtbot, window: MainWindow, tab: MetricsTab, timeout: int = 30_000) -> None:
    """View > Metrics, pick the tab, and wait until labels are flushed and the tab is idle."""
    if not window.metrics_dock.isVisible():
        window.metrics_dock.toggleViewAction().trigger()
    window.metrics.tabs.setCurrentWidget(tab)
    qtbot.waitUntil(lambda: window.metrics_dock.isVisible(), timeout=2000)
    settle(qtbot, window, tab, timeout)


def settle(qtbot, window: MainWindow, tab: MetricsTab, timeout: int = 30_000) -> None:
    qtbot.waitUntil(
        lambda: not window.corpus_timer.isActive() and not tab.busy() and tab.result is not None,
        timeout=timeout,
    )
    assert tab.error is None


def check_exports(tab: MetricsTab, tmp_path: Path, header: list[str]) -> list[list[str]]:
    """PNG and CSV of the tab: a real PNG, and a CSV with the expected header and some rows."""
    png, table = tmp_path / f"{tab.name}.png", tmp_path / f"{tab.name}.csv"
    tab.export_png(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 5_000
    tab.export_csv(table)
    with table.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == header
    assert len(rows) > 1
    return rows[1:]


def percent(P: np.ndarray) -> list[list[str]]:
    used = P.sum(axis=1) > 0
    return [[f"{100 * P[i, j]:.0f}" if used[i] else "" for j in range(4)] for i in range(4)]


def test_dock_is_hidden_and_idle_until_shown(qtbot, project, open_window) -> None:
    window = open_window(project)
    assert not window.metrics_dock.isVisible()
    assert window.metrics_dock.toggleViewAction().text() == "&Metrics"
    type_labels(qtbot, window, "12")
    qtbot.waitUntil(lambda: not window.corpus_timer.isActive(), timeout=3000)
    for tab in window.metrics.all_tabs():
        assert tab.worker is None and tab.result is None and tab.dirty
    show_tab(qtbot, window, window.metrics.transition)  # shown: catches up at once
    assert window.metrics.transition.result.selection.annotator == ANNOTATOR


def test_transition_tab_matches_structure(qtbot, project, open_window, tmp_path) -> None:
    window = open_window(project)
    type_labels(qtbot, window, "1224n1jee2d1")
    tab: TransitionTab = window.metrics.transition
    show_tab(qtbot, window, tab)
    with Store(project) as store:
        counts = transition_counts(store, Selection(annotator=ANNOTATOR))
    assert counts.transitions.sum() == 9  # two chains, broken by the skipped step
    # α = 0 leaves the never-used R row empty: the tab smooths with 0.001, and says so
    assert tab.result.alpha == 0.001 and "α = 0.001" in tab.corpus_title.text
    P = transition_matrix(counts.transitions, 0.001)
    np.testing.assert_array_equal(tab.result.counts.transitions, counts.transitions)
    assert tab.corpus_heat.texts() == percent(P)
    shown = tab.corpus_graph.labels()
    for (i, j), text in shown.items():
        assert text == f"{100 * P[i, j]:.0f}%"
    assert shown[(0, 1)] == f"{100 * P[0, 1]:.0f}%"  # N -> D: one of the two steps out of N
    expected = compare(P, preset("deepseek-r1-0528").P)
    for value in (
        fmt(expected["pearson_r"]),
        fmt(expected["weighted_js_bits"], 4),
        expected["verdict"],
    ):
        assert value in tab.compare_label.text
    assert tab.preset_heat.texts() == percent(preset("deepseek-r1-0528").P)

    tab.alpha_box.setValue(0.01)  # a chosen α is used as given
    tab.preset_box.setCurrentIndex(tab.preset_box.findData("qwq-32b"))
    settle(qtbot, window, tab)
    P = transition_matrix(counts.transitions, 0.01)
    expected = compare(P, preset("qwq-32b").P)
    assert tab.result.alpha == 0.01 and tab.corpus_heat.texts() == percent(P)
    assert f"r = {fmt(expected['pearson_r'])}" in tab.compare_label.text
    assert tab.preset_heat.texts() == percent(preset("qwq-32b").P)

    # Another annotator and a model filter, as the selection bar sets them
    bar = window.metrics
    bar.annotator_box.setCurrentIndex(bar.annotator_box.findData(DEMO_ANNOTATOR))
    model = "deepseek-r1-distill-qwen-14b"
    bar.model_box.setCurrentIndex(bar.model_box.findData(model))
    settle(qtbot, window, tab)
    with Store(project) as store:
        counts = transition_counts(store, Selection(model=model, annotator=DEMO_ANNOTATOR))
    np.testing.assert_array_equal(tab.result.counts.transitions, counts.transitions)
    assert tab.corpus_heat.texts() == percent(transition_matrix(counts.transitions, 0.01))

    rows = check_exports(tab, tmp_path, ["matrix", "from", "to", "count", "probability"])
    assert len(rows) == 32
    assert rows[1][:4] == ["corpus", "N", "D", str(counts.transitions[0, 1])]
    assert float(rows[1][4]) == pytest.approx(transition_matrix(counts.transitions, 0.01)[0, 1])


def test_stability_tab_matches_bootstrap(qtbot, project, open_window, tmp_path) -> None:
    with Store(project) as store:  # a few labels in every demo trace, written by the service
        for trace_id in (1, 2, 3):
            for row, step in enumerate(labeling.load_steps(store, trace_id, ANNOTATOR)[:12]):
                labeling.set_label(store, step.step_id, ANNOTATOR, "NDNE"[(row * trace_id) % 4])
    window = open_window(project)
    tab: StabilityTab = window.metrics.stability
    show_tab(qtbot, window, tab)
    with Store(project) as store:
        ids, per_trace = trace_transition_counts(store, Selection(annotator=ANNOTATOR))
    assert len(ids) == 3 and stability_sizes(3) == [1, 2, 3]
    curve = bootstrap_r(per_trace, [1, 2, 3], repeats=100, seed=0)
    assert table_texts(tab.table) == [
        [str(n), fmt(m), fmt(s)] for n, m, s in zip(curve.sizes, curve.mean, curve.sd, strict=True)
    ]
    _, shown = tab.curve.getData()
    np.testing.assert_allclose(shown, curve.mean)
    rows = check_exports(tab, tmp_path, ["traces", "mean_r", "sd_r", "resamples"])
    assert [int(r[0]) for r in rows] == [1, 2, 3]
    np.testing.assert_allclose([float(r[1]) for r in rows], curve.mean)


def test_geometry_tab_matches_service_and_click_selects(
    qtbot, project, open_window, tmp_path
) -> None:
    window = open_window(project)
    type_labels(qtbot, window, "1122441n1d")
    tab: GeometryTab = window.metrics.geometry
    assert tab.embedder_box.currentData() == "tfidf" and "TF-IDF" in tab.toolTip()
    show_tab(qtbot, window, tab, timeout=180_000)
    name = window.trace_model.rows[0].name
    with Store(project) as store, threadpool_limits(1):
        expected = geometry(store, name, ANNOTATOR, "tfidf")
    result = tab.result
    assert result["trace"] == name and result["annotator"] == ANNOTATOR
    np.testing.assert_allclose(result["points"], expected["points"], atol=1e-3)
    shown = {row[0]: row[1] for row in table_texts(tab.table)}
    assert shown["D locality"] == fmt(expected["deep_locality"]["fraction"])
    assert shown["R reconnection"] == fmt(expected["reflection_reconnection"]["rate"])
    for behavior in "NDRE":
        assert shown[f"jump {behavior}"] == fmt(expected["jump_length"][behavior]["mean"], 2)
    assert shown["MEB radius"] == fmt(expected["meb"]["radius"], 2)
    _, information = tab.information.getData()
    np.testing.assert_allclose(information, expected["entropy"]["information"], atol=1e-6)
    labeled = sum(len(s.data) for b, s in tab.scatters.items() if b is not None)
    assert labeled == 10 and len(tab.scatters[None].data) == expected["steps"] - 10

    # Hover: the step and the first 80 characters of its text
    step_text = window.trace_view.step_model.step_text
    assert tab.tip(x=0.0, y=0.0, data=7) == f"step 7: {step_text(7)[:80]}"

    # Click: the most isolated point on the map that the mouse can reach, clicked with the
    # mouse, selects its step. Reachable: inside the plot's view, off its edge, and not under
    # its legend (a click there goes to the legend). The map as it is drawn now: settled again,
    # in case a background refresh redrew it meanwhile.
    settle(qtbot, window, tab)
    result = tab.result
    points = np.asarray(result["points"])[:, :2]
    distances = np.linalg.norm(points[:, None] - points[None], axis=2) + np.eye(len(points)) * 1e9
    view = tab.map_plot.getViewBox().sceneBoundingRect().adjusted(12, 12, -12, -12)
    legend = tab.map_plot.legend.sceneBoundingRect().adjusted(-12, -12, 12, 12)
    for step in map(int, np.argsort(-distances.min(axis=1))):
        behavior = result["behavior"][step]
        scene = tab.scatters[behavior].mapToScene(QPointF(*points[step]))
        reachable = view.contains(scene) and not legend.contains(scene)
        if reachable and step != window.trace_view.current_row():
            break
    qtbot.mouseClick(
        tab.graphics.viewport(), Qt.MouseButton.LeftButton, pos=tab.graphics.mapFromScene(scene)
    )
    qtbot.waitUntil(lambda: window.trace_view.current_row() == step, timeout=10_000)

    rows = check_exports(
        tab,
        tmp_path,
        ["step", "behavior", "x", "y", "z", "cluster", "information", "delta_information", "state"],
    )
    assert len(rows) == expected["steps"] and rows[0][1] == "N"


def test_agreement_tab_matches_service(qtbot, project, open_window, tmp_path) -> None:
    window = open_window(project)
    type_labels(qtbot, window, "1222441ne")
    tab: AgreementTab = window.metrics.agreement
    show_tab(qtbot, window, tab)
    with Store(project) as store:
        expected = agreement(store)
    (pair,) = expected["pairs"]
    assert {pair["a"], pair["b"]} == {ANNOTATOR, DEMO_ANNOTATOR} and pair["steps"] == 9
    assert table_texts(tab.table) == [
        [
            pair["a"],
            pair["b"],
            pair["kind"],
            "9",
            fmt(pair["observed"]),
            fmt(pair["cohen_kappa"]),
            fmt(pair["gwet_ac1"]),
            fmt(pair["bonds"]["f1"]),
        ]
    ]
    assert f"α = {fmt(expected['krippendorff_alpha'])}" in tab.summary.text()
    assert f"AC1 (all) = {fmt(expected['gwet_ac1'])}" in tab.summary.text()
    assert tab.selected_pair() == pair
    assert tab.confusion.texts() == [[str(v) for v in row] for row in pair["confusion"]]
    rows = check_exports(
        tab,
        tmp_path,
        [
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
        ],
    )
    assert float(rows[0][5]) == pytest.approx(pair["cohen_kappa"])


def test_agreement_needs_two_annotators(qtbot, project, open_window) -> None:
    window = open_window(project)  # the demo has the model's labels only
    tab = window.metrics.agreement
    window.metrics_dock.toggleViewAction().trigger()
    window.metrics.tabs.setCurrentWidget(tab)
    qtbot.waitUntil(lambda: not tab.busy() and tab.error is not None, timeout=30_000)
    assert "at least two annotators" in tab.status.text()
