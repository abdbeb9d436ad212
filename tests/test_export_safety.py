"""`export --overwrite` replaces only an earlier export: never the project, a folder holding it,
another SQLite file or files it did not write (reliability issue, findings 1 and 2)."""

import json

from bondscope.cli import cli
from click.testing import CliRunner

from tests.helpers import dump, record, write_jsonl


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def project(tmp_path):
    db = tmp_path / "p.db"
    data = write_jsonl(tmp_path / "t.jsonl", [record()])
    assert run("import", data, "--db", db).exit_code == 0
    return db


def export(db, out, format_="bondscope-jsonl", *extra):
    return run("export", "--db", db, "--format", format_, "--out", out, *extra)


def test_export_onto_the_project_file_is_refused_and_the_project_kept(tmp_path):
    db = project(tmp_path)
    before = dump(db)
    for target in (db, tmp_path / "p.db-wal", tmp_path / "." / "p.db"):
        result = export(db, target, "bondscope-jsonl", "--overwrite")
        assert result.exit_code == 1
        assert "project file" in result.output
    assert dump(db) == before


def test_export_into_a_folder_holding_the_project_deletes_nothing(tmp_path, monkeypatch):
    db = project(tmp_path)
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    before = sorted(p.name for p in tmp_path.iterdir())
    for target in (tmp_path, "."):
        monkeypatch.chdir(tmp_path)
        result = export(db, target, "parquet", "--overwrite")
        assert result.exit_code == 1
        assert "holds the project file" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert notes.read_text() == "mine"


def test_overwrite_keeps_a_folder_with_files_no_export_wrote(tmp_path):
    db = project(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "thesis.tex").write_text("two years of work")
    result = export(db, out, "csv", "--overwrite")
    assert result.exit_code == 1
    assert "thesis.tex" in result.output
    assert (out / "thesis.tex").read_text() == "two years of work"


def test_overwrite_replaces_an_earlier_folder_export_and_only_that(tmp_path):
    db = project(tmp_path)
    out = tmp_path / "tables"
    assert export(db, out, "parquet").exit_code == 0
    manifest = json.loads((out / ".bondscope-export.json").read_text())
    assert manifest["format"] == "parquet"
    assert set(manifest["files"]) == {p.name for p in out.iterdir()} - {".bondscope-export.json"}
    assert export(db, out, "parquet").exit_code == 1  # exists, no --overwrite
    assert export(db, out, "parquet", "--overwrite").exit_code == 0
    (out / "extra.txt").write_text("added by hand")
    result = export(db, out, "parquet", "--overwrite")
    assert result.exit_code == 1 and "extra.txt" in result.output
    assert (out / "extra.txt").exists()


def test_overwrite_replaces_an_earlier_file_export_but_not_other_files(tmp_path):
    db = project(tmp_path)
    other = tmp_path / "other.db"
    other.write_bytes(db.read_bytes())
    out = tmp_path / "out.jsonl"
    assert export(db, out).exit_code == 0
    assert export(db, out, "bondscope-jsonl", "--overwrite").exit_code == 0
    assert json.loads(out.read_text().splitlines()[0])["id"] == "t1"

    sft = tmp_path / "chat.jsonl"
    assert export(db, sft, "sft-chat").exit_code == 0
    assert export(db, sft, "sft-chat", "--overwrite").exit_code == 0
    result = export(db, sft, "bondscope-jsonl", "--overwrite")  # another format's file
    assert result.exit_code == 1 and "not written by the bondscope-jsonl exporter" in result.output

    mine = tmp_path / "mine.jsonl"
    mine.write_text('{"my": "own data"}\n')
    result = export(db, mine, "bondscope-jsonl", "--overwrite")
    assert result.exit_code == 1
    assert mine.read_text() == '{"my": "own data"}\n'

    before = other.read_bytes()
    result = export(db, other, "bondscope-jsonl", "--overwrite")
    assert result.exit_code == 1 and "SQLite database" in result.output
    assert other.read_bytes() == before
