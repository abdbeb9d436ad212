"""The R-target picker ranks by step embeddings once the background encoder is done, and by
TF-IDF until then (the keystroke never waits)."""

from __future__ import annotations

import numpy as np
import pytest
from bondscope.models.encoder import Encoder
from bondscope.services import labeling
from PySide6.QtCore import Qt

pytestmark = [
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints"),
]

ROW = 20


def picker_targets(window) -> list[int]:
    items = window.picker.list
    return [int(items.item(i).data(Qt.ItemDataRole.UserRole)) for i in range(items.count())]


def press_r(qtbot, window, row: int) -> None:
    window.trace_view.go_to(row)
    qtbot.keyClick(window.trace_view, "r")
    assert window.picker.isVisible()


def test_picker_uses_embeddings_once_ready(qtbot, project, open_window) -> None:
    window = open_window(project, embeddings=True)
    model = window.trace_view.step_model
    texts = [model.step_text(i) for i in range(model.rowCount())]
    qtbot.waitUntil(
        lambda: window.embeddings.get(window.trace_id, len(texts)) is not None, timeout=120_000
    )
    cached = window.embeddings.get(window.trace_id, len(texts))
    expected = Encoder(provider="cpu").encode(texts)  # the same encoder, built independently
    assert cached.shape == expected.shape == (len(texts), 384)
    assert np.allclose(cached, expected, atol=1e-5)  # chunked in the background, yet the same
    press_r(qtbot, window, ROW)
    ranked = labeling.rank_targets_by_embedding(cached, ROW)
    assert window.picker.how == "embedding"
    assert picker_targets(window)[0] == ranked[0][0]
    assert picker_targets(window) == [j for j, _ in ranked]
    assert max(picker_targets(window)) < ROW - 1
    qtbot.keyClick(window.picker.list, Qt.Key.Key_Escape)


def test_picker_falls_back_to_tfidf_without_embeddings(qtbot, project, open_window) -> None:
    window = open_window(project)  # embeddings off: as while the encoder is still running
    assert window.embeddings.get(window.trace_id, window.trace_view.step_model.rowCount()) is None
    model = window.trace_view.step_model
    texts = [model.step_text(i) for i in range(ROW + 1)]
    press_r(qtbot, window, ROW)
    assert window.picker.how == "TF-IDF"
    assert picker_targets(window) == [j for j, _ in labeling.suggest_targets(texts, ROW)]
    qtbot.keyClick(window.picker.list, Qt.Key.Key_Escape)
