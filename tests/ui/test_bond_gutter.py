"""The bond gutter, minimap and legend, checked against what the SQLite project holds."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from bondscope.services import labeling
from bondscope.services.labeling import TraceBond
from bondscope.ui.bond_gutter import BondGutter
from PySide6.QtCore import QPoint, Qt

from .conftest import ANNOTATOR

pytestmark = [
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints"),
]


def stored_bonds(project: Path, trace_id: int) -> set[TraceBond]:
    """Every annotator's current bonds of the trace, straight from the `current_bonds` view."""
    with sqlite3.connect(project) as conn:
        rows = conn.execute(
            'SELECT "from", "to", type, annotator FROM current_bonds WHERE trace_id = ?',
            (trace_id,),
        ).fetchall()
    return {TraceBond(f, t, type_, who == ANNOTATOR) for f, t, type_, who in rows}


def expected_arcs(gutter: BondGutter, project: Path, trace_id: int) -> set[tuple[int, int, str]]:
    """Stored bonds of the shown types that cross the rows the list view shows right now."""
    view = gutter.view
    shown = [
        row
        for row in range(view.step_model.rowCount())
        if view.visualRect(view.step_model.index(row)).intersects(view.viewport().rect())
    ]
    first, last = min(shown), max(shown)
    return {
        (b.source, b.target, b.type)
        for b in stored_bonds(project, trace_id)
        if b.type in gutter.shown_types and b.target <= last and b.source >= first
    }


def arc_keys(gutter: BondGutter) -> set[tuple[int, int, str]]:
    return {(a.bond.source, a.bond.target, a.bond.type) for a in gutter.arcs()}


def test_gutter_holds_the_stored_bonds_of_the_shown_trace(qtbot, project, open_window) -> None:
    window = open_window(project)
    gutter = window.bond_gutter
    assert set(gutter.bonds) == stored_bonds(project, window.trace_id)
    assert len(gutter.bonds) == len(stored_bonds(project, window.trace_id)) > 0
    window.trace_table.selectRow(2)
    assert set(gutter.bonds) == stored_bonds(project, window.trace_id)


def test_visible_arcs_match_sqlite_and_toggles_remove_a_type(qtbot, project, open_window) -> None:
    window = open_window(project)
    gutter, view = window.bond_gutter, window.trace_view
    view.go_to(30)
    qtbot.waitUntil(lambda: bool(gutter.arcs()))
    arcs = arc_keys(gutter)
    assert arcs == expected_arcs(gutter, project, window.trace_id)
    assert {"hydrogen", "vdw"} <= {t for _, _, t in arcs}
    assert "covalent" not in {t for _, _, t in arcs}  # hidden by default

    window.bond_actions["hydrogen"].trigger()
    assert not window.bond_actions["hydrogen"].isChecked()
    assert "hydrogen" not in {t for _, _, t in arc_keys(gutter)}
    assert arc_keys(gutter) == expected_arcs(gutter, project, window.trace_id)

    window.bond_actions["covalent"].trigger()
    assert "covalent" in {t for _, _, t in arc_keys(gutter)}
    assert arc_keys(gutter) == expected_arcs(gutter, project, window.trace_id)

    window.others_action.trigger()  # the demo's bonds are all the model's
    assert gutter.arcs() == []


def test_picking_a_target_adds_my_arc_and_undo_removes_it(qtbot, project, open_window) -> None:
    window = open_window(project)
    view, gutter = window.trace_view, window.bond_gutter
    view.go_to(11)
    qtbot.keyClick(view, "r")
    target = window.picker.list.item(0).data(Qt.ItemDataRole.UserRole)
    qtbot.keyClick(window.picker.list, Qt.Key.Key_Return)
    mine = TraceBond(11, target, "hydrogen", True)
    assert mine in gutter.bonds
    assert set(gutter.bonds) == stored_bonds(project, window.trace_id)
    view.go_to(11)
    assert mine in {arc.bond for arc in gutter.arcs()}

    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert mine not in gutter.bonds
    assert set(gutter.bonds) == stored_bonds(project, window.trace_id)


def test_clicking_an_arc_end_goes_to_its_target(qtbot, project, open_window) -> None:
    window = open_window(project)
    view, gutter = window.trace_view, window.bond_gutter
    step = view.step_model.steps[12]
    target_id = view.step_model.steps[3].step_id
    labeling.set_bond(window.store, step.step_id, target_id, "hydrogen", ANNOTATOR)
    window.shown.reload_bonds()
    view.go_to(12)
    (arc,) = [arc for arc in gutter.arcs() if arc.bond.mine]
    assert (arc.bond.source, arc.bond.target) == (12, 3)
    qtbot.mouseClick(gutter, Qt.MouseButton.LeftButton, pos=QPoint(gutter.end_x(), arc.y_source))
    assert view.current_row() == 3
    assert window.focusWidget() is view  # keys keep labeling after a click

    view.go_to(14)  # the arc still crosses the viewport; its apex is a target too
    (arc,) = [arc for arc in gutter.arcs() if arc.bond.mine]
    apex = gutter._path(arc).pointAtPercent(0.5).toPoint()
    assert apex.x() < gutter.end_x() - 2 * gutter.HIT  # well away from the ends
    qtbot.mouseClick(gutter, Qt.MouseButton.LeftButton, pos=apex)
    assert view.current_row() == 3
    window.others_action.trigger()  # the model's long arcs reach the gutter's far side
    qtbot.mouseClick(gutter, Qt.MouseButton.LeftButton, pos=QPoint(2, apex.y() - 200))
    assert view.current_row() == 3  # a click beside every arc changes nothing


def test_clicking_the_minimap_selects_the_step_at_that_fraction(
    qtbot, project, open_window
) -> None:
    window = open_window(project)
    minimap, view = window.minimap, window.trace_view
    n = view.step_model.rowCount()
    assert n > 50
    for fraction in (0.5, 0.9, 0.1):
        y = int(fraction * minimap.height())
        qtbot.mouseClick(minimap, Qt.MouseButton.LeftButton, pos=QPoint(minimap.width() // 2, y))
        assert view.current_row() == min(n - 1, y * n // minimap.height())
        assert abs(view.current_row() - fraction * n) <= 1
        assert view.visualRect(view.currentIndex()).intersects(view.viewport().rect())


def test_minimap_cells_show_labels_solid_and_hints_faint(qtbot, project, open_window) -> None:
    window = open_window(project)
    minimap, view = window.minimap, window.trace_view
    suggestion = view.step_model.steps[0].suggestion
    assert suggestion is not None
    assert minimap.image.height() == view.step_model.rowCount()
    assert minimap.image.pixelColor(0, 0).alpha() < 255
    qtbot.keyClick(view, "2")
    color = minimap.image.pixelColor(0, 0)
    assert color.alpha() == 255
    assert color.name() == "#1e88e5"  # D


def test_legend_names_the_behaviors_with_their_keys(project, open_window) -> None:
    window = open_window(project)
    text = window.legend.text()
    for behavior, name, key in (
        ("N", "normal", "1/n"),
        ("D", "deep", "2/d"),
        ("R", "reflection", "3/r"),
        ("E", "exploration", "4/e"),
    ):
        assert f"<b>{behavior}</b>&nbsp;{name}" in text
        assert f"[{key}]" in text


def test_trace_names_elide_at_the_end_with_a_full_tooltip(project, open_window) -> None:
    window = open_window(project)
    table = window.trace_table
    assert table.textElideMode() == Qt.TextElideMode.ElideRight  # issue 19: was ElideMiddle
    index = window.trace_model.index(0, 0)
    assert index.data() in index.data(Qt.ItemDataRole.ToolTipRole)
    assert table.columnWidth(0) > max(table.columnWidth(c) for c in range(1, 5))
