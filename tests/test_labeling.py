"""The labeling service without Qt: events, undo/redo from the event log, target hints."""

from __future__ import annotations

from pathlib import Path

import pytest
from bondscope.services import labeling, trace_list
from bondscope.services.demo import DEMO_ANNOTATOR, ensure_demo_project
from bondscope.store import Store

ME = "alice"


@pytest.fixture
def store(tmp_path: Path):
    path = ensure_demo_project(tmp_path / "demo.bondscope")
    with Store(path) as opened:
        yield opened


def steps_of(store: Store, trace: int = 1) -> list[int]:
    return [step_id for step_id, _ in store.active_steps(trace)]


def mine(store: Store) -> dict[int, str]:
    return dict(
        store.conn.execute(
            "SELECT step_id, behavior FROM current_labels WHERE annotator = ?", (ME,)
        ).fetchall()
    )


def bonds(store: Store) -> set[tuple[int, int, str]]:
    return set(
        store.conn.execute(
            "SELECT from_step_id, to_step_id, type FROM current_bonds WHERE annotator = ?", (ME,)
        ).fetchall()
    )


def test_set_label_appends_one_event_with_seconds(store: Store) -> None:
    s = steps_of(store)
    first = labeling.set_label(store, s[0], ME, "N", seconds=1.5)
    second = labeling.set_label(store, s[0], ME, "D")
    assert second > first
    assert mine(store) == {s[0]: "D"}
    row = store.conn.execute(
        "SELECT seconds, reverts, run_id FROM label_events WHERE id = ?", (first,)
    ).fetchone()
    assert row == (1.5, None, None)
    with pytest.raises(ValueError):
        labeling.set_label(store, s[0], ME, "X")


def test_undo_redo_interleaves_labels_and_bonds(store: Store) -> None:
    s = steps_of(store)
    labeling.set_label(store, s[0], ME, "N")
    labeling.set_label(store, s[5], ME, "R")
    labeling.set_bond(store, s[5], s[1], "hydrogen", ME)
    labeling.set_label(store, s[0], ME, "D")

    assert labeling.undo(store, ME).step_id == s[0]
    assert mine(store) == {s[0]: "N", s[5]: "R"}
    change = labeling.undo(store, ME)
    assert change.table == "bond_events" and change.step_id == s[5]
    assert bonds(store) == set()
    labeling.undo(store, ME)
    labeling.undo(store, ME)
    assert mine(store) == {}
    assert labeling.undo(store, ME) is None

    labeling.redo(store, ME)
    labeling.redo(store, ME)
    labeling.redo(store, ME)
    assert mine(store) == {s[0]: "N", s[5]: "R"}
    assert bonds(store) == {(s[5], s[1], "hydrogen")}
    labeling.redo(store, ME)
    assert mine(store) == {s[0]: "D", s[5]: "R"}
    assert labeling.redo(store, ME) is None
    reverts = store.conn.execute(
        "SELECT COUNT(*) FROM label_events WHERE reverts IS NOT NULL"
    ).fetchone()[0]
    assert reverts == 6  # 3 label undos + 3 label redos, all appended


def test_new_action_clears_redo_and_history_survives_reopen(tmp_path: Path) -> None:
    path = ensure_demo_project(tmp_path / "demo.bondscope")
    with Store(path) as store:
        s = steps_of(store)
        first = labeling.set_label(store, s[0], ME, "N")
        labeling.set_label(store, s[1], ME, "E")
        undone = labeling.undo(store, ME).event_id
    with Store(path) as store:
        assert labeling.history(store, ME) == (
            [("label_events", first)],
            [("label_events", undone)],
        )
        labeling.redo(store, ME)
        assert mine(store) == {s[0]: "N", s[1]: "E"}
        labeling.undo(store, ME)
        labeling.set_label(store, s[2], ME, "D")  # a new action forgets the undone one
        assert labeling.redo(store, ME) is None
        labeling.undo(store, ME)
        labeling.undo(store, ME)
        assert mine(store) == {}


def test_imported_labels_are_the_baseline_not_undoable(store: Store) -> None:
    s = steps_of(store)
    before = store.conn.execute(
        "SELECT behavior FROM current_labels WHERE step_id = ? AND annotator = ?",
        (s[0], DEMO_ANNOTATOR),
    ).fetchone()[0]
    labeling.set_label(store, s[0], DEMO_ANNOTATOR, "E")
    labeling.undo(store, DEMO_ANNOTATOR)
    after = store.conn.execute(
        "SELECT behavior FROM current_labels WHERE step_id = ? AND annotator = ?",
        (s[0], DEMO_ANNOTATOR),
    ).fetchone()[0]
    assert after == before
    assert labeling.undo(store, DEMO_ANNOTATOR) is None


def test_undo_of_remove_bond_restores_it(store: Store) -> None:
    s = steps_of(store)
    labeling.set_bond(store, s[9], s[2], "hydrogen", ME)
    labeling.remove_bond(store, s[9], s[2], "hydrogen", ME)
    assert bonds(store) == set()
    labeling.undo(store, ME)
    assert bonds(store) == {(s[9], s[2], "hydrogen")}
    with pytest.raises(ValueError):
        labeling.set_bond(store, s[9], s[2], "ionic", ME)


def test_events_are_ordered_even_within_one_millisecond(store: Store) -> None:
    s = steps_of(store)
    for i in range(20):
        labeling.set_label(store, s[i], ME, "N")
        labeling.set_bond(store, s[i + 2], s[i], "hydrogen", ME)
    stamps = [
        r[0]
        for r in store.conn.execute(
            "SELECT created_at FROM label_events WHERE run_id IS NULL UNION ALL "
            "SELECT created_at FROM bond_events WHERE run_id IS NULL ORDER BY 1"
        )
    ]
    assert len(set(stamps)) == 40


def test_load_steps_has_my_label_the_model_hint_and_my_targets(store: Store) -> None:
    s = steps_of(store)
    labeling.set_label(store, s[11], ME, "R")
    labeling.set_bond(store, s[11], s[3], "hydrogen", ME)
    states = labeling.load_steps(store, 1, ME)
    assert len(states) == len(s)
    assert all(state.suggestion is not None for state in states)  # the demo is pre-labeled
    assert states[11].label == "R" and states[11].targets == [3]
    assert states[0].label is None and states[0].targets == []
    (one,) = labeling.load_steps(store, 1, ME, step_id=s[11])
    assert one == states[11]
    rows = trace_list.trace_rows(store, ME)
    assert [(r.steps, r.labeled) for r in rows][0] == (len(s), 1)
    assert labeling.step_location(store, s[11]) == (1, 11)


def test_suggest_targets_ranks_overlapping_earlier_steps() -> None:
    texts = [
        "Let x be the number of apples.",
        "Compute the area of the circle with radius 3.",
        "The area is 9 pi.",
        "Now add the apples: x plus 4.",
        "Something unrelated.",
        "Wait, let me check the area of the circle again.",
    ]
    ranked = labeling.suggest_targets(texts, 5)
    assert [j for j, _ in ranked][0] == 1
    assert {j for j, _ in ranked} == {0, 1, 2, 3}  # never t - 1 or later
    assert ranked == sorted(ranked, key=lambda r: -r[1])
    assert labeling.suggest_targets(texts, 1) == []
    assert len(labeling.suggest_targets(texts, 5, limit=2)) == 2


def test_rank_targets_by_embedding_uses_cosine_and_prefers_nearer_ties() -> None:
    import numpy as np

    embeddings = np.array(
        [
            [1.0, 0.0, 0.0],  # 0: the same direction as step 5, twice as long
            [0.0, 1.0, 0.0],  # 1: orthogonal
            [0.5, 0.0, 0.0],  # 2: ties with 0 (cosine 1): the nearer step wins
            [0.6, 0.8, 0.0],  # 3: cosine 0.6
            [1.0, 0.0, 0.0],  # 4: t - 1, never a candidate
            [2.0, 0.0, 0.0],  # 5: the reflection
            [0.0, 0.0, 0.0],  # 6: a zero vector scores 0, not NaN
        ]
    )
    ranked = labeling.rank_targets_by_embedding(embeddings, 5)
    assert [j for j, _ in ranked] == [2, 0, 3, 1]
    assert [round(score, 6) for _, score in ranked] == [1.0, 1.0, 0.6, 0.0]
    assert labeling.rank_targets_by_embedding(embeddings, 1) == []
    assert labeling.rank_targets_by_embedding(embeddings, 5, limit=1) == [(2, 1.0)]
    zero = np.vstack([embeddings[6], embeddings[1], embeddings[0]])
    assert labeling.rank_targets_by_embedding(zero, 2) == [(0, 0.0)]


def test_relabeling_an_r_step_removes_its_bond_in_one_undoable_action(store: Store) -> None:
    s = steps_of(store)
    labeling.set_label(store, s[7], ME, "R")
    labeling.set_bond(store, s[7], s[2], "hydrogen", ME)
    labeling.set_label(store, s[7], ME, "R")  # R again keeps the target
    assert bonds(store) == {(s[7], s[2], "hydrogen")}
    labeling.set_label(store, s[7], ME, "N")
    assert mine(store)[s[7]] == "N" and bonds(store) == set()
    change = labeling.undo(store, ME)  # one undo restores the label and the bond
    assert change.step_id == s[7]
    assert mine(store)[s[7]] == "R" and bonds(store) == {(s[7], s[2], "hydrogen")}
    labeling.redo(store, ME)
    assert mine(store)[s[7]] == "N" and bonds(store) == set()
    labeling.undo(store, ME)
    labeling.set_label(store, s[7], ME, None)  # clearing the label drops the bond too
    assert s[7] not in mine(store) and bonds(store) == set()
    labeling.undo(store, ME)
    assert mine(store)[s[7]] == "R" and bonds(store) == {(s[7], s[2], "hydrogen")}


def test_set_target_retargets_and_removes_as_one_action(store: Store) -> None:
    s = steps_of(store)
    labeling.set_label(store, s[9], ME, "R")
    labeling.set_target(store, s[9], s[2], ME)
    labeling.set_bond(store, s[9], s[4], "hydrogen", ME)
    labeling.set_target(store, s[9], s[5], ME)  # both old targets go, the new one comes
    assert bonds(store) == {(s[9], s[5], "hydrogen")}
    labeling.undo(store, ME)
    assert bonds(store) == {(s[9], s[2], "hydrogen"), (s[9], s[4], "hydrogen")}
    labeling.redo(store, ME)
    labeling.set_target(store, s[9], None, ME)
    assert bonds(store) == set() and mine(store)[s[9]] == "R"
    labeling.undo(store, ME)
    assert bonds(store) == {(s[9], s[5], "hydrogen")}


def test_trace_bonds_are_every_annotators_current_bonds_by_row(store: Store) -> None:
    """What the bond gutter draws: the `current_bonds` view of the trace, mapped to rows, with
    the window's annotator's bonds marked; a step the rows leave out (retired) drops its bonds."""
    s = steps_of(store)
    labeling.set_bond(store, s[5], s[1], "hydrogen", ME)
    labeling.set_bond(store, s[6], s[2], "vdw", ME)
    labeling.remove_bond(store, s[6], s[2], "vdw", ME)
    labeling.set_bond(store, s[7], s[3], "vdw", "bob")
    rows = {step.step_id: row for row, step in enumerate(labeling.load_steps(store, 1, ME))}
    bonds = labeling.trace_bonds(store, 1, ME, rows)
    view = store.conn.execute(
        'SELECT "from", "to", type, annotator FROM current_bonds WHERE trace_id = 1'
    ).fetchall()
    assert len(bonds) == len(set(bonds))
    assert set(bonds) == {labeling.TraceBond(f, t, type_, who == ME) for f, t, type_, who in view}
    assert labeling.TraceBond(5, 1, "hydrogen", True) in bonds
    assert labeling.TraceBond(7, 3, "vdw", False) in bonds
    assert not any(bond.source == 6 and bond.target == 2 for bond in bonds)
    del rows[s[1]]
    assert labeling.TraceBond(5, 1, "hydrogen", True) not in labeling.trace_bonds(
        store, 1, ME, rows
    )
    assert labeling.trace_bonds(store, 1, "nobody", rows) == [
        labeling.TraceBond(b.source, b.target, b.type, False)
        for b in labeling.trace_bonds(store, 1, ME, rows)
    ]


def test_trace_header_is_what_the_window_shows_above_the_steps(store: Store) -> None:
    question, text = store.conn.execute("SELECT question, text FROM traces WHERE id = 2").fetchone()
    header = labeling.trace_header(store, 2)
    assert (header.question, header.text) == (question, text)
    assert header.text and header.question
    steps = labeling.load_steps(store, 2, ME)
    assert steps[-1].end <= len(header.text)  # the steps are spans of this text
