"""Tools > Adjudicate in the app, and a work pack opened in the app, against the same services
and SQLite files the CLI uses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bondscope.plugin_manager import Plugins
from bondscope.services.adjudication import GOLD
from bondscope.services.labeling import set_label
from bondscope.services.packs import create_pack
from bondscope.store import Store
from PySide6.QtCore import Qt

from .conftest import ANNOTATOR

pytestmark = [
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints"),
]


def two_readers(project: Path) -> dict[int, int]:
    """alice and bob label trace 1: they disagree on steps 1 and 3; {step: step id}."""
    with Store(project) as store:
        steps = {idx: sid for idx, (sid, _) in enumerate(store.active_steps(1)) if idx < 5}
        for idx, step_id in steps.items():
            set_label(store, step_id, "alice", "N")
            set_label(store, step_id, "bob", "R" if idx in (1, 3) else "N")
    return steps


def test_adjudicate_dialog_keys_pick_gold_with_reason(qtbot, project, open_window) -> None:
    steps = two_readers(project)
    window = open_window(project)
    window.select_trace(1)
    dialog = window.review_flow.show_adjudicate()
    assert dialog is not None
    qtbot.waitExposed(dialog)
    headers = [
        dialog.table.horizontalHeaderItem(c).text() for c in range(dialog.table.columnCount())
    ]
    assert headers == ["step", "text", "alice", "bob", "gold"]
    assert [dialog.table.item(r, 0).text() for r in range(dialog.table.rowCount())] == ["1", "3"]
    assert [dialog.table.item(0, c).text() for c in (2, 3, 4)] == ["N", "R", ""]

    dialog.table.setFocus()
    dialog.reason.setText("it checks step 0")
    with qtbot.waitSignal(dialog.decided) as decided:
        qtbot.keyClick(dialog.table, Qt.Key.Key_R)
    assert decided.args == [steps[1]]
    assert dialog.table.item(0, 4).text() == "R" and dialog.table.currentRow() == 1
    assert dialog.reason.text() == ""
    qtbot.keyClick(dialog.table, Qt.Key.Key_N)
    assert dialog.table.item(1, 4).text() == "N"
    assert "0 undecided" in dialog.caption.text()

    with Store(project) as store:
        rows = store.conn.execute(
            "SELECT l.step, l.behavior, a.decided_by, a.reason, a.labels FROM current_labels l "
            "JOIN adjudications a ON a.event_id = l.event_id WHERE l.annotator = ? ORDER BY l.step",
            (GOLD,),
        ).fetchall()
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        (1, "R", ANNOTATOR, "it checks step 0"),
        (3, "N", ANNOTATOR, ""),
    ]
    assert json.loads(rows[0][4])["bob"] == "R"


def test_a_work_pack_opens_as_its_annotator(qtbot, project, open_window, tmp_path) -> None:
    pack = tmp_path / "alice-1.bondscope"
    with Store(project) as store:
        create_pack(store, Plugins(load_entry_points=False), "alice", pack, traces=1)
    window = open_window(pack)
    assert window.annotator == "alice"
    assert window.annotator_label.text() == "annotator: alice (pack)"
    window.open_project(project)
    assert window.annotator == ANNOTATOR
