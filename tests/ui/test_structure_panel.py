"""The structure panel against structure.py's SQL counts, after labeling with real key events."""

from __future__ import annotations

import numpy as np
import pytest
from bondscope.services import labeling
from bondscope.services.demo import DEMO_ANNOTATOR
from bondscope.services.structure import Selection, trace_transition_counts, transition_counts
from bondscope.store import Store
from PySide6.QtCore import Qt

from .conftest import ANNOTATOR

pytestmark = [
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints"),
]


def sql_trace_counts(project, trace_id: int, annotator: str) -> tuple[np.ndarray, np.ndarray]:
    """(behaviors, transitions) of one trace, as structure.py counts them in SQLite."""
    with Store(project) as store:
        ids, per_trace = trace_transition_counts(store, Selection(annotator=annotator))
        labels = store.conn.execute(
            "SELECT behavior, COUNT(*) FROM current_labels WHERE trace_id = ? AND annotator = ?"
            " GROUP BY behavior",
            (trace_id, annotator),
        ).fetchall()
    behaviors = np.zeros(4, dtype=np.int64)
    for behavior, n in labels:
        behaviors["NDRE".index(behavior)] = n
    (row,) = np.flatnonzero(ids == trace_id)
    return behaviors, per_trace[row]


def test_panel_starts_on_the_model_suggestions(qtbot, project, open_window) -> None:
    window = open_window(project)
    panel = window.structure
    with Store(project) as store:
        model = transition_counts(store, Selection(annotator=DEMO_ANNOTATOR))
    np.testing.assert_array_equal(panel.corpus.behaviors, model.behaviors)
    np.testing.assert_array_equal(panel.corpus.transitions, model.transitions)
    behaviors, transitions = sql_trace_counts(project, window.trace_id, DEMO_ANNOTATOR)
    np.testing.assert_array_equal(panel.trace.behaviors, behaviors)
    np.testing.assert_array_equal(panel.trace.transitions, transitions)
    assert "model suggestions" in panel.trace.title.text


def test_panel_follows_labels_typed_with_keys(qtbot, project, open_window) -> None:
    window = open_window(project)
    view, panel = window.trace_view, window.structure
    for key in ("1", "2", "2", "4", "1", "n"):
        qtbot.keyClick(view, key)
    qtbot.keyClick(view, "j")  # step 6 stays unlabeled: the chain breaks there
    for key in ("e", "e", "d"):
        qtbot.keyClick(view, key)
    behaviors, transitions = sql_trace_counts(project, window.trace_id, ANNOTATOR)
    assert behaviors.sum() == 9 and transitions.sum() == 7
    # The trace side is live: it follows on the next turn of the event loop.
    qtbot.waitUntil(lambda: np.array_equal(panel.trace.behaviors, behaviors), timeout=1000)
    np.testing.assert_array_equal(panel.trace.transitions, transitions)
    percent = panel.trace.percent()
    np.testing.assert_allclose(percent[transitions.sum(axis=1) > 0].sum(axis=1), 100)
    assert panel.trace.cell_texts[0][1].textItem.toPlainText() == f"{percent[0, 1]:.0f}"
    assert ANNOTATOR in panel.trace.title.text

    # The corpus side follows once labeling pauses (debounced), from structure.py.
    qtbot.waitUntil(lambda: panel.corpus.behaviors.sum() == 9, timeout=3000)
    with Store(project) as store:
        corpus = transition_counts(store, Selection(annotator=ANNOTATOR))
    np.testing.assert_array_equal(panel.corpus.behaviors, corpus.behaviors)
    np.testing.assert_array_equal(panel.corpus.transitions, corpus.transitions)

    window.trace_table.selectRow(1)  # another trace: its side is the model's, the corpus mine
    qtbot.keyClick(window.trace_view, "4")
    behaviors, transitions = sql_trace_counts(project, window.trace_id, ANNOTATOR)
    qtbot.waitUntil(lambda: np.array_equal(panel.trace.behaviors, behaviors), timeout=1000)
    np.testing.assert_array_equal(panel.trace.transitions, transitions)
    qtbot.waitUntil(lambda: panel.corpus.behaviors.sum() == 10, timeout=3000)
    assert panel.corpus.behaviors[3] == corpus.behaviors[3] + 1

    qtbot.keyClick(window.trace_view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: panel.corpus.behaviors.sum() == 9, timeout=3000)


def test_label_counts_match_sql_on_gaps() -> None:
    behaviors, transitions = labeling.label_counts(["N", "N", None, "R", "E", "E", None])
    np.testing.assert_array_equal(behaviors, [2, 0, 1, 2])
    assert transitions[0, 0] == 1 and transitions[2, 3] == 1 and transitions[3, 3] == 1
    assert transitions.sum() == 3


def test_export_action_writes_a_png(qtbot, project, open_window, tmp_path) -> None:
    window = open_window(project)
    panel = window.structure
    assert panel.export_action in panel.graphics.actions()
    assert panel.graphics.contextMenuPolicy() == Qt.ContextMenuPolicy.ActionsContextMenu
    out = tmp_path / "panel.png"
    panel.export_png(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000


def test_hidden_panel_is_not_updated_and_catches_up(qtbot, project, open_window) -> None:
    window = open_window(project)
    window.structure_dock.hide()
    qtbot.keyClick(window.trace_view, "2")
    assert window.structure.trace.behaviors.sum() != 1
    window.structure_dock.show()
    qtbot.waitUntil(lambda: window.structure.trace.behaviors.sum() == 1)
    assert window.structure.trace.behaviors[1] == 1
