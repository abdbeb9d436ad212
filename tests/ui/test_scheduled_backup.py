"""While the app is open, a timer takes rotating backups of the project (reliability issue,
backups): each is a sound copy holding the labels typed so far."""

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
