"""The trace list reads a bounded number of statements, whatever the number of traces (counted
with sqlite3's trace callback on real project files of 50 and 500 traces; not timed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from bondscope.services.structure import corpus_snapshot
from bondscope.services.trace_list import trace_columns, trace_rows
from bondscope.store import Store, now
from bondscope.ui import trace_list as trace_list_ui
from bondscope.ui.trace_list import AGREEMENT, PERCENT, TraceTableModel
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QTableView

from .conftest import ANNOTATOR as CONFTEST_ANNOTATOR

ME = "tester"
STEPS = 6
BOUND = 30  # statements on the GUI thread: 3 to index, 4 per page read, 6 screens shown


def build(path: Path, traces: int) -> Path:
    """`traces` traces of STEPS steps: model labels with confidences on every step, mine on the
    first two steps of every other trace, and one relabel (the latest event counts)."""
    created = now()
    with Store(path) as store, store.transaction():
        model, me = store.annotator_id("model:test@1"), store.annotator_id(ME)
        conn = store.conn
        text = " ".join(f"s{i}." for i in range(STEPS))
        conn.executemany(
            "INSERT INTO traces (id, name, content_hash, model, source, text, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (t, f"trace-{traces - t:04d}", f"h{t}", f"m{t % 3}", "src", text, created)
                for t in range(1, traces + 1)
            ],
        )
        conn.executemany(
            'INSERT INTO steps (id, trace_id, idx, start, "end") VALUES (?, ?, ?, ?, ?)',
            [
                ((t - 1) * STEPS + i + 1, t, i, 4 * i, 4 * i + 3)
                for t in range(1, traces + 1)
                for i in range(STEPS)
            ],
        )
        events = [
            (step, model, "NDRE"[step % 4], 0.5 + (step % 5) / 10, created)
            for step in range(1, traces * STEPS + 1)
        ]
        events += [
            ((t - 1) * STEPS + i + 1, me, "N", None, created)
            for t in range(1, traces + 1, 2)
            for i in range(2)
        ]
        events.append((1, me, "D", None, created))  # a relabel of step 1
        conn.executemany(
            "INSERT INTO label_events (step_id, annotator_id, behavior, confidence, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            events,
        )
    return path


def gui_statements(qtbot, path: Path) -> tuple[list[str], TraceTableModel]:
    """Statements on the GUI thread's connection: open, first screen, sorts, filter."""
    statements: list[str] = []
    store = Store(path)
    store.conn.set_trace_callback(statements.append)
    model = TraceTableModel()
    view = QTableView()
    qtbot.addWidget(view)
    view.setModel(model)
    view.resize(500, 400)
    view.show()
    model.open(store, ME)
    view.grab()  # the first screen, before the project's figures can arrive (queued)
    for column in (0, 1, 2):
        model.sort(column, Qt.SortOrder.DescendingOrder)
        view.grab()
    model.set_filter("trace-00")
    view.grab()
    model.set_filter("")
    view.scrollToBottom()
    view.grab()  # the last screen: one more page
    model.wait()  # the whole project's figures (read in the worker's own connection)
    for column in (3, PERCENT, AGREEMENT):
        model.sort(column, Qt.SortOrder.AscendingOrder)
        view.grab()
    model.shutdown()
    store.conn.set_trace_callback(None)
    return statements, model


def test_trace_list_statements_do_not_grow_with_the_project(qtbot, tmp_path) -> None:
    counts = {}
    for traces in (50, 500):
        path = build(tmp_path / f"p{traces}.bondscope", traces)
        statements, model = gui_statements(qtbot, path)
        counts[traces] = len(statements)
        # What the list shows equals the plain service read of every row.
        expected = {row.trace_id: row for row in trace_rows(Store(path), ME)}
        shown = list(model.rows)
        assert len(shown) == traces
        assert all(row == expected[row.trace_id] for row in shown)
        with Store(path) as store:
            whole: list[str] = []
            store.conn.set_trace_callback(whole.append)
            trace_columns(store, ME)
            counts[traces, "whole project"] = len(whole)
    # Open, index, a page per screen shown (each screen at most two pages): the same bound for
    # 50 traces as for 500, where one statement per trace would be 500.
    assert counts[50] <= BOUND and counts[500] <= BOUND
    assert counts[50, "whole project"] == counts[500, "whole project"] <= 10


def test_a_large_project_reads_its_figures_in_a_child(
    qtbot, project, open_window, monkeypatch
) -> None:
    """Above CHILD_TRACES the whole-project reads run in a child Python (here: every project)."""
    monkeypatch.setattr(trace_list_ui, "CHILD_TRACES", 0)
    window = open_window(project)  # waits for the background figures
    assert window.trace_model.large()
    with Store(project) as store:
        expected = {row.trace_id: row for row in trace_rows(store, CONFTEST_ANNOTATOR)}
        model = corpus_snapshot(store, CONFTEST_ANNOTATOR, window.trace_id)
    assert {row.trace_id: row for row in window.trace_model.rows} == expected
    assert window.traces.progress.total == sum(row.steps for row in expected.values())
    np.testing.assert_array_equal(window.structure.corpus.behaviors, model.counts.behaviors)
    assert model.annotator in window.structure.corpus.title.text
