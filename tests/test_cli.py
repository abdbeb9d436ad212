"""The CLI end to end, through click's runner against real project files."""

import json
import subprocess
import sys

import pytest
from bondscope.cli import cli
from click.testing import CliRunner

from tests.helpers import PROCESSBENCH, bare_record, dump, record, write_jsonl


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_import_stats_export_segment(tmp_path):
    db = tmp_path / "p.db"
    data = write_jsonl(
        tmp_path / "t.jsonl", [record(), bare_record(id="t2", text="Another trace.")]
    )
    result = run("import", data, "--db", db, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["traces"], report["labels"], report["bonds"]) == (2, 3, 1)

    stats = json.loads(run("stats", "--db", db, "--json").output)
    assert stats["traces"] == 2 and stats["steps"] == 4
    assert stats["annotators"]["alice"]["by_behavior"] == {"N": 1, "D": 0, "R": 1, "E": 0}
    assert stats["annotators"]["model:kw@1"]["kind"] == "model"

    text_stats = run("stats", "--db", db).output
    assert "traces: 2" in text_stats and "alice (person): 2 labels" in text_stats

    out = tmp_path / "out.jsonl"
    result = run("export", "--db", db, "--format", "bondscope-jsonl", "--out", out, "--json")
    assert json.loads(result.output)["traces"] == 2
    assert len(out.read_text().splitlines()) == 2

    result = run("segment", "--db", db, "--segmenter", "sentence", "--json")
    assert json.loads(result.output)["traces"] == 2


def test_errors_are_one_line_and_leave_the_project_alone(tmp_path):
    db = tmp_path / "p.db"
    run("import", write_jsonl(tmp_path / "ok.jsonl", [record()]), "--db", db)
    before = dump(db)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(bare_record(id="t9", text="Other text here")) + "\n{not json\n")
    result = CliRunner().invoke(cli, ["import", str(bad), "--db", str(db)])
    assert result.exit_code == 1
    assert result.output == (
        f"error: {bad}:2: invalid JSON: Expecting property name enclosed in double quotes "
        "(column 2)\n"
    )
    assert dump(db) == before

    result = CliRunner().invoke(cli, ["stats", "--db", str(tmp_path / "missing.db")])
    assert result.exit_code == 1 and "no such project file" in result.output
    result = CliRunner().invoke(cli, ["export", "--db", str(db), "--format", "xlsx", "--out", "x"])
    assert result.exit_code == 1 and "unknown exporter 'xlsx'" in result.output
    result = CliRunner().invoke(cli, ["import", str(tmp_path / "nope"), "--db", str(db)])
    assert result.exit_code == 1 and "no such file or directory" in result.output


def test_r1_field_names_are_options(tmp_path):
    db = tmp_path / "p.db"
    path = write_jsonl(
        tmp_path / "r1.jsonl",
        [
            {
                "query": "1+1?",
                "output": "<think>\nOne plus one is two, clearly.\n</think>\n2",
                "id": 7,
            }
        ],
    )
    result = run(
        "import", path, "--db", db, "--format", "r1-json", "-o", "question_field=query", "--json"
    )
    assert json.loads(result.output)["traces"] == 1
    result = CliRunner().invoke(cli, ["import", str(path), "--db", str(db), "-o", "nokey"])
    assert result.exit_code == 2 and "KEY=VALUE" in result.output


@pytest.mark.skipif(not PROCESSBENCH.exists(), reason="shared data not present")
def test_processbench_step_lists(tmp_path):
    db = tmp_path / "p.db"
    result = run("import", PROCESSBENCH / "gsm8k.json", "--db", db, "--json")
    report = json.loads(result.output)
    records = json.loads((PROCESSBENCH / "gsm8k.json").read_text("utf-8"))
    assert report["traces"] == len(records) == 400
    assert report["steps"] == sum(len(r["steps"]) for r in records)


def test_plugins_command_and_console_script(tmp_path):
    data = json.loads(run("plugins", "--json").output)
    provided = {item for plugin in data["plugins"] for item in plugin["provides"]}
    assert {"importer:thought-anchors", "segmenter:paragraph", "exporter:parquet"} <= provided
    assert data["failures"] == []
    script = subprocess.run(
        [sys.executable, "-m", "bondscope", "--version"], capture_output=True, text=True
    )
    assert script.returncode == 0 and "bondscope, version" in script.stdout


def test_json_output_never_contains_nan():
    from bondscope.jsonio import json_safe

    data = {"r": float("nan"), "rows": [[1.0, float("inf")]], "ok": 0.5}
    assert json_safe(data) == {"r": None, "rows": [[1.0, None]], "ok": 0.5}
