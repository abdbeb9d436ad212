"""The corpus side is kept from a snapshot plus the labels typed since: after labels in several
traces it equals a fresh count of the project, and typing starts no worker."""

from __future__ import annotations

import numpy as np
import pytest
from bondscope.services.structure import Selection, transition_counts
from bondscope.store import Store

from .conftest import ANNOTATOR

pytestmark = [
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints"),
]


def fresh(project) -> tuple[np.ndarray, np.ndarray]:
    with Store(project) as store:
        counts = transition_counts(store, Selection(annotator=ANNOTATOR))
    return counts.behaviors, counts.transitions


def test_corpus_follows_labels_in_several_traces_without_recounting(
    qtbot, project, open_window
) -> None:
    window = open_window(project)
    view, corpus = window.trace_view, window.structure.corpus
    for key in ("1", "2", "2"):
        qtbot.keyClick(view, key)
    window.refresh_corpus()  # the model's labels stood for the corpus: a snapshot of mine
    qtbot.waitUntil(lambda: not window.background_busy(), timeout=10_000)
    assert window.structure_feed.tally is not None
    assert window.structure_feed.tally.annotator == ANNOTATOR
    for row, keys in ((1, "414"), (2, "12"), (0, "44")):
        window.trace_table.selectRow(row)
        view.go_to(5)
        for key in keys:
            qtbot.keyClick(view, key)
        window.refresh_corpus()
        assert window.structure_feed.worker is None  # kept from memory, not counted again
        behaviors, transitions = fresh(project)
        np.testing.assert_array_equal(corpus.behaviors, behaviors)
        np.testing.assert_array_equal(corpus.transitions, transitions)
    assert "3 traces" in corpus.title.text
