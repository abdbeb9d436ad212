"""Structure statistics (services/structure.py) on real projects and on the Fig. 5 graphs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from bondscope.cli import cli
from bondscope.plugin_manager import Plugins
from bondscope.services.compression import compression, pair_by_question
from bondscope.services.importing import import_paths
from bondscope.services.labeling import set_label
from bondscope.services.structure import (
    LabeledSelection,
    Selection,
    SelectionError,
    bootstrap_r,
    compare,
    groups,
    mixing_check,
    pearson,
    presets,
    stationary,
    trace_transition_counts,
    transition_counts,
    transition_matrix,
    verdict,
    weighted_js,
)
from bondscope.store import Store
from click.testing import CliRunner

from tests.helpers import write_jsonl

# Trace a: N N D R E N            -> N>N, N>D, D>R, R>E, E>N
# Trace b: E R _ N (step 2 unlabeled, so R and N are not joined) -> E>R
EXPECTED_COUNTS = np.array(
    [
        [1, 1, 0, 0],
        [0, 0, 1, 0],
        [0, 0, 0, 1],
        [1, 0, 1, 0],
    ]
)
EXPECTED_P = np.array(
    [
        [0.5, 0.5, 0, 0],
        [0, 0, 1, 0],
        [0, 0, 0, 1],
        [0.5, 0, 0.5, 0],
    ]
)
# pi P = pi gives pi_N = pi_E = pi_R = 2 pi_D, so pi = (2, 1, 2, 2) / 7.
EXPECTED_PI = np.array([2, 1, 2, 2]) / 7
PAPER_PI = {
    "deepseek-r1-0528": [0.594, 0.116, 0.073, 0.218],
    "gpt-oss-120b": [0.587, 0.129, 0.060, 0.223],
    "qwq-32b": [0.592, 0.064, 0.150, 0.194],
}


def trace_record(
    name: str, model: str, behaviors: list[str | None], annotator: str = "alice"
) -> dict:
    """A bondscope-jsonl record with one paragraph per step; None leaves a step unlabeled."""
    paragraphs = [f"Paragraph {i} of trace {name}." for i in range(len(behaviors))]
    steps, start = [], 0
    for paragraph in paragraphs:
        steps.append({"start": start, "end": start + len(paragraph)})
        start += len(paragraph) + 2
    labels = [
        {"step": i, "behavior": b, "annotator": annotator, "confidence": None}
        for i, b in enumerate(behaviors)
        if b is not None
    ]
    return {
        "format": "bondscope-jsonl/1",
        "id": name,
        "source": "unit",
        "model": model,
        "text": "\n\n".join(paragraphs),
        "steps": steps,
        "labels": labels,
    }


def build_project(tmp_path: Path) -> Path:
    """Two traces labeled by alice (run 1); then a keyword model labels trace a too (run 2)."""
    db = tmp_path / "p.db"
    first = write_jsonl(
        tmp_path / "a.jsonl",
        [
            trace_record("a", "mA", ["N", "N", "D", "R", "E", "N"]),
            trace_record("b", "mB", ["E", "R", None, "N"]),
        ],
    )
    second = write_jsonl(
        tmp_path / "b.jsonl",
        [trace_record("a", "mA", ["E", "E", "E", "E", "E", "E"], annotator="model:kw@1")],
    )
    plugins = Plugins(load_entry_points=False)
    with Store(db) as store:
        import_paths(store, plugins, [first])
        import_paths(store, plugins, [second])
    return db


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return build_project(tmp_path)


def test_counts_match_the_hand_computed_corpus(project):
    with Store(project) as store:
        counts = transition_counts(store, Selection(annotator="alice"))
    assert counts.transitions.tolist() == EXPECTED_COUNTS.tolist()
    assert counts.behaviors.tolist() == [4, 1, 2, 2]  # N D R E over the 9 labeled steps
    assert counts.traces == 2
    P = transition_matrix(counts.transitions)
    np.testing.assert_allclose(P, EXPECTED_P)
    np.testing.assert_allclose(stationary(P), EXPECTED_PI)


def test_filters_by_model_and_by_run(project):
    with Store(project) as store:
        only_b = transition_counts(store, Selection(model="mB", annotator="alice"))
        assert only_b.transitions.sum() == 1 and only_b.transitions[3, 2] == 1
        assert only_b.behaviors.tolist() == [1, 0, 1, 1]
        # run 2 wrote only the keyword model's labels, so the annotator resolves by itself
        second_run = LabeledSelection(store, Selection(run=2))
        assert second_run.selection.annotator == "model:kw@1"
        assert second_run.transition_counts()[3, 3] == 5
        assert second_run.traces == 1


def test_per_trace_counts_add_up_to_the_pooled_counts(project):
    with Store(project) as store:
        ids, per_trace = trace_transition_counts(store, Selection(annotator="alice"))
    assert len(ids) == 2 and per_trace.shape == (2, 4, 4)
    assert per_trace.sum(axis=0).tolist() == EXPECTED_COUNTS.tolist()
    assert per_trace[1].sum() == 1  # trace b: only E -> R


def test_several_annotators_need_a_choice(project):
    with Store(project) as store, pytest.raises(SelectionError) as caught:
        transition_counts(store, Selection())
    message = str(caught.value)
    assert "alice (9 labels)" in message and "model:kw@1 (6 labels)" in message
    assert "--annotator" in message


def test_nothing_selected_is_an_error(project):
    with Store(project) as store, pytest.raises(SelectionError, match="no labels match"):
        transition_counts(store, Selection(model="nobody"))


def test_groups_split_the_selection(project):
    with Store(project) as store:
        by_model = groups(store, Selection(annotator="alice"), "model")
        by_annotator = groups(store, Selection(), "annotator")
    assert [g.model for g in by_model] == ["mA", "mB"]
    assert [g.annotator for g in by_annotator] == ["alice", "model:kw@1"]


def test_smoothing_adds_alpha_to_every_cell():
    counts = np.array([[2, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1], [0, 0, 0, 4]])
    assert transition_matrix(counts)[1].tolist() == [0, 0, 0, 0]  # never left: stays zero
    P = transition_matrix(counts, alpha=1.0)
    np.testing.assert_allclose(P[0], [3 / 6, 1 / 6, 1 / 6, 1 / 6])
    np.testing.assert_allclose(P[1], [0.25] * 4)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)


def test_stationary_is_none_when_a_behavior_is_never_left(tmp_path):
    db = tmp_path / "p.db"
    data = write_jsonl(tmp_path / "t.jsonl", [trace_record("a", "m", ["N", "N", "D"])])
    with Store(db) as store:
        import_paths(store, Plugins(load_entry_points=False), [data])
        labeled = LabeledSelection(store, Selection())
        assert labeled.selection.annotator == "alice"
        assert labeled.stationary() is None


def test_mixing_check_warns_when_pooled_models_disagree(project):
    with Store(project) as store:
        warnings = mixing_check(store, Selection(annotator="alice"))
        assert len(warnings) == 1
        assert "r('mA', 'mB')" in warnings[0] and "--by model" in warnings[0]
        assert mixing_check(store, Selection(annotator="alice", model="mA")) == []


def test_presets_reproduce_the_papers_stationary_distributions():
    found = presets()
    assert set(found) == set(PAPER_PI)
    for preset_id, expected in PAPER_PI.items():
        np.testing.assert_allclose(stationary(found[preset_id].P), expected, atol=0.005)
        np.testing.assert_allclose(found[preset_id].P.sum(axis=1), 1.0)


@pytest.mark.parametrize(
    ("a", "b", "r", "expected_verdict"),
    [
        ("deepseek-r1-0528", "gpt-oss-120b", 0.981, "compatible"),
        ("deepseek-r1-0528", "qwq-32b", 0.911, "compatible"),
        ("gpt-oss-120b", "qwq-32b", 0.897, "borderline"),
    ],
)
def test_presets_reproduce_the_papers_correlations(a, b, r, expected_verdict):
    found = presets()
    assert pearson(found[a].P, found[b].P) == pytest.approx(r, abs=0.005)
    result = compare(found[a].P, found[b].P)
    assert result["verdict"] == expected_verdict
    assert 0 < result["weighted_js_bits"] < 0.1
    assert 0 < result["pi_l1"] < 0.2


def test_weighted_js_in_bits():
    P1 = np.eye(4)
    P2 = np.roll(np.eye(4), 1, axis=1)  # every row moved to a disjoint behavior: JS = 1 bit
    assert weighted_js(P1, P1, np.full(4, 0.25)) == 0
    assert weighted_js(P1, P2, np.full(4, 0.25)) == pytest.approx(1.0)
    P3 = P1.copy()
    P3[1] = [0, 0.5, 0.5, 0]  # only row D changes: JS([0,1,0,0], [0,.5,.5,0])
    js_d = 0.5 * np.log2(4 / 3) + 0.25 * (np.log2(2 / 3) + 1)
    assert weighted_js(P1, P3, np.array([0.1, 0.4, 0.2, 0.3])) == pytest.approx(0.4 * js_d)


def test_verdict_thresholds():
    assert [verdict(r) for r in (0.95, 0.9, 0.85, 0.8, 0.79)] == [
        "compatible",
        "compatible",
        "borderline",
        "borderline",
        "incompatible",
    ]


def test_bootstrap_stability_curve():
    rng = np.random.default_rng(1)
    P = presets()["qwq-32b"].P
    per_trace = np.stack([rng.multinomial(12, row, size=800) for row in P], axis=1)  # (800, 4, 4)
    curve = bootstrap_r(per_trace, [10, 100, 800, 5000], repeats=50)
    assert curve.sizes.tolist() == [10, 100, 800]  # 5000 > 800 traces: dropped
    assert curve.mean.shape == curve.sd.shape == (3,)
    assert curve.mean[0] < curve.mean[1] < curve.mean[2] <= 1
    assert curve.mean[2] > 0.99 and curve.sd[2] < curve.sd[0]
    again = bootstrap_r(per_trace, [10, 100, 800, 5000], repeats=50)
    assert again.mean.tolist() == curve.mean.tolist()  # seeded: reproducible


def view_counts(store: Store, annotator: str, run: int | None = None) -> np.ndarray:
    """The reference: adjacent pairs read row by row from the `current_labels` view."""
    rows = store.conn.execute(
        "SELECT trace_id, step, behavior FROM current_labels l WHERE annotator = ?"
        + ("" if run is None else " AND event_id IN (SELECT id FROM label_events WHERE run_id = ?)")
        + " ORDER BY trace_id, step",
        (annotator,) if run is None else (annotator, run),
    ).fetchall()
    counts = np.zeros((4, 4), dtype=np.int64)
    for (t1, s1, b1), (t2, s2, b2) in zip(rows, rows[1:], strict=False):
        if t1 == t2 and s2 == s1 + 1:
            counts["NDRE".index(b1), "NDRE".index(b2)] += 1
    return counts


def test_latest_event_wins_and_a_cleared_label_breaks_the_chain(project):
    with Store(project) as store:
        steps = [step_id for step_id, _ in store.active_steps(store.trace_ids(names=["a"])[0])]
        set_label(store, steps[0], "alice", "R")  # a: R N D R E N
        set_label(store, steps[2], "alice", "E")
        set_label(store, steps[2], "alice", "D")  # relabeled back: the last event wins
        set_label(store, steps[4], "alice", None)  # cleared: a is R N D R _ N
        counts = transition_counts(store, Selection(annotator="alice"))
        # R>N, N>D, D>R in a; E>R in b
        assert counts.transitions.tolist() == [
            [0, 1, 0, 0],
            [0, 0, 1, 0],
            [1, 0, 0, 0],
            [0, 0, 1, 0],
        ]
        assert counts.behaviors.tolist() == [3, 1, 3, 1]
        assert counts.transitions.tolist() == view_counts(store, "alice").tolist()
        # run 1 (the import) keeps only labels whose current event it wrote: a1, a3, a5 and b
        in_run = transition_counts(store, Selection(annotator="alice", run=1))
        assert in_run.transitions.tolist() == view_counts(store, "alice", run=1).tolist()
        assert in_run.behaviors.tolist() == [3, 0, 2, 1]  # N: a1 a5 b3; R: a3 b1; E: b0


def test_stability_command(project):
    result = CliRunner().invoke(
        cli,
        ["metrics", "stability", "--db", str(project), "--annotator", "alice"]
        + ["--sizes", "1,2,50", "--repeats", "20", "--json"],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["traces"], data["dropped"]) == (2, [50])
    assert [point["n"] for point in data["curve"]] == [1, 2]
    assert all(-1 <= point["mean_r"] <= 1 for point in data["curve"])
    bad = CliRunner().invoke(cli, ["metrics", "stability", "--db", str(project), "--sizes", "x"])
    assert bad.exit_code == 2 and "expected numbers" in bad.output


def compressed_project(tmp_path: Path) -> Path:
    """Two originals (source full) and their summaries (source summary), paired by question.

    Every paragraph is 'Paragraph i of trace NAME.': 5 whitespace tokens per step.
    """
    records = [
        trace_record("o1", "m", ["N", "N", "D", "R", "E", "N"]) | {"question": "q1"},
        trace_record("o2", "m", ["N", "E", "R", "N"]) | {"question": "q2"},
        trace_record("c1", "m", ["N", "D", "N"]) | {"question": "q1", "source": "summary"},
        trace_record("c2", "m", ["N"]) | {"question": "q2", "source": "summary"},
        trace_record("c3", "m", ["N"]) | {"question": "q9", "source": "summary"},
    ]
    db = tmp_path / "c.db"
    with Store(db) as store:
        import_paths(
            store, Plugins(load_entry_points=False), [write_jsonl(tmp_path / "c.jsonl", records)]
        )
    return db


def test_compression_shift_by_hand(tmp_path):
    db = compressed_project(tmp_path)
    with Store(db) as store:
        pairs, unpaired = pair_by_question(store, "summary")
        assert unpaired == ["c3 (0 originals with its question)"]
        result = compression(store, pairs, alpha=1.0)
        with pytest.raises(SelectionError, match="no transition out of"):
            compression(store, pairs, alpha=0.0)
    assert [(p["original"], p["compressed"]) for p in result["pairs"]] == [
        ("o1", "c1"),
        ("o2", "c2"),
    ]
    assert [p["tokens"] for p in result["pairs"]] == [[30, 15], [20, 5]]
    assert result["token_reduction"] == pytest.approx(1 - 20 / 50)
    assert result["mean_pair_token_reduction"] == pytest.approx((0.5 + 0.75) / 2)
    # originals N5 D1 R2 E2 of 10; summaries N3 D1 of 4
    np.testing.assert_allclose(result["distribution"], [[0.5, 0.1, 0.2, 0.2], [0.75, 0.25, 0, 0]])
    assert result["distribution_l1"] == pytest.approx(0.25 + 0.15 + 0.2 + 0.2)
    assert result["long_range_share"] == pytest.approx([0.4, 0.0])
    # originals: NN ND DR RE EN | NE ER RN; summaries: ND DN
    counts_o = np.array([[1, 1, 0, 1], [0, 0, 1, 0], [1, 0, 0, 1], [1, 0, 1, 0]])
    counts_c = np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    P_o, P_c = (
        (counts_o + 1) / (counts_o.sum(1, keepdims=True) + 4),
        (counts_c + 1) / (counts_c.sum(1, keepdims=True) + 4),
    )
    assert result["transitions"] == [8, 2]
    assert result["pearson_r"] == pytest.approx(np.corrcoef(P_o.ravel(), P_c.ravel())[0, 1])
    pi_o = np.array([0.5, 0.1, 0.2, 0.2])
    assert result["weighted_js_bits"] == pytest.approx(weighted_js(P_o, P_c, pi_o))


def test_compression_command(tmp_path):
    db = compressed_project(tmp_path)
    runner = CliRunner()
    by_question = runner.invoke(
        cli, ["metrics", "compression", "--db", str(db), "--compressed-source", "summary"]
    )
    assert by_question.exit_code == 0, by_question.output
    assert "token reduction (pooled): 0.6" in by_question.output
    assert "unpaired: c3" in by_question.output
    explicit = runner.invoke(
        cli, ["metrics", "compression", "--db", str(db), "--pair", "o1:c1", "--json"]
    )
    assert explicit.exit_code == 0, explicit.output
    assert json.loads(explicit.output)["token_reduction"] == pytest.approx(0.5)
    neither = runner.invoke(cli, ["metrics", "compression", "--db", str(db)])
    assert neither.exit_code == 2 and "--pair" in neither.output
