"""CSV export and `metrics --csv` never write a cell a spreadsheet would run as a formula
(reliability issue, finding 10): text starting with =, +, -, @ gets a leading apostrophe."""

import csv

from bondscope.cli import cli
from click.testing import CliRunner

from tests.helpers import record, write_jsonl

FORMULAS = ('=HYPERLINK("http://x")', "+SUM(A1)", "-2+3", "@cmd")


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def cells(path):
    with open(path, encoding="utf-8", newline="") as handle:
        return [cell for row in csv.reader(handle) for cell in row]


def test_formula_cells_are_neutralized(tmp_path):
    hostile = record(
        id=FORMULAS[0],
        model=FORMULAS[1],
        question=FORMULAS[2],
        answer=FORMULAS[3],
        labels=[{"step": 0, "behavior": "N", "annotator": "@alice", "confidence": None}],
        bonds=[],
    )
    db = tmp_path / "p.db"
    assert run("import", write_jsonl(tmp_path / "t.jsonl", [hostile]), "--db", db).exit_code == 0
    out = tmp_path / "csv"
    assert run("export", "--db", db, "--format", "csv", "--out", out).exit_code == 0
    written = [
        cell
        for name in ("traces", "steps", "labels", "bonds")
        for cell in cells(out / f"{name}.csv")
    ]
    assert not [cell for cell in written if cell.startswith(("=", "+", "-", "@"))]
    assert "'" + FORMULAS[0] in written and "'@alice" in written  # kept, just neutralized

    table = tmp_path / "m.csv"
    result = run(
        "metrics", "behavior-distribution", "--db", db, "--by", "model", "--annotator", "@alice",
        "--csv", table,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert cells(table)[4] == "'" + FORMULAS[1]
