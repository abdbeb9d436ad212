"""CLI mistakes are one-line errors with a non-zero exit that leave the project as it was, and
`bondscope remove` deletes traces (or undoes an import) in one transaction."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
from bondscope.cli import cli
from bondscope.services import labeling
from bondscope.services.demo import DEMO_ANNOTATOR, ensure_demo_project
from bondscope.store import Store
from click.testing import CliRunner


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    return ensure_demo_project(tmp_path / "demo.bondscope")


def invoke(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args])


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_error_line(result) -> str:
    assert result.exit_code != 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.mark.parametrize(
    "args",
    [
        [["eval"], "--gold", "nobody", "--pred", DEMO_ANNOTATOR],
        [["eval"], "--gold", DEMO_ANNOTATOR, "--pred", "model:bondscope-minilm"],
        [["metrics", "transition-matrix"], "--annotator", "nobody"],
        [["metrics", "behavior-distribution"], "--annotator", "nobody"],
        [["metrics", "stability"], "--annotator", "nobody"],
        [["metrics", "geometry"], "--trace", "1", "--annotator", "nobody"],
        [["agreement"], "--annotators", f"nobody,{DEMO_ANNOTATOR}"],
    ],
)
def test_an_unknown_annotator_is_an_error(demo, args) -> None:
    before = digest(demo)
    command, *rest = args
    line = one_error_line(invoke(*command, "--db", demo, *rest))
    assert line.startswith("error: no such annotator: ")
    assert f"this project has: {DEMO_ANNOTATOR}" in line
    assert digest(demo) == before


def test_eval_of_annotators_without_common_traces_is_an_error(demo) -> None:
    with Store(demo) as store:
        (step_id,) = store.conn.execute("SELECT id FROM steps LIMIT 1").fetchone()
        labeling.set_label(store, step_id, "alice", "N")
    args = [
        "eval",
        "--db",
        demo,
        "--gold",
        "alice",
        "--pred",
        DEMO_ANNOTATOR,
        "--source-model",
        "none",
    ]
    assert one_error_line(invoke(*args)) == (
        f"error: no trace has labels of both alice and {DEMO_ANNOTATOR}: nothing to score"
    )


def test_export_for_an_unknown_annotator_writes_nothing(demo, tmp_path) -> None:
    out = tmp_path / "out.jsonl"
    args = ["export", "--db", demo, "--format", "bondscope-jsonl", "--out", out]
    line = one_error_line(invoke(*args, "--annotator", DEMO_ANNOTATOR, "--annotator", "nobody"))
    assert line.startswith("error: no such annotator: nobody;")
    assert not out.exists() and list(tmp_path.iterdir()) == [demo]


def test_review_needs_the_model_version(demo) -> None:
    args = ["review", "--db", demo, "--suggestions-from", "thought-anchors", "--person", "me"]
    line = one_error_line(invoke(*args))
    assert line == (f"error: no model annotator 'thought-anchors'; known: {DEMO_ANNOTATOR}")


def test_gui_does_not_create_a_mistyped_project(tmp_path) -> None:
    typo = tmp_path / "typo.db"
    line = one_error_line(invoke("gui", "--db", typo))
    assert line == f"error: {typo}: no such project file (pass --new to create it)"
    assert not typo.exists()


def counts(db: Path) -> tuple[int, ...]:
    with sqlite3.connect(db) as conn:
        return tuple(
            conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("traces", "steps", "label_events", "bond_events")
        )


def test_remove_traces_by_name_and_glob_with_their_labels(demo) -> None:
    with Store(demo) as store:
        steps = [step_id for step_id, _ in store.active_steps(3)]
        labeling.set_label(store, steps[5], "alice", "R")
        labeling.set_bond(store, steps[5], steps[2], "hydrogen", "alice")
        labeling.set_label(store, store.active_steps(1)[0][0], "alice", "N")
    traces, all_steps, labels, bonds = counts(demo)
    result = invoke("remove", "--db", demo, "--traces", "deepseek-r1/*", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["traces"], report["steps"]) == (1, 51)
    assert report["label_events"] == 52 and report["bond_events"] == 48  # imported + alice's
    assert counts(demo) == (traces - 1, all_steps - 51, labels - 52, bonds - 48)
    with sqlite3.connect(demo) as conn:
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        kind, params = conn.execute(
            "SELECT kind, params FROM runs WHERE id = ?", (report["run_id"],)
        ).fetchone()
        assert kind == "remove" and json.loads(params)["pattern"] == "deepseek-r1/*"
    with Store(demo) as store:  # alice's remaining history still undoes
        assert labeling.undo(store, "alice") is not None
        assert labeling.undo(store, "alice") is None

    name = "deepseek-r1-distill-qwen-14b/correct_base_solution/problem_2236"
    result = invoke("remove", "--db", demo, "--trace", name)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("removed 1 traces, 87 steps")


def test_remove_run_undoes_an_import_and_mistakes_remove_nothing(demo, tmp_path) -> None:
    from tests.helpers import record, write_jsonl

    data = write_jsonl(tmp_path / "more.jsonl", [record(id="extra")])
    imported = json.loads(invoke("import", data, "--db", demo, "--json").output)
    before = counts(demo)
    for args, message in (
        ([], "say which traces"),
        (["--trace", "nope"], "error: no trace named 'nope'"),
        (["--run", "999"], "error: no run 999 in this project"),
        (["--traces", "zzz*"], "error: no trace matches; nothing was removed"),
    ):
        result = invoke("remove", "--db", demo, *args)
        assert result.exit_code != 0 and message in result.output, result.output
    assert counts(demo) == before
    result = invoke("remove", "--db", demo, "--run", imported["run_id"])
    assert result.exit_code == 0, result.output
    with sqlite3.connect(demo) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM traces ORDER BY id")]
    assert "extra" not in names and len(names) == 3


def test_stability_says_why_no_size_fits(demo) -> None:
    line = one_error_line(invoke("metrics", "stability", "--db", demo))
    assert line == (
        "error: every sample size (100,500,1000,2000,5000) is larger than the 3 traces of"
        f" annotator={DEMO_ANNOTATOR}; try --sizes 1,3"
    )


def test_transition_matrix_text_is_a_grid_and_stats_lists_models(demo) -> None:
    result = invoke("metrics", "transition-matrix", "--db", demo, "--source-model", "deepseek-r1")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1].split() == ["from", "\\", "to", "N", "D", "R", "E"]
    assert [line.split()[0] for line in lines[2:6]] == ["N", "D", "R", "E"]
    assert lines[6].startswith("  stationary pi: N=")
    stats = invoke("stats", "--db", demo).output
    assert "models:\n  deepseek-r1: 1 traces\n" in stats
    assert "sources:\n  thought-anchors: 3 traces" in stats
