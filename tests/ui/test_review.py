"""Confidence on the trace view's tags, the review queue dock and the accept-suggestions dialog,
checked against what bondscope.services.review computes on the same SQLite file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from bondscope.services import review
from bondscope.store import Store, now
from bondscope.ui.trace_view import TAG_ROLE
from PySide6.QtCore import Qt

from .conftest import ANNOTATOR

pytestmark = [
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints"),
]

MODEL = "model:review@1"


def add_suggestions(project: Path, suggestions: dict[tuple[int, int], tuple[str, float | None]]):
    """Pre-labels of MODEL, {(trace id, step): (behavior, confidence)}, as a pre-labeling run
    writes them; MODEL becomes the newest model annotator."""
    with Store(project) as store, store.transaction():
        annotator_id = store.annotator_id(MODEL)
        for (trace_id, step), (behavior, confidence) in suggestions.items():
            (step_id,) = store.conn.execute(
                "SELECT id FROM steps WHERE trace_id = ? AND idx = ?", (trace_id, step)
            ).fetchone()
            store.conn.execute(
                "INSERT INTO label_events (step_id, annotator_id, behavior, confidence,"
                " created_at) VALUES (?, ?, ?, ?, ?)",
                (step_id, annotator_id, behavior, confidence, now()),
            )


SUGGESTIONS = {
    (1, 0): ("N", 0.97),
    (1, 1): ("D", 0.55),
    (1, 2): ("R", 0.82),
    (1, 3): ("E", None),
    (2, 4): ("D", 0.31),
    (2, 5): ("N", 0.93),
    (3, 6): ("R", 0.12),
    (3, 7): ("N", 0.95),
    (3, 8): ("D", 0.99),
}


def test_suggestion_tags_show_their_confidence(qtbot, project, open_window) -> None:
    add_suggestions(project, SUGGESTIONS)
    window = open_window(project)
    window.select_trace(1)
    model = window.trace_view.step_model
    tags = [model.index(row).data(TAG_ROLE) for row in range(4)]
    assert tags == ["N? 0.97", "D? 0.55", "R? 0.82", "E?"]
    qtbot.keyClick(window.trace_view, "d")  # my label replaces the hint on the tag
    assert model.index(0).data(TAG_ROLE) == "D"


def queue_rows(window) -> list[tuple[str, int, str, str]]:
    table = window.review.table
    return [
        (
            table.item(row, 0).text(),
            int(table.item(row, 1).text()),
            table.item(row, 2).text(),
            table.item(row, 3).text(),
        )
        for row in range(table.rowCount())
    ]


def test_review_queue_follows_the_service_and_jumps(qtbot, project, open_window) -> None:
    add_suggestions(project, SUGGESTIONS)
    window = open_window(project)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    with qtbot.waitSignal(window.review.computed):  # read in a worker thread
        window.review_action.trigger()
    assert window.review_dock.isVisible()
    assert window.focusWidget() is window.trace_view  # the keyboard stays on the steps
    with Store(project) as store:
        expected = review.uncertain_steps(store, MODEL, ANNOTATOR)
    assert [(q.trace, q.step, q.suggestion, f"{q.confidence:.2f}") for q in expected] == (
        queue_rows(window)
    )
    assert [q.confidence for q in expected][:3] == [0.12, 0.31, 0.55]

    table = window.review.table
    table.setFocus()
    table.selectRow(0)  # trace 3, step 6: another trace than the one shown
    qtbot.keyClick(table, Qt.Key.Key_Return)
    assert window.trace_id == 3
    assert window.trace_view.current_row() == 6
    assert window.focusWidget() is window.trace_view

    rect = table.visualRect(table.model().index(1, 0))  # trace 2, step 4, by double-click
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert (window.trace_id, window.trace_view.current_row()) == (2, 4)

    qtbot.keyClick(window.trace_view, "e")  # labeled: it leaves the queue after the debounce
    qtbot.waitUntil(lambda: len(queue_rows(window)) == len(expected) - 1)
    assert (window.trace_model.rows[1].name, 4) not in [(r[0], r[1]) for r in queue_rows(window)]


def test_accept_dialog_shows_the_estimate_and_writes_labels(qtbot, project, open_window) -> None:
    add_suggestions(project, SUGGESTIONS)
    window = open_window(project)
    window.select_trace(1)
    view = window.trace_view
    qtbot.keyClick(view, "n")  # step 0: agrees with the 0.97 suggestion
    qtbot.keyClick(view, "2")  # step 1 (0.55): D, agrees
    dialog = window.review_flow.choose_accept()
    assert dialog is not None and dialog.isVisible()
    assert dialog.threshold.value() == pytest.approx(0.9)
    with Store(project) as store:
        estimate = review.estimate_precision(store, MODEL, ANNOTATOR, 0.9)
    assert (estimate.checked, estimate.to_accept) == (1, 3)
    assert dialog.estimate.text() == (
        f"precision 1.00 (95% {estimate.low:.2f}-1.00) on 1 checked step; 3 would be accepted"
    )
    dialog.threshold.setValue(0.5)  # live: the text follows the spin box
    with Store(project) as store:
        estimate = review.estimate_precision(store, MODEL, ANNOTATOR, 0.5)
    assert dialog.estimate.text() == (
        f"precision 1.00 (95% {estimate.low:.2f}-1.00) on 2 checked steps; "
        f"{estimate.to_accept} would be accepted"
    )
    dialog.threshold.setValue(0.9)
    qtbot.mouseClick(dialog.accept_button, Qt.MouseButton.LeftButton)
    with sqlite3.connect(project) as conn:
        mine = conn.execute(
            "SELECT trace_id, step, behavior FROM current_labels WHERE annotator = ? ORDER BY 1, 2",
            (ANNOTATOR,),
        ).fetchall()
    assert mine == [(1, 0, "N"), (1, 1, "D"), (2, 5, "N"), (3, 7, "N"), (3, 8, "D")]
    assert dialog.estimate.text().endswith("; 0 would be accepted")
    assert not dialog.accept_button.isEnabled()
    # The views follow: the list's progress and the shown trace's labels.
    assert window.trace_model.rows[2].labeled == 2
    window.select_trace(3)
    assert [view.step_model.steps[i].label for i in (6, 7, 8)] == [None, "N", "D"]
    dialog.close()


def test_the_queue_reader_thread_keeps_one_connection_and_runs_the_newest_job(project) -> None:
    """Jobs queued while one runs collapse into the newest; only the reader thread is niced."""
    import os
    import sys
    import threading

    from bondscope.ui.review import READER_NICE, StoreReader

    base_nice = os.nice(0)
    reader = StoreReader(project)
    started, gate = threading.Event(), threading.Event()
    ran: list[tuple[int, int, int]] = []  # serial, connection, the thread's niceness

    def job(serial: int):
        def run(store: Store) -> None:
            started.set()
            gate.wait(10)
            ran.append((serial, id(store.conn), os.nice(0)))

        return run

    reader.start()
    reader.submit(1, job(1))
    assert started.wait(10)
    for serial in (2, 3, 4):  # queued while job 1 runs: only the newest is still wanted
        reader.submit(serial, job(serial))
    gate.set()
    while reader.answered < 4:
        reader.wait(10)  # returns at once while the thread runs; answered moves on
        if not reader.isRunning():
            break
    reader.stop()
    assert [serial for serial, _, _ in ran] == [1, 4]
    assert ran[0][1] == ran[1][1]  # one connection for the thread's life
    if sys.platform == "linux":
        # the reader thread alone runs READER_NICE below the process (whatever the process's)
        assert {nice for _, _, nice in ran} == {min(base_nice + READER_NICE, 19)}
        assert os.nice(0) == base_nice
