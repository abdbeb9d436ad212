"""Trace list columns, sorting and filtering; `}`; rebinding keys; the annotator prompt."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from bondscope.services.settings import Settings, load_settings
from bondscope.store import Store, now
from bondscope.ui.annotator import AnnotatorDialog, first_start_annotator, os_user
from bondscope.ui.shortcuts import ShortcutsDialog
from bondscope.ui.trace_list import AGREEMENT, PERCENT, UNCERTAINTY
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QHeaderView, QKeySequenceEdit

from .conftest import ANNOTATOR

pytestmark = [
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints"),
]

CONFIDENCES = {3: 0.9, 5: 0.4, 8: 0.7, 10: 0.5, 12: 0.95}


def add_model_labels(project: Path, trace_id: int, confidences: dict[int, float]) -> None:
    """Pre-labels with confidences from a `model:` annotator, written like a pre-labeling run."""
    with Store(project) as store, store.transaction():
        annotator_id = store.annotator_id("model:test")
        step_ids = dict(
            store.conn.execute(
                "SELECT idx, id FROM steps WHERE trace_id = ? AND retired_run_id IS NULL",
                (trace_id,),
            ).fetchall()
        )
        for step, confidence in confidences.items():
            store.conn.execute(
                "INSERT INTO label_events (step_id, annotator_id, behavior, confidence,"
                " created_at) VALUES (?, ?, 'D', ?, ?)",
                (step_ids[step], annotator_id, confidence, now()),
            )


def click_header(qtbot, window, column: int) -> None:
    header: QHeaderView = window.trace_table.horizontalHeader()
    x = header.sectionViewportPosition(column) + header.sectionSize(column) // 2
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, 5))


def column(window, col: int, role=Qt.ItemDataRole.EditRole) -> list:
    model = window.trace_model
    return [model.index(row, col).data(role) for row in range(model.rowCount())]


def test_columns_sort_by_header_clicks_and_filter(qtbot, project, open_window) -> None:
    add_model_labels(project, 2, CONFIDENCES)
    window = open_window(project)
    headers = [window.trace_model.headerData(c, Qt.Orientation.Horizontal) for c in range(7)]
    assert headers == [
        "name",
        "model",
        "source",
        "steps",
        "% labeled",
        "uncertainty",
        "agreement",
    ]
    click_header(qtbot, window, 3)
    assert column(window, 3) == sorted(column(window, 3))
    click_header(qtbot, window, 3)
    assert column(window, 3) == sorted(column(window, 3), reverse=True)

    # Uncertainty: 1 - mean confidence of the newest model annotator of that trace only.
    uncertainty = dict(zip(column(window, 0), column(window, UNCERTAINTY), strict=True))
    expected = 1 - sum(CONFIDENCES.values()) / len(CONFIDENCES)
    assert [u for u in uncertainty.values() if u is not None] == [pytest.approx(expected)]
    shown = column(window, UNCERTAINTY, Qt.ItemDataRole.DisplayRole)
    assert sorted(shown) == ["", "", f"{expected:.2f}"]

    # Label two steps of the first trace (one agreeing with the hint) and sort by % labeled.
    window.select_trace(1)
    view = window.trace_view
    hint0 = view.step_model.steps[0].suggestion
    qtbot.keyClick(view, Qt.Key.Key_Return)  # accept the hint: agrees
    other = next(b for b in "NDRE" if b not in ("R", view.step_model.steps[1].suggestion))
    qtbot.keyClick(view, "1234"["NDRE".index(other)])  # a different label: disagrees
    assert hint0 is not None
    click_header(qtbot, window, PERCENT)
    click_header(qtbot, window, PERCENT)  # descending: the labeled trace first
    first = window.trace_model.index(0, PERCENT)
    assert first.data(Qt.ItemDataRole.EditRole) == pytest.approx(2 / 95)
    assert window.trace_model.index(0, AGREEMENT).data() == "50%"
    assert column(window, AGREEMENT, Qt.ItemDataRole.DisplayRole)[1:] == ["", ""]
    assert window.traces.progress.labeled == 2
    assert window.traces.progress.total == 95 + 87 + 51

    # A fresh read from SQLite gives the same agreement as the in-memory update.
    window.reload_traces()
    assert window.trace_model.index(0, AGREEMENT).data() == "50%"

    qtbot.keyClicks(window.filter_box, "llama")
    assert window.trace_model.rowCount() == 1
    assert "llama" in window.trace_model.index(0, 1).data()
    window.filter_box.clear()
    qtbot.keyClicks(window.filter_box, "thought-anchors")  # the source column
    assert window.trace_model.rowCount() == 3


def test_brace_jumps_to_the_next_low_confidence_step(qtbot, project, open_window) -> None:
    add_model_labels(project, 1, CONFIDENCES)
    window = open_window(project)
    view = window.trace_view
    assert view.step_model.steps[5].confidence == pytest.approx(0.4)
    qtbot.keyClick(view, "}")
    assert view.current_row() == 5  # the first hint below 0.6
    qtbot.keyClick(view, "}")
    assert view.current_row() == 10
    qtbot.keyClick(view, "}")  # none below 0.6 left after 10: the least confident one (12)
    assert view.current_row() == 12
    qtbot.keyClick(view, "}")
    assert view.current_row() == 12
    assert "no unlabeled step" in window.statusBar().currentMessage()
    view.go_to(4)
    qtbot.keyClick(view, "2")  # labels 4, moves to 5
    qtbot.keyClick(view, "2")  # labels 5 (the 0.4 one), moves to 6
    qtbot.keyClick(view, "}")
    assert view.current_row() == 10  # 5 is labeled now; 10 is the next below 0.6
    view.go_to(4)
    qtbot.keyClick(view, Qt.Key.Key_BraceRight, Qt.KeyboardModifier.ShiftModifier)  # US layout
    assert view.current_row() == 10


def key_edit(dialog: ShortcutsDialog, action: str, slot: int) -> QKeySequenceEdit:
    return dialog.edits[action][slot]


def test_rebinding_a_key_changes_what_it_does_and_persists(
    qtbot, project, open_window, tmp_path
) -> None:
    window = open_window(project)
    window.shortcuts_action.trigger()
    dialog = window.findChild(ShortcutsDialog)
    assert dialog is not None and dialog.isVisible()
    edit = key_edit(dialog, "label:D", 0)
    assert edit.keySequence().toString() == "2"
    qtbot.keyClick(edit, "x")
    assert edit.keySequence().toString() == "X"
    # A key already bound elsewhere is refused until the conflict is gone.
    qtbot.keyClick(key_edit(dialog, "label:E", 1), "j")
    ok = dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok)
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    assert dialog.isVisible() and "J is bound to" in dialog.problem.text()
    qtbot.keyClick(key_edit(dialog, "label:E", 1), "y")
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()

    view = window.trace_view
    qtbot.keyClick(view, "x")
    qtbot.keyClick(view, "2")  # no longer bound: nothing happens
    qtbot.keyClick(view, "y")
    with sqlite3.connect(project) as conn:
        labels = dict(
            conn.execute(
                "SELECT step, behavior FROM current_labels WHERE trace_id = ? AND annotator = ?",
                (window.trace_id, ANNOTATOR),
            ).fetchall()
        )
    assert labels == {0: "D", 1: "E"}
    assert "[4/y]" in window.legend.text() and "[x/d]" in window.legend.text()
    qtbot.keyClick(view, "?")
    assert "<b>X</b>" in window.shortcuts.text()
    window.shortcuts.close()
    stored = load_settings()
    assert stored.key_bindings["x"] == "D" and "2" not in stored.key_bindings
    window.close()

    window = open_window(project)  # a new window reads the settings file again
    view = window.trace_view
    view.go_to(2)
    qtbot.keyClick(view, "x")
    assert view.step_model.steps[2].label == "D"


def test_rebinding_undo_moves_the_menu_shortcut_too(qtbot, project, open_window) -> None:
    window = open_window(project)
    keys = {"undo": ["Ctrl+U"], "redo": ["Ctrl+Shift+Z"], "label:N": ["1"]}
    window.settings_flow.set_shortcuts(keys)
    assert window.edit_actions["undo"].shortcut().toString() == "Ctrl+U"
    view = window.trace_view
    qtbot.keyClick(view, "1")
    assert view.step_model.steps[0].label == "N"
    qtbot.keyClick(view, Qt.Key.Key_U, Qt.KeyboardModifier.ControlModifier)
    assert view.step_model.steps[0].label is None
    assert load_settings().shortcuts["undo"] == ["Ctrl+U"]


def test_first_start_asks_for_the_annotator(qtbot, qapp) -> None:
    settings = load_settings()
    assert settings.annotator is None
    seen: list[str] = []

    def answer() -> None:
        dialog = QApplication.activeModalWidget()
        try:
            assert isinstance(dialog, AnnotatorDialog)
            seen.append(dialog.name())
            dialog.name_edit.clear()
            ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
            seen.append(str(ok.isEnabled()))  # blank names are refused
            qtbot.keyClicks(dialog.name_edit, "alice")
            qtbot.keyClick(dialog.name_edit, Qt.Key.Key_Return)
        finally:
            if dialog is not None and dialog.isVisible():
                dialog.reject()

    QTimer.singleShot(0, answer)
    assert first_start_annotator(settings, prompt=True) == "alice"
    assert seen == [os_user(), "False"]
    assert settings.annotator == "alice"
    # Screenshots and tests never block on the dialog.
    assert first_start_annotator(Settings(annotator=None), prompt=False) == os_user()
    assert first_start_annotator(Settings(annotator="bob"), prompt=True) == "bob"


def test_cancelling_the_first_start_prompt_quits(qtbot, qapp) -> None:
    def cancel() -> None:
        dialog = QApplication.activeModalWidget()
        if dialog is not None:
            qtbot.keyClick(dialog, Qt.Key.Key_Escape)

    QTimer.singleShot(0, cancel)
    assert first_start_annotator(Settings(annotator=None), prompt=True) is None


def test_settings_annotator_switches_whose_labels_are_shown(qtbot, project, open_window) -> None:
    window = open_window(project)
    qtbot.keyClick(window.trace_view, "2")
    dialog = window.settings_flow.edit_annotator()
    assert dialog.name() == ANNOTATOR
    dialog.name_edit.clear()
    qtbot.keyClicks(dialog.name_edit, "second")
    qtbot.keyClick(dialog.name_edit, Qt.Key.Key_Return)
    assert window.annotator == "second"
    assert "annotator: second" in window.annotator_label.text()
    assert load_settings().annotator == "second"
    assert window.trace_view.step_model.steps[0].label is None  # the first one's label
    assert window.traces.progress.labeled == 0
    qtbot.keyClick(window.trace_view, "1")
    with sqlite3.connect(project) as conn:
        rows = conn.execute(
            "SELECT annotator, behavior FROM current_labels WHERE step = 0 AND trace_id = ?"
            " AND annotator IN (?, 'second') ORDER BY annotator",
            (window.trace_id, ANNOTATOR),
        ).fetchall()
    assert rows == [("second", "N"), (ANNOTATOR, "D")]
