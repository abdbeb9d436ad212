"""Imports that used to go wrong silently or with a misleading message (reliability issue,
findings 14 and 15): each is now a one-line error naming the real cause, with nothing written, or
a correct import."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from bondscope.cli import cli
from bondscope.domain import InputError, Trace, validate_trace
from bondscope.plugin_manager import Plugins
from bondscope.services.importing import import_paths
from bondscope.store import Store
from click.testing import CliRunner

from tests.helpers import dump, record, write_jsonl

GOOD = json.dumps(record())
R1 = {"id": "r1", "question": "q", "response": "<think>A.\n\nB.</think> 4"}


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def project(tmp_path: Path) -> Path:
    db = tmp_path / "p.db"
    assert (
        run("import", write_jsonl(tmp_path / "seed.jsonl", [record()]), "--db", db).exit_code == 0
    )
    return db


def rejected(db: Path, *args: object) -> str:
    """Import must fail with one clear line and leave the project as it was."""
    before = dump(db)
    result = run("import", *args, "--db", db)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert dump(db) == before
    return result.output


def thought_anchors(folder: Path, chunks: list[dict]) -> Path:
    folder.mkdir()
    (folder / "base_solution.json").write_text(json.dumps({"solution": "A. B. C."}))
    (folder / "chunks_labeled.json").write_text(json.dumps(chunks))
    return folder


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        (
            "labels-twice.jsonl",
            GOOD[:-1] + ', "labels": []}\n',
            "labels-twice.jsonl:1: invalid JSON: the key 'labels' appears twice",
        ),
        (
            "array.json",
            "[\n" + json.dumps(R1) + ",\n" + json.dumps(R1)[:-1] + ', "response": "x"}\n]',
            "array.json:3: invalid JSON: the key 'response' appears twice",
        ),
        (
            "nan-meta.jsonl",
            GOOD.replace('"meta": {"k": [1, 2]}', '"meta": {"k": NaN}') + "\n",
            "nan-meta.jsonl:1: invalid JSON: NaN is not a JSON number",
        ),
        (
            "inf-meta.json",
            json.dumps(R1)[:-1] + ', "score": -Infinity}',
            "inf-meta.json: invalid JSON: -Infinity is not a JSON number",
        ),
    ],
    ids=["duplicate-key-jsonl", "duplicate-key-array", "nan", "infinity"],
)
def test_json_that_python_accepts_but_would_lose_or_corrupt_data(
    tmp_path, project, name, content, expected
):
    path = tmp_path / name
    path.write_text(content)
    assert expected in rejected(project, path)


def test_a_plugin_trace_with_nan_in_meta_is_refused():
    with pytest.raises(InputError, match="field 'meta': must hold only JSON values"):
        validate_trace(Trace(id="x", text="t", meta={"score": float("nan")}))


def test_thought_anchors_float_dependency_and_repeated_chunk_index(tmp_path, project):
    chunks = [
        {"chunk": "A.", "chunk_idx": 0},
        {"chunk": "B.", "chunk_idx": 1, "depends_on": [0.7]},
    ]
    out = rejected(project, thought_anchors(tmp_path / "float", chunks))
    assert "field 'chunks[1].depends_on'" in out and "0.7 is not a chunk index" in out
    chunks = [
        {"chunk": "A.", "chunk_idx": 0},
        {"chunk": "B.", "chunk_idx": 0},
        {"chunk": "C.", "chunk_idx": 2, "depends_on": ["0"]},
    ]
    out = rejected(project, thought_anchors(tmp_path / "twice", chunks))
    assert "field 'chunks[1].chunk_idx'" in out and "chunk_idx 0 is also chunk 0's" in out


def test_a_null_id_is_not_the_trace_name_none(tmp_path, project):
    steps = write_jsonl(tmp_path / "s.jsonl", [{"id": None, "problem": "q", "steps": ["A.", "B."]}])
    assert run("import", steps, "--db", project).exit_code == 0
    with Store(project) as store:
        names = [r[0] for r in store.conn.execute("SELECT name FROM traces")]
    assert "None" not in names and "s:0" in names


def test_folder_import_follows_no_links(tmp_path, project):
    """A link loop was read 41 times; a link to /etc imported system files."""
    outside = tmp_path / "outside"
    outside.mkdir()
    write_jsonl(outside / "private.jsonl", [record(id="private", question="private")])
    folder = tmp_path / "in"
    folder.mkdir()
    write_jsonl(folder / "mine.jsonl", [record(id="mine", question="mine")])
    (folder / "loop").symlink_to(folder, target_is_directory=True)
    (folder / "elsewhere").symlink_to(outside, target_is_directory=True)
    (folder / "linked.jsonl").symlink_to(outside / "private.jsonl")
    with Store(project) as store:
        report = import_paths(store, Plugins(load_entry_points=False), [folder])
        names = {r[0] for r in store.conn.execute("SELECT name FROM traces")}
    assert report.traces == 1 and names == {"t1", "mine"}
    assert {Path(p).name for p in report.skipped} == {"loop", "elsewhere", "linked.jsonl"}


def test_a_recognizable_but_corrupt_file_names_the_real_cause(tmp_path, project):
    """Finding 15: these only said "no importer recognizes this file"."""
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "a", "response": "<think>x</think>"\n')
    assert "broken.jsonl:1: invalid JSON" in rejected(project, broken)
    utf = tmp_path / "latin1.json"
    utf.write_bytes(b'{"response": "caf\xe9 <think>x</think>"}')
    assert "invalid UTF-8" in rejected(project, utf)
    unknown = write_jsonl(tmp_path / "other.jsonl", [{"prompt_text": "q", "completion": "a"}])
    out = rejected(project, unknown)
    assert "keys: completion, prompt_text" in out and "--option" in out


def test_a_pipe_or_a_device_is_named_as_such_even_with_format(tmp_path, project):
    """Finding 15: a FIFO or /dev/zero said "pass --format" although it was passed."""
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero")):
        for fmt in ("auto", "r1-json"):
            out = rejected(project, path, "--format", fmt)
            assert "not a regular file or a folder" in out and "pass --format" not in out
