"""The CLI's option names (#14): `--model` meant three things. Now `--source-model` filters traces
by the LLM that wrote them, `--labeler` names a pre-labeler and `--suggestions-from` a model
annotator; every old spelling still works, hidden from `--help`, so old scripts keep running."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click
import pytest
from bondscope.cli import cli, parse_sides
from bondscope.cli.batch import batch_prelabel_command
from bondscope.cli.classifier import eval_command, prelabel_command, review_command
from bondscope.cli.data import export, remove, segment
from bondscope.cli.structure import agreement_command, metrics_command, stability_command
from bondscope.cli.synthesis import fidelity_command, synthesize_command
from bondscope.services.demo import DEMO_ANNOTATOR, ensure_demo_project
from bondscope.store import Store
from click.testing import CliRunner

DB = ["--db", "p.db"]
M = "deepseek-r1-distill-qwen-14b"  # the model of one demo trace

# (command, the arguments it needs, {new spelling: old spelling}, the values given)
RENAMED = [
    (segment, DB, {"--source-model": "--model"}, ["m"]),
    (export, [*DB, "--format", "csv", "--out", "o"], {"--source-model": "--model"}, ["m"]),
    (remove, [*DB, "--traces", "x*"], {"--source-model": "--model"}, ["m"]),
    (metrics_command, ["transition-matrix", *DB], {"--source-model": "--model"}, ["m"]),
    (agreement_command, DB, {"--source-model": "--model"}, ["m"]),
    (stability_command, DB, {"--source-model": "--model"}, ["m"]),
    (
        prelabel_command,
        DB,
        {"--labeler": "--model", "--source-model": "--model-filter"},
        ["keywords", "m"],
    ),
    (eval_command, [*DB, "--gold", "a", "--pred", "b"], {"--source-model": "--model"}, ["m"]),
    (review_command, [*DB, "--person", "a"], {"--suggestions-from": "--model"}, ["model:kw@1"]),
    (batch_prelabel_command, ["--input", "i", "--output", "o"], {"--labeler": "--model"}, ["kw"]),
    (
        synthesize_command,
        [*DB, "--llm-base-url", "http://h/v1", "--llm-model", "w"],
        {"--from-source-model": "--from-model"},
        ["m"],
    ),
    (fidelity_command, [*DB, "--run", "1"], {"--labeler": "--prelabeler"}, ["keywords"]),
]


def parsed(command: click.Command, args: list[str]) -> dict:
    with command.make_context(command.name, list(args)) as ctx:
        return dict(ctx.params)


@pytest.mark.parametrize(
    ("command", "needed", "names", "values"), RENAMED, ids=[r[0].name for r in RENAMED]
)
def test_each_old_spelling_sets_what_the_new_one_sets_and_help_shows_only_the_new(
    command, needed, names, values
):
    new = [
        *needed,
        *(arg for name, value in zip(names, values, strict=True) for arg in (name, value)),
    ]
    old = [
        *needed,
        *(arg for name, value in zip(names.values(), values, strict=True) for arg in (name, value)),
    ]
    assert parsed(command, old) == parsed(command, new)
    assert set(values) <= set(parsed(command, new).values())
    with command.make_context(command.name, list(new)) as ctx:
        shown = command.get_help(ctx)
    for new_name, old_name in names.items():
        assert new_name in shown
        assert f"{old_name} " not in shown and f"{old_name}," not in shown


def test_compare_sides_take_the_old_spelling_too():
    new = parse_sides(("--db", "a.db", "--source-model", "m", "--preset", "qwq-32b"))
    assert parse_sides(("--db", "a.db", "--model", "m", "--preset", "qwq-32b")) == new
    with pytest.raises(click.UsageError, match="--model given twice"):
        parse_sides(("--db", "a.db", "--source-model", "m", "--model", "n"))


def test_a_missing_required_option_is_named_by_its_new_spelling(tmp_path):
    result = CliRunner().invoke(cli, ["review", "--db", str(tmp_path / "p.db"), "--person", "a"])
    assert result.exit_code == 2 and "Missing option '--suggestions-from'." in result.output


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    return ensure_demo_project(tmp_path / "demo.bondscope")


def run(*args: object) -> str:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_old_spellings_run_end_to_end_with_the_same_results(demo, tmp_path):
    copy = tmp_path / "copy.bondscope"
    shutil.copyfile(demo, copy)
    new = run("prelabel", "--db", demo, "--labeler", "keywords", "--source-model", M)
    old = run("prelabel", "--db", copy, "--model", "keywords", "--model-filter", M)
    assert new.split(" in ")[0] == old.split(" in ")[0]  # the timing may differ

    def labels(path: Path) -> list[tuple]:
        with Store(path) as store:
            return store.conn.execute(
                "SELECT trace_id, step, annotator, behavior, confidence FROM current_labels"
                " WHERE annotator LIKE 'model:keywords@%' ORDER BY 1, 2"
            ).fetchall()

    assert labels(demo) == labels(copy) != []
    (annotator,) = {row[2] for row in labels(demo)}
    eval_args = ["eval", "--gold", DEMO_ANNOTATOR, "--pred", annotator]
    for new_args, old_args in [
        (["review", "--suggestions-from", annotator], ["review", "--model", annotator]),
        (
            ["metrics", "transition-matrix", "--source-model", "deepseek-r1"],
            ["metrics", "transition-matrix", "--model", "deepseek-r1"],
        ),
        ([*eval_args, "--source-model", M], [*eval_args, "--model", M]),
    ]:
        person = ["--person", "me"] if new_args[0] == "review" else []
        new_out = run(*new_args, *person, "--db", demo, "--json")
        assert json.loads(new_out) == json.loads(run(*old_args, *person, "--db", demo, "--json"))
    who = ["--annotator", DEMO_ANNOTATOR, "--preset", "qwq-32b", "--alpha", "0.01"]
    sides_new = ["--db", demo, "--source-model", M, *who]
    sides_old = ["--db", demo, "--model", M, *who]
    assert run("compare", *sides_new) == run("compare", *sides_old)
