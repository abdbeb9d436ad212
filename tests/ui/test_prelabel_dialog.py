"""Tools > Pre-label offers the shipped classifier first, whatever order the plugins load in."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QInputDialog

pytestmark = [
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints"),
]


def test_prelabel_dialog_defaults_to_the_shipped_classifier(qtbot, project, open_window) -> None:
    window = open_window(project)
    seen: list[tuple[str, list[str]]] = []

    def answer() -> None:
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, QInputDialog)
        seen.append((dialog.textValue(), dialog.comboBoxItems()))
        dialog.reject()  # nothing runs

    QTimer.singleShot(0, answer)
    window.project_jobs.choose_prelabel(all_traces=True)
    assert seen, "the pre-label dialog did not open"
    chosen, offered = seen[0]
    assert chosen == "bondscope-minilm"
    assert {"bondscope-minilm", "keywords", "llm"} <= set(offered)
    assert window.jobs.worker is None
