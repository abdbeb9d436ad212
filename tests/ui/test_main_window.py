"""The real window, driven by real key events, checked against what SQLite committed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from bondscope.services.demo import DEMO_ANNOTATOR
from bondscope.services.settings import load_settings
from bondscope.ui.app import run
from PySide6.QtCore import Qt

from .conftest import ANNOTATOR

pytestmark = [
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints"),
]


def my_labels(project: Path, trace_id: int) -> dict[int, str]:
    with sqlite3.connect(project) as conn:
        return dict(
            conn.execute(
                "SELECT step, behavior FROM current_labels WHERE trace_id = ? AND annotator = ?",
                (trace_id, ANNOTATOR),
            )
        )


def my_bonds(project: Path, trace_id: int) -> list[tuple[int, int, str]]:
    with sqlite3.connect(project) as conn:
        return conn.execute(
            'SELECT "from", "to", type FROM current_bonds WHERE trace_id = ? AND annotator = ?',
            (trace_id, ANNOTATOR),
        ).fetchall()


def test_number_and_letter_keys_label_and_advance(qtbot, project, open_window) -> None:
    window = open_window(project)
    view = window.trace_view
    assert view.current_row() == 0
    for key in ("1", "2", "r"):
        qtbot.keyClick(view, key)
        if window.picker.isVisible():
            qtbot.keyClick(window.picker.list, Qt.Key.Key_Escape)
    for key in ("4", "n", "d", "e"):
        qtbot.keyClick(view, key)
    assert my_labels(project, window.trace_id) == {
        0: "N",
        1: "D",
        2: "R",
        3: "E",
        4: "N",
        5: "D",
        6: "E",
    }
    assert view.current_row() == 7
    with sqlite3.connect(project) as conn:
        rows = conn.execute(
            "SELECT e.seconds, e.created_at FROM label_events e"
            " JOIN annotators a ON a.id = e.annotator_id WHERE a.name = ? ORDER BY e.id",
            (ANNOTATOR,),
        ).fetchall()
    assert len(rows) == 7
    assert all(seconds is not None and seconds >= 0 and created for seconds, created in rows)
    assert ANNOTATOR in window.annotator_label.text()
    row = window.trace_model.row_of(window.trace_id)
    assert window.trace_model.rows[row].labeled == 7


def test_enter_accepts_the_model_suggestion(qtbot, project, open_window) -> None:
    window = open_window(project)
    view = window.trace_view
    view.go_to(5)
    suggestion = view.step_model.steps[5].suggestion
    assert suggestion is not None and suggestion != "R"
    qtbot.keyClick(view, Qt.Key.Key_Return)
    with sqlite3.connect(project) as conn:
        (model_label,) = conn.execute(
            "SELECT behavior FROM current_labels WHERE trace_id = ? AND step = 5 AND annotator = ?",
            (window.trace_id, DEMO_ANNOTATOR),
        ).fetchone()
    assert my_labels(project, window.trace_id) == {5: model_label}
    assert view.current_row() == 6


def test_reflection_opens_target_picker_and_digit_stores_hydrogen_bond(
    qtbot, project, open_window
) -> None:
    window = open_window(project)
    view = window.trace_view
    view.go_to(11)
    qtbot.keyClick(view, "3")
    picker = window.picker
    assert picker.isVisible()
    assert picker.list.currentRow() == 0  # the best candidate is pre-selected
    targets = [picker.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(9)]
    assert all(t < 10 for t in targets)  # only j < t - 1
    qtbot.keyClick(picker.list, "2")
    assert not picker.isVisible()
    assert my_labels(project, window.trace_id) == {11: "R"}
    assert my_bonds(project, window.trace_id) == [(11, targets[1], "hydrogen")]
    assert view.step_model.steps[11].targets == [targets[1]]
    assert view.current_row() == 12


def test_enter_in_picker_takes_the_top_candidate(qtbot, project, open_window) -> None:
    window = open_window(project)
    window.trace_view.go_to(20)
    qtbot.keyClick(window.trace_view, "r")
    top = window.picker.list.item(0).data(Qt.ItemDataRole.UserRole)
    qtbot.keyClick(window.picker.list, Qt.Key.Key_Return)
    assert my_bonds(project, window.trace_id) == [(20, top, "hydrogen")]


def test_undo_and_redo_survive_a_restart(qtbot, project, open_window) -> None:
    window = open_window(project)
    trace_id = window.trace_id
    view = window.trace_view
    qtbot.keyClick(view, "1")
    qtbot.keyClick(view, "2")
    view.go_to(11)
    qtbot.keyClick(view, "r")
    qtbot.keyClick(window.picker.list, "1")
    assert my_labels(project, trace_id) == {0: "N", 1: "D", 11: "R"}
    assert len(my_bonds(project, trace_id)) == 1

    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # the bond
    assert my_bonds(project, trace_id) == []
    assert my_labels(project, trace_id) == {0: "N", 1: "D", 11: "R"}
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # the R label
    assert my_labels(project, trace_id) == {0: "N", 1: "D"}
    assert view.current_row() == 11
    window.close()

    window = open_window(project)
    view = window.trace_view
    assert view.step_model.steps[1].label == "D"
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert my_labels(project, trace_id) == {0: "N"}
    assert view.step_model.steps[1].label is None
    redo = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    for _ in range(3):
        qtbot.keyClick(view, Qt.Key.Key_Z, redo)
    assert my_labels(project, trace_id) == {0: "N", 1: "D", 11: "R"}
    qtbot.keyClick(view, Qt.Key.Key_Z, redo)
    assert len(my_bonds(project, trace_id)) == 1
    assert view.step_model.steps[11].targets
    qtbot.keyClick(view, Qt.Key.Key_Z, redo)  # nothing left to redo
    assert "nothing to redo" in window.statusBar().currentMessage()


def test_undo_jumps_to_the_trace_it_changed(qtbot, project, open_window) -> None:
    window = open_window(project)
    first = window.trace_id
    qtbot.keyClick(window.trace_view, "2")
    window.trace_table.selectRow(2)
    assert window.trace_id != first
    qtbot.keyClick(window.trace_view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.trace_id == first
    assert my_labels(project, first) == {}


def test_navigation_keys(qtbot, project, open_window) -> None:
    window = open_window(project)
    view = window.trace_view
    qtbot.keyClick(view, "j")
    qtbot.keyClick(view, Qt.Key.Key_Down)
    assert view.current_row() == 2
    qtbot.keyClick(view, "k")
    assert view.current_row() == 1
    qtbot.keyClick(view, Qt.Key.Key_Up)
    qtbot.keyClick(view, Qt.Key.Key_Up)  # stays on the first step
    assert view.current_row() == 0
    qtbot.keyClick(view, "1")  # labels 0, moves to 1
    qtbot.keyClick(view, "1")  # labels 1, moves to 2
    view.go_to(0)
    qtbot.keyClick(view, "]")
    assert view.current_row() == 2
    qtbot.keyClick(view, "?")
    assert window.shortcuts.isVisible()


def test_filter_box_narrows_the_trace_list(qtbot, project, open_window) -> None:
    window = open_window(project)
    assert window.trace_model.rowCount() == 3
    qtbot.keyClicks(window.filter_box, "qwen")
    assert window.trace_model.rowCount() == 1
    name = window.trace_model.index(0, 0).data()
    assert "qwen" in name


def test_import_runs_in_a_worker_thread(qtbot, tmp_path, open_window) -> None:
    from importlib.resources import files

    window = open_window(tmp_path / "empty.bondscope")
    assert window.trace_model.rowCount() == 0
    demo = Path(str(files("bondscope.resources") / "demo" / "demo.jsonl"))
    with qtbot.waitSignal(window.trace_model.modelReset, timeout=30_000):
        worker = window.project_jobs.start_import([demo])
    qtbot.waitUntil(lambda: not worker.isRunning())
    assert window.trace_model.rowCount() == 3
    assert window.trace_view.step_model.rowCount() > 0


def test_settings_remember_the_last_project(project, open_window) -> None:
    open_window(project)
    assert load_settings().last_project == str(project.resolve())


def test_screenshot_writes_a_png(project, tmp_path, qapp) -> None:
    out = tmp_path / "shot.png"
    assert run(db=project, trace="deepseek-r1/no_base_solution/scenario_0", screenshot=out) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000


def test_screenshot_defaults_to_the_demo_project(tmp_path, qapp) -> None:
    out = tmp_path / "demo.png"
    assert run(screenshot=out) == 0
    assert out.stat().st_size > 10_000


def test_unknown_trace_is_an_error(project, tmp_path, qapp, capsys) -> None:
    assert run(db=project, trace="nope", screenshot=tmp_path / "x.png") == 1
    assert "no trace named 'nope'" in capsys.readouterr().err
