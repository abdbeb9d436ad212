"""`bondscope presets`, `metrics` and `compare` end to end, on real project files."""

from __future__ import annotations

import csv
import json

import pytest
from bondscope.cli import cli, parse_sides
from click.testing import CliRunner

from tests.test_structure import build_project


def run(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_presets_lists_the_three_teacher_graphs():
    result = run("presets", "--json")
    assert result.exit_code == 0, result.output
    found = {p["id"]: p for p in json.loads(result.stdout)["presets"]}
    assert set(found) == {"deepseek-r1-0528", "gpt-oss-120b", "qwq-32b"}
    assert found["qwq-32b"]["percent"][2][2] == 41  # QwQ's R -> R persistence
    assert found["deepseek-r1-0528"]["stationary"][0] == pytest.approx(0.594, abs=0.005)
    assert "deepseek-r1-0528  DeepSeek-R1-0528" in run("presets").stdout


def test_metrics_transition_matrix_json(tmp_path):
    db = build_project(tmp_path)
    result = run("metrics", "transition-matrix", "--db", db, "--annotator", "alice", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["metric"] == "transition-matrix" and data["by"] is None
    (entry,) = data["results"]
    assert entry["selection"] == "annotator=alice"
    assert entry["result"]["counts"] == [[1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [1, 0, 1, 0]]
    assert entry["result"]["percent"][0] == [50, 50, 0, 0]
    assert entry["result"]["stationary"]["D"] == pytest.approx(1 / 7)
    # the two models of this selection have unrelated structures: pooled, they are flagged
    assert len(data["warnings"]) == 1 and "r('mA', 'mB')" in data["warnings"][0]
    assert "warning: this selection mixes models" in result.stderr


def test_metrics_by_model_writes_csv(tmp_path):
    db = build_project(tmp_path)
    out = tmp_path / "dist.csv"
    result = run(
        "metrics", "behavior-distribution", "--db", db, "--annotator", "alice", "--by", "model",
        "--csv", out, "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [r["group"] for r in data["results"]] == ["mA", "mB"]
    assert data["results"][1]["result"]["counts"] == {"N": 1, "D": 0, "R": 1, "E": 1}
    assert data["warnings"] == []
    rows = list(csv.reader(out.open(encoding="utf-8")))
    assert rows[0] == ["model", "behavior", "count", "share"]
    assert rows[1] == ["mA", "N", "3", "0.5"] and len(rows) == 9


def test_metrics_text_output_and_by_annotator(tmp_path):
    db = build_project(tmp_path)
    result = run("metrics", "behavior-distribution", "--db", db, "--by", "annotator")
    assert result.exit_code == 0, result.output
    assert "behavior-distribution: annotator=model:kw@1" in result.stdout
    assert "  E\t6\t1" in result.stdout


def test_metrics_errors_are_one_line(tmp_path):
    db = build_project(tmp_path)
    result = CliRunner().invoke(cli, ["metrics", "transition-matrix", "--db", str(db)])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: several annotators labeled all labels: alice")
    result = CliRunner().invoke(cli, ["metrics", "nope", "--db", str(db)])
    assert result.exit_code == 1
    assert "unknown metric 'nope' (available: behavior-distribution, transition-matrix)" in (
        result.stderr
    )


def test_compare_two_presets():
    result = run("compare", "--preset", "deepseek-r1-0528", "--preset", "gpt-oss-120b", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["pearson_r"] == pytest.approx(0.981, abs=0.005)
    assert data["verdict"] == "compatible"
    assert data["weighted_js_bits"] > 0 and data["pi_l1"] > 0
    assert [s["kind"] for s in data["sides"]] == ["preset", "preset"]
    text = run("compare", "--preset", "gpt-oss-120b", "--preset=qwq-32b").stdout
    assert "Pearson r: 0.898 (borderline)" in text  # 0.8975 on row-normalized cells


def test_compare_a_project_with_a_preset(tmp_path):
    db = build_project(tmp_path)
    result = run(
        "compare", "--db", db, "--annotator", "alice", "--source-model", "mA",
        "--preset", "qwq-32b", "--alpha", "0.001", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    side = data["sides"][0]
    assert side["kind"] == "db" and side["traces"] == 1 and side["transitions"] == 5
    assert side["label"].endswith("(model=mA, annotator=alice)")
    assert data["verdict"] in ("compatible", "borderline", "incompatible")
    # without smoothing, a row with no transitions cannot be compared
    result = CliRunner().invoke(
        cli,
        [
            "compare",
            "--db",
            str(db),
            "--source-model",
            "mB",
            "--annotator",
            "alice",
            "--preset",
            "qwq-32b",
        ],
    )
    assert result.exit_code == 1 and "no transition out of N, D, R" in result.stderr


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        (
            ("--source-model", "m", "--preset", "x"),
            "--source-model must follow the --db it filters",
        ),
        (("--preset", "x"), "exactly two sides, got 1"),
        (("--preset", "x", "--db"), "--db needs a value"),
        (("--preset", "x", "--bogus", "y"), "unexpected '--bogus'"),
        (("--db", "a", "--source-model", "m", "--source-model", "n"), "--source-model given twice"),
    ],
)
def test_side_parser_rejects_bad_sides(tokens, message):
    with pytest.raises(Exception, match=message):
        parse_sides(tokens)
    result = CliRunner().invoke(cli, ["compare", *tokens])
    assert result.exit_code == 2 and message in result.stderr


def test_side_parser_keeps_filters_with_their_db():
    sides = parse_sides(("--db", "a.db", "--source-model", "m", "--db=b.db", "--source", "s"))
    assert sides == [{"db": "a.db", "model": "m"}, {"db": "b.db", "source": "s"}]
