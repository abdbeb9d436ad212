"""Keys reach the labeling only when the trace view has the keyboard on purpose.

Keys are sent to whichever widget has the focus after the previous key, as a person's typing
would be: a filter box that hands the focus to the steps would show up as labels in SQLite.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from bondscope.services.settings import load_settings
from bondscope.ui.shortcuts import ShortcutsDialog
from PySide6.QtCore import QRect, Qt
from PySide6.QtWidgets import QApplication

from .conftest import ANNOTATOR

pytestmark = [
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints"),
]


def my_events(project: Path) -> int:
    with sqlite3.connect(project) as conn:
        return conn.execute(
            "SELECT (SELECT COUNT(*) FROM label_events e JOIN annotators a"
            " ON a.id = e.annotator_id WHERE a.name = ?) + (SELECT COUNT(*) FROM bond_events e"
            " JOIN annotators a ON a.id = e.annotator_id WHERE a.name = ?)",
            (ANNOTATOR, ANNOTATOR),
        ).fetchone()[0]


def my_labels(project: Path, trace_id: int) -> dict[int, str]:
    with sqlite3.connect(project) as conn:
        return dict(
            conn.execute(
                "SELECT step, behavior FROM current_labels WHERE trace_id = ? AND annotator = ?",
                (trace_id, ANNOTATOR),
            )
        )


def my_bonds(project: Path, trace_id: int) -> list[tuple[int, int]]:
    with sqlite3.connect(project) as conn:
        return conn.execute(
            'SELECT "from", "to" FROM current_bonds WHERE trace_id = ? AND annotator = ?'
            " AND type = 'hydrogen'",
            (trace_id, ANNOTATOR),
        ).fetchall()


def type_at_focus(qtbot, text: str) -> None:
    """Each character to the widget that has the keyboard now, like a person typing."""
    for character in text:
        widget = QApplication.focusWidget()
        assert widget is not None
        qtbot.keyClick(widget, character)


@pytest.mark.parametrize(
    "text", ["qwqd", "mole", "deepseek-r1 1234 ndre", "R1/NO_BASE", "qwen-14b", "?}]jk 0x"]
)
def test_typing_in_the_filter_box_writes_no_label(qtbot, project, open_window, text) -> None:
    window = open_window(project)
    window.activateWindow()
    qtbot.mouseClick(window.filter_box, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.filter_box)
    type_at_focus(qtbot, text)
    assert window.filter_box.text() == text
    assert QApplication.focusWidget() is window.filter_box
    assert my_events(project) == 0
    # Enter hands the keyboard to the steps on purpose; then label keys label.
    qtbot.keyClick(window.filter_box, Qt.Key.Key_Backspace)  # keep the box editable
    window.filter_box.clear()
    qtbot.keyClick(window.filter_box, Qt.Key.Key_Return)
    assert QApplication.focusWidget() is window.trace_view
    type_at_focus(qtbot, "d")
    assert my_labels(project, window.trace_id) == {0: "D"}


def test_clicking_a_trace_gives_the_steps_the_keyboard(qtbot, project, open_window) -> None:
    window = open_window(project)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    table = window.trace_table
    rect = table.visualRect(window.trace_model.index(1, 0))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert window.trace_id == 2
    assert QApplication.focusWidget() is window.trace_view


def test_unbound_keys_do_nothing(qtbot, project, open_window) -> None:
    window = open_window(project)
    view = window.trace_view
    view.go_to(18)
    for key in "uwqxyzabcfghilmopstv0 ":  # letters, a digit, space: none is bound
        qtbot.keyClick(view, key)
        assert view.current_row() == 18, key
    assert my_events(project) == 0


@pytest.mark.parametrize("key", [Qt.Key.Key_Delete, Qt.Key.Key_Backspace])
def test_clear_removes_my_label_and_undo_restores_it(qtbot, project, open_window, key) -> None:
    window = open_window(project)
    view = window.trace_view
    qtbot.keyClick(view, "d")
    view.go_to(0)
    qtbot.keyClick(view, key)
    assert my_labels(project, window.trace_id) == {}
    assert view.step_model.steps[0].label is None
    assert view.current_row() == 0  # clearing stays on the step
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert my_labels(project, window.trace_id) == {0: "D"}
    assert view.step_model.steps[0].label == "D"


def label_r_with_top_target(qtbot, window, row: int) -> int:
    view = window.trace_view
    view.go_to(row)
    qtbot.keyClick(view, "r")
    assert window.picker.isVisible()
    target = window.picker.list.item(0).data(Qt.ItemDataRole.UserRole)
    qtbot.keyClick(window.picker.list, Qt.Key.Key_Return)
    return target


def test_relabeling_an_r_step_removes_its_bond(qtbot, project, open_window) -> None:
    window = open_window(project)
    view = window.trace_view
    target = label_r_with_top_target(qtbot, window, 11)
    assert my_bonds(project, window.trace_id) == [(11, target)]
    assert window.bond_gutter.bonds  # the arc is drawn
    view.go_to(11)
    qtbot.keyClick(view, "n")
    assert my_labels(project, window.trace_id)[11] == "N"
    assert my_bonds(project, window.trace_id) == []
    assert view.step_model.steps[11].targets == []
    assert view.model().data(view.model().index(11), Qt.ItemDataRole.UserRole + 1) == "N"
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # one undo: both
    assert my_labels(project, window.trace_id)[11] == "R"
    assert my_bonds(project, window.trace_id) == [(11, target)]
    assert view.step_model.steps[11].targets == [target]


def test_r_again_retargets_and_zero_removes_the_target(qtbot, project, open_window) -> None:
    window = open_window(project)
    view = window.trace_view
    label_r_with_top_target(qtbot, window, 11)
    view.go_to(11)
    qtbot.keyClick(view, "r")
    second = window.picker.list.item(1).data(Qt.ItemDataRole.UserRole)
    qtbot.keyClick(window.picker.list, "2")
    assert my_bonds(project, window.trace_id) == [(11, second)]  # replaced, not added
    view.go_to(11)
    qtbot.keyClick(view, "r")
    qtbot.keyClick(window.picker.list, "0")
    assert not window.picker.isVisible()
    assert my_bonds(project, window.trace_id) == []
    assert my_labels(project, window.trace_id)[11] == "R"


def test_escape_closes_the_shortcuts_dialog_without_binding(qtbot, tmp_path) -> None:
    settings = load_settings()
    dialog = ShortcutsDialog(settings)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    before = dialog.keys()
    first_edit = dialog.edits["label:N"][0]
    first_edit.setFocus()
    qtbot.keyClick(first_edit, Qt.Key.Key_Escape)
    assert not dialog.isVisible()
    assert dialog.result() == ShortcutsDialog.DialogCode.Rejected
    assert dialog.keys() == before  # Esc was not recorded as a key either


def test_window_size_and_docks_come_back_after_a_restart(qtbot, project, open_window) -> None:
    window = open_window(project)
    window.resize(760, 560)  # the offscreen screen is 800x600: restoreGeometry fits it there
    window.review_dock.show()
    window.structure_dock.hide()
    qtbot.waitUntil(lambda: window.review_dock.isVisible())
    window.close()
    again = open_window(project)
    # The offscreen screen is 800x600 and the docks need more width: the height tells.
    assert again.height() == 560 != 860

    assert again.review_dock.isVisible() and not again.structure_dock.isVisible()


def test_trace_list_elides_names_at_the_end(qtbot, project, open_window):
    window = open_window(project)
    assert window.trace_table.textElideMode() == Qt.TextElideMode.ElideRight


def test_target_picker_leaves_its_step_visible(qtbot, project, open_window) -> None:
    window = open_window(project)
    view = window.trace_view
    for row in (3, 11):
        view.go_to(row)
        qtbot.keyClick(view, "r")
        assert window.picker.isVisible()
        rect = view.visualRect(view.step_model.index(row))
        step = QRect(view.viewport().mapToGlobal(rect.topLeft()), rect.size())
        assert not window.picker.frameGeometry().intersects(step), row
        qtbot.keyClick(window.picker.list, Qt.Key.Key_Escape)
