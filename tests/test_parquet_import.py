"""The `parquet` importer reads back what the `parquet` exporter writes, and refuses tables whose
rows it cannot join safely."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
from bondscope.cli import cli
from click.testing import CliRunner

from tests.helpers import dump, record, write_jsonl


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def exported(tmp_path, n: int = 3):
    records = [record(id=f"t{i}", question=f"q{i}") for i in range(n)]
    write_jsonl(tmp_path / "in.jsonl", records)
    db = tmp_path / "a.db"
    assert run("import", str(tmp_path / "in.jsonl"), "--db", str(db)).exit_code == 0
    assert (
        run(
            "export", "--db", str(db), "--format", "parquet", "--out", str(tmp_path / "t")
        ).exit_code
        == 0
    )
    return db, tmp_path / "t"


def test_export_import_export_is_identical(tmp_path):
    db, tables = exported(tmp_path)
    back = tmp_path / "b.db"
    result = run("import", str(tables), "--db", str(back), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["labels"] == 9
    for name, project in (("a.jsonl", db), ("b.jsonl", back)):
        assert run("export", "--db", str(project), "--format", "bondscope-jsonl",
                   "--out", str(tmp_path / name)).exit_code == 0  # fmt: skip
    assert (tmp_path / "a.jsonl").read_text("utf-8") == (tmp_path / "b.jsonl").read_text("utf-8")


def test_rows_out_of_trace_order_are_refused_and_nothing_is_written(tmp_path):
    _, tables = exported(tmp_path)
    labels = pq.read_table(tables / "labels.parquet")
    pq.write_table(labels.take(pa.array(list(range(len(labels)))[::-1])), tables / "labels.parquet")
    target = tmp_path / "c.db"
    assert run("import", str(tmp_path / "in.jsonl"), "--db", str(target)).exit_code == 0
    before = dump(target)
    result = run("import", str(tables), "--db", str(target))
    assert result.exit_code == 1
    # t0 and t1 find no labels at the top, t2 takes its three, and row 4 (t1's) is left over
    assert result.output == (
        f"error: {tables / 'labels.parquet'}: row 4: field 'trace_id': trace 't1' is not in "
        "traces.parquet, or its rows are out of trace order\n"
    )
    assert dump(target) == before


def test_a_step_count_that_does_not_match_names_the_row(tmp_path):
    _, tables = exported(tmp_path)
    traces = pq.read_table(tables / "traces.parquet")
    counts = pa.array([3, 2, 3], pa.int64())
    pq.write_table(traces.set_column(6, "n_steps", counts), tables / "traces.parquet")
    result = run("import", str(tables), "--db", str(tmp_path / "d.db"))
    assert result.exit_code == 1
    assert result.output.startswith(
        f"error: {tables / 'traces.parquet'}: row 2: field 'n_steps': "
    ), result.output
