"""The project while the app is open (reliability issue): a timer takes rotating backups, each a
sound copy holding the labels typed so far; a keystroke while another process holds the write
lock is refused with a clear message, never a traceback."""

from __future__ import annotations

import sqlite3

import pytest
from bondscope import backups
from bondscope.ui.main_window import BACKUP_INTERVAL_MS

from .conftest import ANNOTATOR

pytestmark = [
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints"),
]


def test_the_backup_timer_copies_the_open_project(qtbot, project, open_window) -> None:
    window = open_window(project)
    assert window.backup_timer.isActive() and window.backup_timer.interval() == BACKUP_INTERVAL_MS
    qtbot.keyClick(window.trace_view, "2")  # a label, then the timer fires
    window.backup_timer.timeout.emit()
    (saved,) = backups.list_backups(project)
    assert saved.name.endswith("-scheduled.db")
    conn = sqlite3.connect(saved)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        labels = conn.execute(
            "SELECT COUNT(*) FROM current_labels WHERE annotator = ?", (ANNOTATOR,)
        ).fetchone()[0]
    finally:
        conn.close()
    assert labels == 1


def test_a_keystroke_while_another_process_writes_says_not_saved(qtbot, project, open_window):
    """No "database is locked" traceback reaches the annotator: the label is refused with the
    busy message and the view keeps showing what is stored."""
    window = open_window(project)
    window.store.conn.execute("PRAGMA busy_timeout = 100")  # instead of waiting 30 s
    row = window.trace_view.currentIndex().row()
    before = window.trace_view.step_model.steps[row].label
    other = sqlite3.connect(project, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        qtbot.keyClick(window.trace_view, "3")
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert "not saved" in window.statusBar().currentMessage()
    assert "busy" in window.statusBar().currentMessage()
    assert window.trace_view.step_model.steps[row].label == before
    qtbot.keyClick(window.trace_view, "3")  # the lock is gone: saved
    assert window.trace_view.step_model.steps[row].label == "R"
