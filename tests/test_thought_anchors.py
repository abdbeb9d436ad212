"""Importing the real Thought Anchors data: counts are checked against the files themselves."""

import json

import pytest
from bondscope.cli import cli
from bondscope.plugin_manager import Plugins
from bondscope.plugins.thought_anchors import ANNOTATOR, TAG_TO_BEHAVIOR
from bondscope.services.importing import import_paths
from bondscope.store import Store
from click.testing import CliRunner

from tests.helpers import THOUGHT_ANCHORS

pytestmark = pytest.mark.skipif(not THOUGHT_ANCHORS.exists(), reason="shared data not present")


def expected_from_files():
    traces = {}
    for chunks_file in sorted(THOUGHT_ANCHORS.glob("*/*/*/chunks_labeled.json")):
        chunks = json.loads(chunks_file.read_text("utf-8"))
        folder = chunks_file.parent
        name = f"{folder.parent.parent.name}/{folder.parent.name}/{folder.name}"
        indices = {c["chunk_idx"] for c in chunks}
        bonds = {
            (c["chunk_idx"], int(d))
            for c in chunks
            for d in c.get("depends_on", [])
            if int(d) in indices and int(d) != c["chunk_idx"]
        }
        traces[name] = {"chunks": chunks, "bonds": len(bonds)}
    return traces


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    path = tmp_path_factory.mktemp("ta") / "ta.db"
    with Store(path) as store:
        report = import_paths(store, Plugins(load_entry_points=False), [THOUGHT_ANCHORS])
    return path, report


def test_all_42_traces_and_every_labeled_chunk(project):
    path, report = project
    expected = expected_from_files()
    assert len(expected) == 42
    assert report.traces == 42
    assert report.skipped == [str(THOUGHT_ANCHORS / "LICENSE.md")]
    with Store(path) as store:
        for trace_id in store.trace_ids():
            trace = store.load_trace(trace_id)
            chunks = expected[trace.id]["chunks"]
            assert trace.source == "thought-anchors"
            assert len(trace.steps) == len(chunks)
            for step, chunk in zip(trace.steps, chunks, strict=True):
                # chunks were whitespace-normalized; the spans must hold exactly their words
                assert trace.text[step.start : step.end].split() == chunk["chunk"].split()
            behaviors = [label.behavior for label in trace.labels]
            assert behaviors == [TAG_TO_BEHAVIOR[c["function_tags"][0]] for c in chunks]
            assert {label.annotator for label in trace.labels} == {ANNOTATOR}
            assert len(trace.bonds) == expected[trace.id]["bonds"]


def test_models_questions_and_answers(project):
    path, _ = project
    with Store(path) as store:
        models = dict(store.conn.execute("SELECT model, COUNT(*) FROM traces GROUP BY model"))
        assert models == {
            "deepseek-r1-distill-llama-8b": 20,
            "deepseek-r1-distill-qwen-14b": 20,
            "deepseek-r1": 1,
            "qwq-32b": 1,
        }
        problem = THOUGHT_ANCHORS / "deepseek-r1-distill-qwen-14b/correct_base_solution/problem_330"
        row = store.conn.execute(
            "SELECT question, answer, meta FROM traces WHERE name = ?",
            ("deepseek-r1-distill-qwen-14b/correct_base_solution/problem_330",),
        ).fetchone()
        assert row[0] == json.loads((problem / "problem.json").read_text())["problem"]
        assert row[1] == json.loads((problem / "base_solution.json").read_text())["answer"]
        assert json.loads(row[2])["is_correct"] is True


def test_stats_json_reports_the_import(project):
    path, _ = project
    expected = expected_from_files()
    n_chunks = sum(len(t["chunks"]) for t in expected.values())
    result = CliRunner().invoke(cli, ["stats", "--db", str(path), "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert stats["traces"] == 42
    assert stats["steps"] == n_chunks == 6011
    assert stats["labels"] == n_chunks
    assert stats["annotators"][ANNOTATOR]["kind"] == "model"
    tag_counts = {}
    for trace in expected.values():
        for chunk in trace["chunks"]:
            behavior = TAG_TO_BEHAVIOR[chunk["function_tags"][0]]
            tag_counts[behavior] = tag_counts.get(behavior, 0) + 1
    assert stats["by_behavior"] == {b: tag_counts.get(b, 0) for b in "NDRE"}
    assert stats["bonds"] == sum(t["bonds"] for t in expected.values())


def test_reimport_is_deduplicated(tmp_path):
    folder = THOUGHT_ANCHORS / "deepseek-r1-distill-qwen-14b" / "correct_base_solution"
    with Store(tmp_path / "p.db") as store:
        plugins = Plugins(load_entry_points=False)
        first = import_paths(store, plugins, [folder])
        again = import_paths(store, plugins, [folder])
        assert (first.traces, first.duplicates) == (10, 0)
        assert (again.traces, again.duplicates, again.labels, again.bonds) == (0, 10, 0, 0)
        assert store.count("SELECT COUNT(*) FROM traces") == 10
        assert store.count("SELECT COUNT(*) FROM label_events") == first.labels
