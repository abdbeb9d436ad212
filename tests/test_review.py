"""Active learning: the uncertainty queue, the precision estimate, and accepting suggestions."""

import pytest
from bondscope.plugin_manager import Plugins
from bondscope.services.importing import import_paths
from bondscope.services.review import (
    accept_suggestions,
    estimate_precision,
    uncertain_steps,
    wilson_interval,
)
from bondscope.store import Store

from tests.helpers import record, write_jsonl

MODEL = "model:kw@1"


def project(tmp_path):
    """Two traces of three steps; the model suggests every step, alice checked two of them."""
    labels = [
        {"step": 0, "behavior": "N", "annotator": MODEL, "confidence": 0.9},
        {"step": 1, "behavior": "R", "annotator": MODEL, "confidence": 0.4},
        {"step": 2, "behavior": "D", "annotator": MODEL, "confidence": 0.7},
    ]
    first = record(
        id="a",
        labels=[*labels, {"step": 0, "behavior": "N", "annotator": "alice", "confidence": None}],
        bonds=[],
    )
    second = record(
        id="b",
        text=first["text"] + " ",
        labels=[
            {**labels[0], "confidence": 0.95},
            {**labels[1], "confidence": 0.2},
            {**labels[2], "confidence": 0.8},
            {"step": 2, "behavior": "E", "annotator": "alice", "confidence": None},
        ],
        bonds=[],
    )
    path = write_jsonl(tmp_path / "t.jsonl", [first, second])
    db = tmp_path / "p.db"
    with Store(db) as store:
        import_paths(store, Plugins(load_entry_points=False), [path])
    return db


def test_queue_puts_the_least_confident_unchecked_steps_first(tmp_path):
    with Store(project(tmp_path)) as store:
        queue = uncertain_steps(store, MODEL, "alice")
    assert [(q.trace, q.step, q.suggestion, q.confidence) for q in queue] == [
        ("b", 1, "R", 0.2),
        ("a", 1, "R", 0.4),
        ("a", 2, "D", 0.7),
        ("b", 0, "N", 0.95),
    ]


def test_precision_on_checked_steps_and_what_would_be_accepted(tmp_path):
    with Store(project(tmp_path)) as store:
        high = estimate_precision(store, MODEL, "alice", 0.85)
        assert (high.checked, high.correct, high.precision, high.to_accept) == (1, 1, 1.0, 1)
        low = estimate_precision(store, MODEL, "alice", 0.5)
        assert (low.checked, low.correct, low.precision, low.to_accept) == (2, 1, 0.5, 2)
        assert low.low < 0.5 < low.high
        nothing = estimate_precision(store, MODEL, "bob", 0.5)
        assert (nothing.checked, nothing.precision, nothing.to_accept) == (0, None, 4)


def test_accepting_copies_suggestions_in_one_run(tmp_path):
    with Store(project(tmp_path)) as store:
        assert accept_suggestions(store, MODEL, "alice", 0.75) == 1  # only b/0 (0.95) is unchecked
        rows = store.conn.execute(
            "SELECT t.name, c.step, c.behavior FROM current_labels c "
            "JOIN traces t ON t.id = c.trace_id WHERE annotator = 'alice' ORDER BY 1, 2"
        ).fetchall()
        assert rows == [("a", 0, "N"), ("b", 0, "N"), ("b", 2, "E")]
        kind, summary = store.conn.execute(
            "SELECT kind, summary FROM runs ORDER BY id DESC LIMIT 1"
        ).fetchone()
        assert kind == "accept" and '"accepted": 1' in summary
        assert accept_suggestions(store, MODEL, "alice", 0.75) == 0  # nothing left to accept


def test_wilson_interval():
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4)
    assert high == pytest.approx(0.9433, abs=1e-4)
    assert wilson_interval(0, 5)[0] == 0.0


def test_review_command(tmp_path):
    import json

    from bondscope.cli import cli
    from click.testing import CliRunner

    db = project(tmp_path)
    args = [
        "review",
        "--db",
        str(db),
        "--suggestions-from",
        MODEL,
        "--person",
        "alice",
        "--threshold",
        "0.5",
    ]
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["estimate"]["precision"] == 0.5 and data["accepted"] == 0
    assert [q["confidence"] for q in data["queue"]] == [0.2, 0.4, 0.7, 0.95]
    result = CliRunner().invoke(cli, [*args, "--accept"])
    assert "accepted 2 suggestions as alice's labels" in result.output


def test_queue_and_estimate_follow_the_newest_events_like_the_views(tmp_path):
    """Relabels, cleared labels and retired steps: the indexed queries agree with current_labels
    (the definition of "current"), which the old queries read directly."""
    from bondscope.services import labeling

    with Store(project(tmp_path)) as store:
        a = [step_id for step_id, _ in store.active_steps(1)]
        b = [step_id for step_id, _ in store.active_steps(2)]
        with store.transaction():
            model = store.annotator_id(MODEL)
            store.conn.execute(  # the model changes its mind on a/1 (newest event wins)
                "INSERT INTO label_events (step_id, annotator_id, behavior, confidence,"
                " created_at) VALUES (?, ?, 'E', 0.99, '2000-01-01')",
                (a[1], model),
            )
            store.conn.execute(  # ... and withdraws b/2
                "INSERT INTO label_events (step_id, annotator_id, behavior, created_at)"
                " VALUES (?, ?, NULL, '2000-01-01')",
                (b[2], model),
            )
            run = store.start_run("segment", {})
            store.conn.execute("UPDATE steps SET retired_run_id = ? WHERE id = ?", (run, b[1]))
        labeling.set_label(store, a[0], "alice", None)  # alice clears a/0: unchecked again
        labeling.set_label(store, a[2], "alice", "D")
        view = store.conn.execute(
            "SELECT m.step_id, m.confidence, p.behavior FROM current_labels m LEFT JOIN"
            " current_labels p ON p.step_id = m.step_id AND p.annotator = 'alice'"
            " WHERE m.annotator = ? AND m.confidence IS NOT NULL ORDER BY m.confidence",
            (MODEL,),
        ).fetchall()
        queue = uncertain_steps(store, MODEL, "alice")
        assert [q.step_id for q in queue] == [s for s, _, person in view if person is None]
        assert [(q.trace, q.step, q.confidence) for q in queue] == [
            ("a", 0, 0.9),
            ("b", 0, 0.95),
            ("a", 1, 0.99),
        ]
        estimate = estimate_precision(store, MODEL, "alice", 0.5)
        checked = [(s, person) for s, c, person in view if person is not None and c >= 0.5]
        assert (estimate.checked, estimate.correct, estimate.to_accept) == (len(checked), 1, 3)


def test_an_unknown_model_is_an_error_that_names_the_known_ones(tmp_path):
    from bondscope.cli import cli
    from click.testing import CliRunner

    db = project(tmp_path)
    with Store(db) as store, pytest.raises(LookupError, match="model:kw@1"):
        uncertain_steps(store, "model:kw", "alice")
    args = ["review", "--db", str(db), "--suggestions-from", "model:kw", "--person", "alice"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: no model annotator 'model:kw'; known: model:kw@1"
    ]


def test_accepted_suggestions_do_not_count_as_checked(tmp_path):
    """Right after an accept, the estimate still rests on the steps the person labeled, and a
    later hand correction of an accepted step counts again."""
    with Store(project(tmp_path)) as store:
        before = estimate_precision(store, MODEL, "alice", 0.5)
        assert accept_suggestions(store, MODEL, "alice", 0.5) == 2  # a/2 (0.7), b/0 (0.95)
        after = estimate_precision(store, MODEL, "alice", 0.5)
        assert (after.checked, after.correct, after.precision) == (2, 1, 0.5)
        assert (after.checked, after.precision) == (before.checked, before.precision)
        assert after.to_accept == 0
        from bondscope.services.labeling import set_label

        step_id = store.conn.execute(
            "SELECT c.step_id FROM current_labels c JOIN traces t ON t.id = c.trace_id "
            "WHERE t.name = 'a' AND c.step = 2 AND c.annotator = 'alice'"
        ).fetchone()[0]
        set_label(store, step_id, "alice", "N")
        corrected = estimate_precision(store, MODEL, "alice", 0.5)
        assert (corrected.checked, corrected.correct) == (3, 1)
