"""The labeling controller reports through signals what the window must redraw: a stored step,
changed bonds, an undo that landed in another trace, a message for the status bar."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from .test_keys_focus import my_bonds, my_labels

pytestmark = [
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints"),
]


class Heard:
    """Every signal of a LabelingController, in the order they came."""

    def __init__(self, controller) -> None:
        self.events: list[tuple] = []
        controller.step_saved.connect(lambda row: self.events.append(("saved", row)))
        controller.bonds_changed.connect(lambda: self.events.append(("bonds",)))
        controller.history_moved.connect(lambda trace: self.events.append(("moved", trace)))
        controller.notice.connect(lambda text, ms: self.events.append(("notice", text, ms)))

    def take(self) -> list[tuple]:
        events, self.events = self.events, []
        return events


def stored_state(project: Path, trace_id: int, row: int) -> str | None:
    return my_labels(project, trace_id).get(row)


def test_a_label_is_stored_then_reported_once(qtbot, project, open_window) -> None:
    window = open_window(project)
    heard = Heard(window.labeling)
    view = window.trace_view
    view.go_to(4)
    qtbot.keyClick(view, "2")
    assert heard.take() == [("saved", 4)]  # a label alone: no bond re-read
    assert stored_state(project, window.trace_id, 4) == "D"
    assert view.step_model.steps[4].label == "D" and view.current_row() == 5
    suggestion = view.step_model.steps[5].suggestion
    assert suggestion is not None  # the demo's model labeled every step
    qtbot.keyClick(view, Qt.Key.Key_Return)  # accept the model's hint
    assert heard.take() == [("saved", 5)]
    assert stored_state(project, window.trace_id, 5) == suggestion


def test_a_target_changes_the_bonds_then_the_step(qtbot, project, open_window) -> None:
    window = open_window(project)
    heard = Heard(window.labeling)
    view = window.trace_view
    view.go_to(11)
    qtbot.keyClick(view, "r")
    assert heard.take() == [("saved", 11)]  # R alone has no target yet
    assert window.picker.isVisible()
    qtbot.keyClick(window.picker.list, Qt.Key.Key_Return)  # the best-ranked candidate
    assert heard.take() == [("bonds",), ("saved", 11)]
    (bond,) = my_bonds(project, window.trace_id)
    assert bond[0] == 11 and view.step_model.steps[11].targets == [bond[1]]
    shown = {(b.source, b.target) for b in window.bond_gutter.bonds if b.mine}
    assert shown == {bond}  # the gutter re-read its bonds on `bonds_changed`


def test_undo_in_another_trace_moves_there(qtbot, project, open_window) -> None:
    window = open_window(project)
    heard = Heard(window.labeling)
    first = window.trace_id
    qtbot.keyClick(window.trace_view, "1")  # step 0 of the first trace
    window.select_trace(2)
    assert heard.take() == [("saved", 0)]
    window.labeling.undo()
    assert heard.take() == [("moved", first), ("notice", "undo: step 0", 3000)]
    assert window.trace_id == first  # the window showed the trace on `history_moved`
    assert window.trace_view.step_model.steps[0].label is None
    assert stored_state(project, first, 0) is None
    window.labeling.redo()
    assert heard.take() == [("moved", first), ("saved", 0), ("notice", "redo: step 0", 3000)]
    assert window.trace_view.step_model.steps[0].label == "N"
    window.labeling.redo()
    assert heard.take() == [("notice", "nothing to redo", 3000)]
