"""The trace list's figures (numpy over packed label events) against their definition, computed
row by row from the `current_labels` view: relabels, cleared labels, two model annotators."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from bondscope.services import labeling, trace_list
from bondscope.services.demo import ensure_demo_project
from bondscope.store import Store, now

ME = "tester"


@pytest.fixture
def store(tmp_path: Path):
    with Store(ensure_demo_project(tmp_path / "demo.bondscope")) as opened:
        yield opened


def model_label(store: Store, step_id: int, model: str, behavior: str | None, confidence):
    with store.transaction():
        store.conn.execute(
            "INSERT INTO label_events (step_id, annotator_id, behavior, confidence, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (step_id, store.annotator_id(model), behavior, confidence, now()),
        )


def expected_rows(store: Store) -> dict[int, tuple]:
    """(steps, labeled, uncertainty, agreement) per trace, from the view, as the docs define."""
    models = {r[0] for r in store.conn.execute("SELECT name FROM annotators WHERE kind = 'model'")}
    out = {}
    for (trace_id,) in store.conn.execute("SELECT id FROM traces ORDER BY id").fetchall():
        steps = store.count(
            "SELECT COUNT(*) FROM steps WHERE trace_id = ? AND retired_run_id IS NULL", (trace_id,)
        )
        rows = store.conn.execute(
            "SELECT step_id, annotator, behavior, confidence, event_id FROM current_labels"
            " WHERE trace_id = ?",
            (trace_id,),
        ).fetchall()
        mine = {step: behavior for step, who, behavior, _, _ in rows if who == ME}
        hints: dict[int, tuple[int, str]] = {}
        for step, who, behavior, _, event in rows:
            if who in models and event > hints.get(step, (-1, ""))[0]:
                hints[step] = (event, behavior)
        pairs = [mine[s] == hints[s][1] for s in mine if s in hints]
        agreement = sum(pairs) / len(pairs) if pairs else None
        model_rows = [r for r in rows if r[1] in models]
        uncertainty = None
        if model_rows:
            newest = max(model_rows, key=lambda r: r[4])[1]
            given = [r[3] for r in model_rows if r[1] == newest and r[3] is not None]
            uncertainty = 1 - sum(given) / len(given) if given else None
        out[trace_id] = (steps, len(mine), uncertainty, agreement)
    return out


def same(a: float | None, b: float | None) -> bool:
    return (a is None and b is None) or (
        a is not None and b is not None and math.isclose(a, b, abs_tol=1e-9)
    )


def test_figures_match_their_definition(store: Store) -> None:
    s1 = [step_id for step_id, _ in store.active_steps(1)]
    s2 = [step_id for step_id, _ in store.active_steps(2)]
    for i, step in enumerate(s1[:6]):
        model_label(store, step, "model:a@1", "NDRE"[i % 4], 0.5 + i / 20)
    model_label(store, s1[0], "model:a@1", "E", 0.91)  # a relabel: the newest counts
    model_label(store, s1[1], "model:a@1", None, None)  # cleared: no hint of model:a there
    model_label(store, s2[3], "model:b@2", "D", None)  # newest model of trace 2, no confidence
    labeling.set_label(store, s1[0], ME, "E")
    labeling.set_label(store, s1[2], ME, "N")
    labeling.set_label(store, s1[3], ME, "R")
    labeling.set_label(store, s1[3], ME, None)  # cleared: not labeled
    labeling.set_label(store, s2[3], ME, "D")
    expected = expected_rows(store)
    whole = trace_list.trace_columns(store, ME)
    page = trace_list.trace_columns(store, ME, [3, 1])
    for columns in (whole, page):
        for i, trace_id in enumerate(columns.ids.tolist()):
            steps, labeled, uncertainty, agreement = expected[trace_id]
            assert (int(columns.steps[i]), int(columns.labeled[i])) == (steps, labeled)
            u, a = (
                None if np.isnan(v) else float(v)
                for v in (columns.uncertainty[i], columns.agreement[i])
            )
            assert same(u, uncertainty) and same(a, agreement), trace_id
    assert page.ids.tolist() == [1, 3]
    assert expected[1][1] == 2 and expected[2][2] is None  # the cases above were exercised


def test_trace_index_reads_names_with_any_character(store: Store) -> None:
    with store.transaction():
        store.conn.execute("UPDATE traces SET name = 'odd\x1fname, with comma' WHERE id = 2")
    index = trace_list.trace_index(store)
    rows = store.conn.execute("SELECT id, name, model, source FROM traces ORDER BY id").fetchall()
    assert index.ids.tolist() == [r[0] for r in rows]
    assert (index.names, index.models, index.sources) == tuple(
        [r[k] for r in rows] for k in (1, 2, 3)
    )
