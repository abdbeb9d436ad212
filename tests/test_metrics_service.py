"""services/metrics.py (the Metrics dock's jobs) and structure.corpus_matrix on real projects.

The never-left policy is checked on every path that computes a corpus matrix: the service
refuses, `compare` and the synthesis target refuse with its message, and only the dock's job
smooths, with the fallback it names.
"""

from __future__ import annotations

import csv
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bondscope.cli import cli
from bondscope.plugin_manager import Plugins
from bondscope.progress import Cancelled
from bondscope.services.agreement import agreement
from bondscope.services.geometry import geometry
from bondscope.services.importing import import_paths
from bondscope.services.metrics import (
    FALLBACK_ALPHA,
    REPEATS,
    Scope,
    agreement_csv_rows,
    agreement_job,
    agreement_rows,
    csv_cell,
    fmt,
    geometry_csv_rows,
    geometry_job,
    geometry_rows,
    percent_texts,
    scope_selection,
    stability_csv_rows,
    stability_job,
    stability_rows,
    stability_sizes,
    transition_csv_rows,
    transition_job,
    write_csv,
)
from bondscope.services.structure import (
    Selection,
    SelectionError,
    bootstrap_r,
    compare,
    corpus_matrix,
    never_left,
    preset,
    trace_transition_counts,
    transition_counts,
    transition_matrix,
)
from bondscope.services.synthesis import graph_from_corpus
from bondscope.store import Store
from click.testing import CliRunner
from threadpoolctl import threadpool_limits

from tests.helpers import write_jsonl
from tests.test_geometry import LETTERS, TOPICS
from tests.test_structure import trace_record

MODEL = "model:kw@1"


def topic_record(name: str, paragraphs: list[str], labels: list[str], annotator: str) -> dict:
    """A trace whose steps are real sentences (t-SNE of near-identical texts says little)."""
    record = trace_record(name, "mG", labels, annotator)
    steps, start = [], 0
    for paragraph in paragraphs:
        steps.append({"start": start, "end": start + len(paragraph)})
        start += len(paragraph) + 2
    return record | {"text": "\n\n".join(paragraphs), "steps": steps}


def build(folder: Path, *batches: list[dict[str, Any]]) -> Path:
    folder.mkdir(exist_ok=True)
    db = folder / "p.db"
    plugins = Plugins(load_entry_points=False)
    with Store(db) as store:
        for k, batch in enumerate(batches):
            import_paths(store, plugins, [write_jsonl(folder / f"b{k}.jsonl", batch)])
    return db


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """alice labels a (every behavior left) and b (R and E never left); the model labels a and
    geo (its only labels there) after her, so it is the newest model."""
    return build(
        tmp_path,
        [
            trace_record("a", "mA", ["N", "N", "D", "R", "E", "N"]),
            trace_record("b", "mB", ["N", "D", "N"]),
            topic_record("one", TOPICS[:1], ["N"], "alice"),
        ],
        [
            trace_record("a", "mA", ["N", "N", "D", "E", "E", "N"], annotator=MODEL),
            topic_record("geo", TOPICS, LETTERS, MODEL),
        ],
    )


def trace_id(store: Store, name: str) -> int:
    return store.conn.execute("SELECT id FROM traces WHERE name = ?", (name,)).fetchone()[0]


# -- structure.corpus_matrix: one matrix, one policy ----------------------------------------------


def test_never_left_names_the_zero_rows() -> None:
    counts = np.array([[1, 2, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
    assert never_left(counts) == ["D", "E"]
    assert never_left(np.ones((4, 4))) == []


def test_corpus_matrix_refuses_a_behavior_never_left(project: Path) -> None:
    with Store(project) as store:
        selection = Selection(model="mB", annotator="alice")
        counts = transition_counts(store, selection)
        with pytest.raises(SelectionError) as refused:
            corpus_matrix(store, selection)
        assert str(refused.value.args[0]) == (
            "p.db (model=mB, annotator=alice): no transition out of R, E (zero rows of P); "
            "pass --alpha 0.001 to smooth"
        )
        smoothed = corpus_matrix(store, selection, 0.5)
        assert smoothed.alpha == 0.5
        np.testing.assert_array_equal(smoothed.P, transition_matrix(counts.transitions, 0.5))
        np.testing.assert_allclose(smoothed.P.sum(axis=1), 1.0)
        # The explicit fallback applies only where the policy would refuse
        shown = corpus_matrix(store, selection, fallback_alpha=FALLBACK_ALPHA)
        assert shown.alpha == FALLBACK_ALPHA
        np.testing.assert_array_equal(shown.counts.transitions, counts.transitions)
        np.testing.assert_allclose(shown.P.sum(axis=1), 1.0)
        chosen = corpus_matrix(store, selection, 0.2, fallback_alpha=FALLBACK_ALPHA)
        assert chosen.alpha == 0.2


def test_corpus_matrix_of_a_corpus_that_leaves_every_behavior(project: Path) -> None:
    with Store(project) as store:
        selection = Selection(model="mA", annotator="alice")
        plain = corpus_matrix(store, selection, fallback_alpha=FALLBACK_ALPHA)
        counts = transition_counts(store, selection)
    assert plain.alpha == 0.0 and plain.selection == selection
    np.testing.assert_array_equal(plain.P, transition_matrix(counts.transitions))
    assert plain.counts.traces == 1 and plain.counts.transitions.sum() == 5


def test_compare_and_synthesis_refuse_with_the_policy_message(project: Path) -> None:
    with Store(project) as store:
        selection = Selection(model="mB", annotator="alice")
        with pytest.raises(SelectionError) as refused:
            corpus_matrix(store, selection)
        message = refused.value.args[0]
        with pytest.raises(SelectionError) as walked:
            graph_from_corpus(store, selection)
        assert walked.value.args[0] == message
        graph = graph_from_corpus(store, selection, alpha=0.001)
        np.testing.assert_allclose(graph.P.sum(axis=1), 1.0)
    side = ["--db", str(project), "--model", "mB", "--annotator", "alice"]
    result = CliRunner().invoke(cli, ["compare", *side, "--preset", "qwq-32b"])
    assert result.exit_code == 1 and message in result.stderr
    result = CliRunner().invoke(cli, ["compare", *side, "--preset", "qwq-32b", "--alpha", "0.001"])
    assert result.exit_code == 0, result.output


# -- services/metrics: whose labels ---------------------------------------------------------------


def test_scope_picks_mine_else_the_newest_model_else_the_only_annotator(
    project: Path, tmp_path: Path
) -> None:
    with Store(project) as store:
        assert scope_selection(store, Scope("alice")).annotator == "alice"
        assert scope_selection(store, Scope("carol")).annotator == MODEL
        chosen = scope_selection(store, Scope("carol", annotator="alice", model="mB"))
        assert chosen == Selection(model="mB", annotator="alice")
    colleague = build(tmp_path / "c", [trace_record("x", "mX", ["N", "D"], annotator="bob")])
    with Store(colleague) as store:
        assert scope_selection(store, Scope("carol")).annotator == "bob"


# -- the four jobs -------------------------------------------------------------------------------


def test_transition_job_smooths_only_where_the_policy_refuses(project: Path) -> None:
    with Store(project) as store:
        sparse = transition_job(store, Scope("alice", model="mB"), "qwq-32b", 0.0)
        counts = transition_counts(store, Selection(model="mB", annotator="alice"))
        chosen = transition_job(store, Scope("alice", model="mB"), "qwq-32b", 0.01)
        empty = transition_job(store, Scope("alice", model="none"), "qwq-32b", 0.0)
    assert sparse.alpha == FALLBACK_ALPHA
    P = transition_matrix(counts.transitions, FALLBACK_ALPHA)
    np.testing.assert_array_equal(sparse.P, P)
    assert sparse.comparison == compare(P, preset("qwq-32b").P)
    assert chosen.alpha == 0.01
    assert empty.counts.transitions.sum() == 0 and empty.comparison is None
    rows = transition_csv_rows(sparse)
    assert len(rows) == 32
    assert rows[1] == ["corpus", "N", "D", 1, P[0, 1]]
    assert rows[16][:4] == ["qwq-32b", "N", "N", None]


def test_stability_job_is_bootstrap_r_on_a_ladder(project: Path) -> None:
    assert stability_sizes(0) == [] and stability_sizes(3) == [1, 2, 3]
    assert stability_sizes(7) == [1, 2, 5, 7] and stability_sizes(5000)[-2:] == [2000, 5000]
    with Store(project) as store:
        result = stability_job(store, Scope("alice"))
        ids, per_trace = trace_transition_counts(store, Selection(annotator="alice"))
    assert result.traces == len(ids) == 3 and result.selection.annotator == "alice"
    curve = bootstrap_r(per_trace, [1, 2, 3], repeats=REPEATS, seed=0)
    np.testing.assert_array_equal(result.curve.mean, curve.mean)
    assert stability_rows(result.curve)[0] == ["1", fmt(curve.mean[0]), fmt(curve.sd[0])]
    assert [row[0] for row in stability_csv_rows(result)] == [1, 2, 3]
    assert {row[3] for row in stability_csv_rows(result)} == {REPEATS}


def test_geometry_job_runs_the_service_in_a_child(project: Path) -> None:
    with Store(project) as store:
        geo = trace_id(store, "geo")
        result = geometry_job(store, geo, Scope("alice"), "tfidf")  # alice never labeled geo
        with threadpool_limits(1):  # the child runs with one thread
            expected = geometry(store, "geo", MODEL, "tfidf")
    assert result["annotator"] == MODEL and result["trace_id"] == geo
    np.testing.assert_allclose(result["points"], expected["points"], atol=1e-3)
    assert result["behavior"] == LETTERS
    assert result["texts"][3] == TOPICS[3][:80]
    table = {row[0]: row[1] for row in geometry_rows(result)}
    assert table["D locality"] == fmt(expected["deep_locality"]["fraction"])
    rows = geometry_csv_rows(result)
    assert len(rows) == 10 and rows[0][:2] == [0, "N"] and rows[0][2] == result["points"][0][0]


def test_geometry_job_reports_the_childs_error_and_stops_when_cancelled(project: Path) -> None:
    with Store(project) as store:
        with pytest.raises(SelectionError, match="geometry failed: .*has 1 step"):
            geometry_job(store, trace_id(store, "one"), Scope("alice"), "tfidf")
        cancel = threading.Event()
        cancel.set()
        with pytest.raises(Cancelled):
            geometry_job(store, trace_id(store, "geo"), Scope("alice"), "tfidf", cancel)


def test_agreement_job_and_its_rows(project: Path) -> None:
    with Store(project) as store:
        result = agreement_job(store, Scope("carol", model="mA"))
        assert result == agreement(store, model="mA")
    (pair,) = result["pairs"]
    assert {pair["a"], pair["b"]} == {"alice", MODEL} and pair["steps"] == 6
    assert agreement_rows(result) == [
        [
            pair["a"],
            pair["b"],
            pair["kind"],
            "6",
            fmt(pair["observed"]),
            fmt(pair["cohen_kappa"]),
            fmt(pair["gwet_ac1"]),
            fmt(pair["bonds"]["f1"]),
        ]
    ]
    assert agreement_csv_rows(result)[0][4] == pair["observed"]


# -- formatting -----------------------------------------------------------------------------------


def test_numbers_as_shown_and_as_exported(tmp_path: Path) -> None:
    assert fmt(None) == fmt(float("nan")) == "–"
    assert fmt(0.12345) == "0.123" and fmt(2.0, 1) == "2.0"
    assert csv_cell(np.float64(0.1)) == repr(0.1) and csv_cell(np.int64(3)) == 3
    assert csv_cell(None) == csv_cell(float("nan")) == ""
    out = tmp_path / "t.csv"
    write_csv(out, ("a", "b"), [[1 / 3, None], ["x", np.float32(0.5)]])
    with out.open(newline="", encoding="utf-8") as handle:
        assert list(csv.reader(handle)) == [["a", "b"], [repr(1 / 3), ""], ["x", "0.5"]]
    P = transition_matrix(np.array([[1, 3, 0, 0], [0] * 4, [2, 0, 0, 2], [0, 0, 0, 5]]))
    texts = percent_texts(P)
    assert texts[0] == ["25", "75", "0", "0"] and texts[1] == ["", "", "", ""]
