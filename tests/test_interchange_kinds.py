"""bondscope-jsonl keeps who is a model, and two exports concatenate into one table."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from bondscope.cli import cli
from click.testing import CliRunner

from tests.helpers import THOUGHT_ANCHORS, record, write_jsonl


def run(*args: object) -> str:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.skipif(not THOUGHT_ANCHORS.exists(), reason="shared data not present")
def test_export_import_keeps_annotator_kinds(tmp_path):
    """The Thought Anchors labels are GPT-4o's: after a round trip they are still a model's."""
    db, copy = tmp_path / "a.bondscope", tmp_path / "b.bondscope"
    run("import", THOUGHT_ANCHORS / "qwq-32b", "--db", db)
    run("import", write_jsonl(tmp_path / "extra.jsonl", [record()]), "--db", db)
    out = tmp_path / "out.jsonl"
    run("export", "--db", db, "--format", "bondscope-jsonl", "--out", out)
    first = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert first["annotators"] == {"thought-anchors-gpt4o": {"kind": "model"}}
    run("import", out, "--db", copy)
    before = json.loads(run("stats", "--db", db, "--json"))
    after = json.loads(run("stats", "--db", copy, "--json"))
    assert before["annotators"]["thought-anchors-gpt4o"]["kind"] == "model"
    assert before.keys() == after.keys()
    for field in before:
        assert after[field] == before[field], field


def test_without_annotators_object_the_name_decides(tmp_path):
    db = tmp_path / "p.bondscope"
    data = record(labels=[{"step": 0, "behavior": "N", "annotator": "gpt4o"}], bonds=[])
    run("import", write_jsonl(tmp_path / "old.jsonl", [data]), "--db", db)
    declared = record(
        id="t2",
        text="Another text.\n\nWith two steps.",
        steps=[{"start": 0, "end": 13}, {"start": 15, "end": 30}],
        labels=[{"step": 0, "behavior": "D", "annotator": "llm-judge"}],
        bonds=[],
        annotators={"llm-judge": {"kind": "model"}},
    )
    run("import", write_jsonl(tmp_path / "new.jsonl", [declared]), "--db", db)
    stats = json.loads(run("stats", "--db", db, "--json"))
    kinds = {name: entry["kind"] for name, entry in stats["annotators"].items()}
    assert kinds == {"gpt4o": "person", "llm-judge": "model"}


def test_two_exports_concatenate(tmp_path):
    """One export whose confidences are all null, one with numbers: same schema, one table."""
    db = tmp_path / "p.bondscope"
    run("import", write_jsonl(tmp_path / "t.jsonl", [record()]), "--db", db)
    people, models = tmp_path / "people.jsonl", tmp_path / "models.jsonl"
    run(
        "export", "--db", db, "--format", "bondscope-jsonl", "--out", people, "--annotator", "alice"
    )
    run(
        "export",
        "--db",
        db,
        "--format",
        "bondscope-jsonl",
        "--out",
        models,
        "--annotator",
        "model:kw@1",
    )
    both = tmp_path / "both.jsonl"
    both.write_text(people.read_text() + models.read_text(), encoding="utf-8")
    records = [json.loads(line) for line in both.read_text().splitlines()]
    assert [list(r) for r in records] == [list(records[0])] * 2  # same fields, same order
    assert [list(lb) for r in records for lb in r["labels"]] == [list(records[0]["labels"][0])] * 3
    frame = pd.read_json(both, lines=True)
    assert len(frame) == 2
    report = json.loads(run("import", both, "--db", tmp_path / "q.bondscope", "--json"))
    assert (report["traces"], report["duplicates"], report["labels"]) == (1, 1, 3)

    tables = []
    for who in ("alice", "model:kw@1"):
        folder = tmp_path / f"parquet-{who.replace(':', '_')}"
        run("export", "--db", db, "--format", "parquet", "--out", folder, "--annotator", who)
        tables.append(pq.read_table(folder / "labels.parquet"))
    assert tables[0].column("confidence").null_count == tables[0].num_rows
    assert tables[0].schema == tables[1].schema
    joined = pa.concat_tables(tables)
    assert joined.column("annotator_kind").to_pylist() == ["person", "person", "model"]
