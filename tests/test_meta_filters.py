"""`--by meta.KEY` and `--where meta.KEY=VALUE` through the real CLI on a real project."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bondscope.cli import cli
from click.testing import CliRunner

from tests.helpers import dump, write_jsonl

PARAGRAPHS = [
    "First I set up the sum of the two numbers here.",
    "Wait, let me check the sign of the second one again.",
    "Alternatively, I could try adding them the other way round.",
    "So the total is four, and nothing else is left to do.",
]


def run(*args: object, code: int = 0) -> str:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """Five traces: correct true, true, false, the string "True", and one without the key."""
    records = []
    for i, correct in enumerate([True, True, False, "True", None]):
        record = {
            "id": f"t{i}",
            "question": f"Question {i}?",
            "response": "<think>" + "\n\n".join(PARAGRAPHS[: 2 + i % 3]) + "</think>4",
            "level": i % 2,
        }
        if correct is not None:
            record["correct"] = correct
        records.append(record)
    db = tmp_path / "p.bondscope"
    run("import", write_jsonl(tmp_path / "r1.jsonl", records), "--db", db)
    return db


def test_prelabel_where_and_metrics_by_meta(project: Path) -> None:
    report = json.loads(
        run(
            "prelabel",
            "--db",
            project,
            "--labeler",
            "keywords",
            "--where",
            "meta.level=1",
            "--json",
        )
    )
    assert report["traces"] == 2  # t1, t3
    run("prelabel", "--db", project, "--labeler", "keywords")
    data = json.loads(
        run("metrics", "behavior-distribution", "--db", project, "--by", "meta.correct", "--json")
    )
    groups = {r["group"]: r["result"]["steps"] for r in data["results"]}
    # meta.correct is read as a flag: the string "True" (t3) counts as true
    assert groups == {"(missing)": 3, "false": 4, "true": 2 + 3 + 2}  # t4; t2; t0, t1, t3
    where = json.loads(
        run("metrics", "behavior-distribution", "--db", project, "--where", "meta.correct=true",
            "--where", "meta.level=1", "--json")
    )  # fmt: skip
    [result] = where["results"]
    assert result["selection"].endswith("meta.correct=true, meta.level=1")
    assert result["result"]["traces"] == 2  # t1 and t3


def test_export_sft_chat_of_correct_traces_only(tmp_path: Path, project: Path) -> None:
    out = tmp_path / "sft.jsonl"
    run("export", "--db", project, "--format", "sft-chat", "--out", out, "--where",
        "meta.correct=true")  # fmt: skip
    ids = [json.loads(line)["id"] for line in out.read_text("utf-8").splitlines()]
    assert ids == ["t0", "t1", "t3"]


def test_compare_sides_take_where(project: Path) -> None:
    run("prelabel", "--db", project, "--labeler", "keywords")
    data = json.loads(
        run("compare", "--db", project, "--where", "meta.correct=true", "--db", project,
            "--where", "meta.correct=false", "--alpha", "0.01", "--json")
    )  # fmt: skip
    assert [side["traces"] for side in data["sides"]] == [3, 1]


def test_user_text_never_becomes_sql(tmp_path: Path, project: Path) -> None:
    before = dump(project)
    out = tmp_path / "none.jsonl"
    for where in ("meta.x') OR 1=1 --=1", "meta.correct=1' OR '1'='1", 'meta."a".b=2'):
        run("export", "--db", project, "--format", "sft-chat", "--out", out, "--where", where,
            "--overwrite")  # fmt: skip
        assert out.read_text("utf-8") == ""
    assert dump(project) == before
    error = run("export", "--db", project, "--format", "sft-chat", "--out", out, "--where",
                "correct=true", code=2)  # fmt: skip
    assert "expected meta.KEY" in error
    assert "expected model, source, annotator or meta.KEY" in run(
        "metrics", "transition-matrix", "--db", project, "--by", "level", code=2
    )
