"""Bad input, through every importer and the real CLI: one clear line on stderr naming the file,
the line and the field, a non-zero exit, and a project left exactly as it was."""

from __future__ import annotations

import json
import sqlite3
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from bondscope import cli as cli_module
from bondscope.cli import cli
from bondscope.domain import InputError
from bondscope.plugin_manager import Plugins
from bondscope.services.importing import import_paths
from bondscope.store import Store
from click.testing import CliRunner, Result

from tests.helpers import dump

TEXT = "First we set up the problem.\n\nWait, let me check that again.\n\nSo x = 4."
STEPS = [{"start": 0, "end": 28}, {"start": 30, "end": 60}, {"start": 62, "end": 71}]


def record(**overrides: Any) -> dict[str, Any]:
    """A valid bondscope-jsonl record; `overrides` set (or, with value ..., remove) fields."""
    base: dict[str, Any] = {
        "format": "bondscope-jsonl/1",
        "id": "t1",
        "source": "unit",
        "model": "m",
        "question": "What is x?",
        "text": TEXT,
        "answer": "4",
        "steps": STEPS,
        "labels": [
            {"step": 0, "behavior": "N", "annotator": "alice", "confidence": None},
            {"step": 1, "behavior": "R", "annotator": "alice", "confidence": 0.5},
        ],
        "bonds": [{"from": 1, "to": 0, "type": "hydrogen", "annotator": "alice"}],
        "meta": {"k": [1, 2]},
    }
    for key, value in overrides.items():
        if value is ...:
            base.pop(key)
        else:
            base[key] = value
    return base


def label(**overrides: Any) -> dict[str, Any]:
    return {"step": 0, "behavior": "N", "annotator": "alice", "confidence": None, **overrides}


def jsonl(*records: Any) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()


def count(db: Path, sql: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project file that already holds three traces with labels and bonds."""
    seed = tmp_path / "seed" / "seed.jsonl"
    seed.parent.mkdir()
    seed.write_bytes(
        jsonl(
            record(id="seed-1", question="q1"),
            record(id="seed-2", question="q2"),
            record(id="seed-3", question="q3", steps=..., labels=[], bonds=[]),
        )
    )
    db = tmp_path / "project.bondscope"
    with Store(db) as store:
        report = import_paths(store, Plugins(load_entry_points=False), [seed])
    assert report.traces == 3
    return db


def run_cli(*args: str) -> Result:
    cli_module.plugins.cache_clear()  # a fresh plugin manager: no state shared between tests
    return CliRunner().invoke(cli, list(args))


def assert_rejected(db: Path, paths: list[Path], fmt: str | None, *expected: str) -> str:
    """Run `bondscope import` and check the failure; returns the error line."""
    before = dump(db)
    args = ["import", *(str(p) for p in paths), "--db", str(db)]
    if fmt:
        args += ["--format", fmt]
    result = run_cli(*args)
    assert isinstance(result.exception, SystemExit), result.exception  # no traceback
    assert result.exit_code == 1
    assert result.stdout == ""
    error = result.stderr
    assert error.endswith("\n") and error.count("\n") == 1, error  # exactly one line
    assert error.startswith("error: ")
    for piece in expected:
        assert piece in error, f"{piece!r} not in {error!r}"
    assert dump(db) == before
    return error.strip()


# -- one case per kind of bad input, for every importer -------------------------------------------


@dataclass
class Case:
    id: str
    files: dict[str, bytes]  # relative path -> content
    target: str  # what to import
    format: str | None  # None: auto-detect
    where: str  # expected location, relative to the folder: "file:line: field 'name'"
    message: str  # expected part of the message


GOOD = jsonl(record())
R1_GOOD = {"id": "r1", "question": "What is x?", "response": "<think>Let me see.</think> 4"}
STEP_GOOD = {"id": "p1", "problem": "What is x?", "steps": ["First.", "Then x = 4."]}

CASES = [
    # bondscope-jsonl: the bad record is on line 2, after a good one that must not be imported
    Case("jsonl-invalid-json", {"t.jsonl": GOOD + b'{"id": "x", "text": }\n'}, "t.jsonl", None,
         "t.jsonl:2: ", "invalid JSON"),
    Case("jsonl-invalid-utf8", {"t.jsonl": GOOD + b'{"id": "x", "text": "caf\xe9"}\n'}, "t.jsonl",
         None, "t.jsonl:2: ", "invalid UTF-8"),
    Case("jsonl-not-object", {"t.jsonl": GOOD + b"[1, 2]\n"}, "t.jsonl", None, "t.jsonl:2: ",
         "expected a JSON object, got list"),
    Case("jsonl-missing-text", {"t.jsonl": GOOD + jsonl(record(id="x", text=...))}, "t.jsonl",
         None, "t.jsonl:2: field 'text'", "missing"),
    Case("jsonl-missing-id", {"t.jsonl": GOOD + jsonl(record(id=...))}, "t.jsonl", None,
         "t.jsonl:2: field 'id'", "missing"),
    Case("jsonl-empty-text", {"t.jsonl": GOOD + jsonl(record(id="x", text=" \n", steps=...,
         labels=[], bonds=[]))}, "t.jsonl", None, "t.jsonl:2: field 'text'", "non-empty"),
    Case("jsonl-unknown-field", {"t.jsonl": GOOD + jsonl(record(id="x", label=[]))}, "t.jsonl",
         None, "t.jsonl:2: field 'label'", "unknown field"),
    Case("jsonl-wrong-version", {"t.jsonl": GOOD + jsonl(record(id="x", format="bondscope/9"))},
         "t.jsonl", None, "t.jsonl:2: field 'format'", "unsupported format"),
    Case("jsonl-start-string", {"t.jsonl": GOOD + jsonl(record(id="x", steps=[
         {"start": "0", "end": 28}]))}, "t.jsonl", None, "t.jsonl:2: field 'steps[0].start'",
         "must be int, got str"),
    Case("jsonl-end-bool", {"t.jsonl": GOOD + jsonl(record(id="x", steps=[
         {"start": 0, "end": True}]))}, "t.jsonl", None, "t.jsonl:2: field 'steps[0].end'",
         "must be int, got bool"),
    Case("jsonl-steps-not-list", {"t.jsonl": GOOD + jsonl(record(id="x", steps={"a": 1}))},
         "t.jsonl", None, "t.jsonl:2: field 'steps'", "must be a list"),
    Case("jsonl-behavior-x", {"t.jsonl": GOOD + jsonl(record(id="x", labels=[
         label(behavior="X")]))}, "t.jsonl", None, "t.jsonl:2: field 'labels[0].behavior'",
         "'X' is not one of N, D, R, E"),
    Case("jsonl-confidence-2", {"t.jsonl": GOOD + jsonl(record(id="x", labels=[
         label(), label(step=1, confidence=2)]))}, "t.jsonl", None,
         "t.jsonl:2: field 'labels[1].confidence'", "[0, 1]"),
    Case("jsonl-confidence-huge", {"t.jsonl": GOOD + b'{"id": "x", "text": "a", "steps": [{"start"'
         b': 0, "end": 1}], "labels": [{"step": 0, "behavior": "N", "annotator": "a", '
         b'"confidence": 1' + b"0" * 400 + b"}]}\n"}, "t.jsonl", None,
         "t.jsonl:2: field 'labels[0].confidence'", "too large"),
    Case("jsonl-meta-not-object", {"t.jsonl": GOOD + jsonl(record(id="x", meta=[1]))}, "t.jsonl",
         None, "t.jsonl:2: field 'meta'", "must be an object"),
    Case("jsonl-lone-surrogate", {"t.jsonl": GOOD + b'{"id": "x", "text": "a\\ud800b"}\n'},
         "t.jsonl", None, "t.jsonl:2: field 'text'", "surrogate"),
    Case("jsonl-huge-integer", {"t.jsonl": GOOD + b'{"id": "x", "text": "a", "meta": {"n": 1'
         + b"0" * 5000 + b"}}\n"}, "t.jsonl", None, "t.jsonl:2: ", "invalid JSON"),
    Case("jsonl-nested-too-deep", {"t.jsonl": GOOD + b'{"id": "x", "text": "a", "meta": {"n": '
         + b"[" * 100_000 + b"]" * 100_000 + b"}}\n"}, "t.jsonl", None, "t.jsonl:2: ",
         "nested too deeply"),
    Case("jsonl-overlapping", {"t.jsonl": GOOD + jsonl(record(id="x", steps=[
         {"start": 0, "end": 30}, {"start": 29, "end": 60}]))}, "t.jsonl", None,
         "t.jsonl:2: field 'steps[1]'", "overlaps"),
    Case("jsonl-out-of-order", {"t.jsonl": GOOD + jsonl(record(id="x", steps=[
         {"start": 30, "end": 60}, {"start": 0, "end": 28}]))}, "t.jsonl", None,
         "t.jsonl:2: field 'steps[1]'", "precedes"),
    Case("jsonl-past-the-end", {"t.jsonl": GOOD + jsonl(record(id="x", steps=[
         {"start": 0, "end": 28}, {"start": 30, "end": 72}]))}, "t.jsonl", None,
         "t.jsonl:2: field 'steps[1]'", "outside the text (length 71)"),
    Case("jsonl-negative-start", {"t.jsonl": GOOD + jsonl(record(id="x", steps=[
         {"start": -1, "end": 28}]))}, "t.jsonl", None, "t.jsonl:2: field 'steps[0]'",
         "outside the text"),
    Case("jsonl-empty-span", {"t.jsonl": GOOD + jsonl(record(id="x", steps=[
         {"start": 5, "end": 5}], labels=[], bonds=[]))}, "t.jsonl", None,
         "t.jsonl:2: field 'steps[0]'", "empty or reversed"),
    Case("jsonl-label-step-out-of-range", {"t.jsonl": GOOD + jsonl(record(id="x", labels=[
         label(step=3)]))}, "t.jsonl", None, "t.jsonl:2: field 'labels[0].step'",
         "step 3 is out of range (trace has 3 steps)"),
    Case("jsonl-labels-without-steps", {"t.jsonl": GOOD + jsonl(record(id="x", steps=...,
         bonds=[]))}, "t.jsonl", None, "t.jsonl:2: field 'labels[0]'", "labels need steps"),
    Case("jsonl-bond-to-self", {"t.jsonl": GOOD + jsonl(record(id="x", bonds=[
         {"from": 1, "to": 1, "type": "vdw", "annotator": "a"}]))}, "t.jsonl", None,
         "t.jsonl:2: field 'bonds[0].to'", "itself"),
    Case("jsonl-bond-type", {"t.jsonl": GOOD + jsonl(record(id="x", bonds=[
         {"from": 1, "to": 0, "type": "ionic", "annotator": "a"}]))}, "t.jsonl", None,
         "t.jsonl:2: field 'bonds[0].type'", "'ionic' is not one of"),
    Case("jsonl-bond-missing-annotator", {"t.jsonl": GOOD + jsonl(record(id="x", bonds=[
         {"from": 1, "to": 0, "type": "vdw"}]))}, "t.jsonl", None,
         "t.jsonl:2: field 'bonds[0].annotator'", "missing"),
    Case("jsonl-empty-file", {"t.jsonl": b""}, "t.jsonl", "bondscope-jsonl", "t.jsonl: ",
         "file is empty"),
    Case("jsonl-blank-lines", {"t.jsonl": b"\n  \n\n"}, "t.jsonl", "bondscope-jsonl", "t.jsonl: ",
         "file is empty"),
    Case("jsonl-empty-auto", {"t.jsonl": b""}, "t.jsonl", None, "t.jsonl: ",
         "no importer recognizes this file"),
    # r1-json: JSON Lines, a JSON array, a single object
    Case("r1-invalid-json", {"r.jsonl": jsonl(R1_GOOD) + b'{"response": "<think>\n'}, "r.jsonl",
         None, "r.jsonl:2: ", "invalid JSON"),
    Case("r1-invalid-utf8", {"r.jsonl": jsonl(R1_GOOD) + b'{"response": "\xc3("}\n'}, "r.jsonl",
         None, "r.jsonl:2: ", "invalid UTF-8"),
    Case("r1-missing-response", {"r.jsonl": jsonl(R1_GOOD, {"question": "q", "answer": "4"})},
         "r.jsonl", None, "r.jsonl:2: field 'response'", "missing"),
    Case("r1-response-not-string", {"r.jsonl": jsonl(R1_GOOD, {"response": {"a": 1}})},
         "r.jsonl", None, "r.jsonl:2: field 'response'",
         "must be a string or a list of strings, got dict"),
    Case("r1-response-messages", {"r.jsonl": jsonl(R1_GOOD, {"response": [{"role": "user"}]})},
         "r.jsonl", None, "r.jsonl:2: field 'response'", "use --format chat"),
    Case("r1-response-empty-list", {"r.jsonl": jsonl(R1_GOOD, {"response": []})},
         "r.jsonl", None, "r.jsonl:2: field 'response'", "empty list"),
    Case("r1-question-not-string", {"r.jsonl": jsonl(R1_GOOD, {**R1_GOOD, "question": 7})},
         "r.jsonl", None, "r.jsonl:2: field 'question'", "must be a string"),
    Case("r1-empty-response", {"r.jsonl": jsonl(R1_GOOD, {"id": "r2", "response": "  "})},
         "r.jsonl", None, "r.jsonl:2: field 'response'", "non-empty"),
    Case("r1-empty-file", {"r.json": b"   \n"}, "r.json", "r1-json", "r.json: ", "file is empty"),
    Case("r1-not-json", {"r.json": b"hello\n"}, "r.json", "r1-json", "r.json:1: ",
         "expected JSON"),
    Case("r1-array-bad-element", {"r.json": (
         "[\n" + json.dumps(R1_GOOD) + ",\n" + json.dumps(R1_GOOD | {"id": "r2"}, indent=1)
         + ",\n" + json.dumps({"id": "r3", "response": 3}, indent=1) + ",\n"
         + json.dumps(R1_GOOD | {"id": "r4"}) + "\n]\n").encode()},
         # elements start on lines 2, 3 and 8 (the second one is indented over 5 lines)
         "r.json", None, "r.json:8: field 'response'", "list of strings, got int"),
    Case("r1-array-invalid-element", {"r.json": (
         "[\n" + json.dumps(R1_GOOD) + ",\n" + '{"id": "r2", "response": "a" "b"},\n'
         + json.dumps(R1_GOOD | {"id": "r4"}) + "\n]\n").encode()},
         "r.json", None, "r.json:3: ", "invalid JSON"),
    Case("r1-array-not-closed", {"r.json": ("[\n" + json.dumps(R1_GOOD) + ",\n").encode()},
         "r.json", None, "r.json:3: ", "not closed"),
    Case("r1-array-element-not-object", {"r.json": (
         "[\n" + json.dumps(R1_GOOD) + ",\n  42\n]").encode()}, "r.json", None, "r.json:3: ",
         "expected a JSON object, got int"),
    Case("r1-array-invalid-utf8", {"r.json": (
         "[\n" + json.dumps(R1_GOOD) + ",\n").encode() + b'{"response": "\xff"}\n]'},
         "r.json", "r1-json", "r.json:3: ", "invalid UTF-8"),
    Case("r1-object-huge-integer", {"r.json": b'{"response": "<think>a</think>", "n": 1'
         + b"0" * 5000 + b"}"}, "r.json", "r1-json", "r.json: ", "invalid JSON"),
    # step-lists (ProcessBench style)
    Case("steps-empty-piece", {"s.jsonl": jsonl(STEP_GOOD, {"problem": "q", "steps": ["a", " "]})},
         "s.jsonl", None, "s.jsonl:2: field 'steps[1]'", "non-empty string"),
    Case("steps-not-list", {"s.jsonl": jsonl(STEP_GOOD, {"problem": "q", "steps": "a b"})},
         "s.jsonl", None, "s.jsonl:2: field 'steps'", "non-empty list"),
    Case("steps-question-not-string", {"s.jsonl": jsonl(STEP_GOOD, STEP_GOOD | {"problem": 1})},
         "s.jsonl", None, "s.jsonl:2: field 'problem'", "must be a string"),
    Case("steps-invalid-json", {"s.jsonl": jsonl(STEP_GOOD) + b"{]\n"}, "s.jsonl", None,
         "s.jsonl:2: ", "invalid JSON"),
    Case("steps-array-bad-element", {"s.json": json.dumps(
         [STEP_GOOD, STEP_GOOD | {"id": "p2"}, {"steps": [1]}, STEP_GOOD | {"id": "p4"}],
         indent=2).encode()}, "s.json", None, "s.json:18: field 'steps[0]'", "non-empty string"),
    Case("steps-empty-file", {"s.json": b""}, "s.json", "step-lists", "s.json: ",
         "file is empty"),
    # thought-anchors folders
    Case("ta-invalid-json", {"ta/base_solution.json": b'{\n"solution": "A. B.",\n}',
         "ta/chunks_labeled.json": b"[]"}, "ta", None, "ta/base_solution.json:3: ",
         "invalid JSON"),
    Case("ta-invalid-utf8", {"ta/base_solution.json": b'{"solution": "A\xff"}',
         "ta/chunks_labeled.json": b"[]"}, "ta", None, "ta/base_solution.json: ",
         "invalid UTF-8"),
    Case("ta-empty-chunks-file", {"ta/base_solution.json": b'{"solution": "A. B."}',
         "ta/chunks_labeled.json": b""}, "ta", None, "ta/chunks_labeled.json:1: ",
         "invalid JSON"),
    Case("ta-missing-solution", {"ta/base_solution.json": b'{"prompt": "p"}',
         "ta/chunks_labeled.json": b"[]"}, "ta", None, "ta/base_solution.json: field 'solution'",
         "missing"),
    Case("ta-chunks-not-list", {"ta/base_solution.json": b'{"solution": "A. B."}',
         "ta/chunks_labeled.json": b'{"chunk": "A."}'}, "ta", None, "ta/chunks_labeled.json: ",
         "expected a JSON list"),
    Case("ta-chunk-not-found", {"ta/base_solution.json": b'{"solution": "A. B."}',
         "ta/chunks_labeled.json": b'[{"chunk": "A."}, {"chunk": "C."}]'}, "ta", None,
         "ta/chunks_labeled.json: field 'chunks[1].chunk'", "not found"),
    Case("ta-chunks-out-of-order", {"ta/base_solution.json": b'{"solution": "A. B."}',
         "ta/chunks_labeled.json": b'[{"chunk": "B."}, {"chunk": "A."}]'}, "ta", None,
         "ta/chunks_labeled.json: field 'chunks[1].chunk'", "not found in the solution after"),
    Case("ta-tags-not-list", {"ta/base_solution.json": b'{"solution": "A. B."}',
         "ta/chunks_labeled.json": b'[{"chunk": "A.", "function_tags": "plan_generation"}]'},
         "ta", None, "ta/chunks_labeled.json: field 'chunks[0].function_tags'", "list of strings"),
    Case("ta-chunk-idx-string", {"ta/base_solution.json": b'{"solution": "A. B."}',
         "ta/chunks_labeled.json": b'[{"chunk": "A.", "chunk_idx": "0"}]'}, "ta", None,
         "ta/chunks_labeled.json: field 'chunks[0].chunk_idx'", "integer"),
    Case("ta-depends-on-infinity", {"ta/base_solution.json": b'{"solution": "A. B."}',
         "ta/chunks_labeled.json": b'[{"chunk": "A."}, {"chunk": "B.", "depends_on": [Infinity]}]'},
         "ta", None, "ta/chunks_labeled.json: field 'chunks[1].depends_on'",
         "is not a chunk index"),
    Case("ta-not-a-folder", {"t.json": jsonl(R1_GOOD)}, "t.json", "thought-anchors", "t.json: ",
         "expected a folder holding base_solution.json"),
    # plain text
    Case("text-invalid-utf8", {"t.txt": b"line one\nline two\nbad \xff byte\n"}, "t.txt", None,
         "t.txt:3: ", "invalid UTF-8"),
    Case("text-empty-file", {"t.txt": b""}, "t.txt", None, "t.txt: ", "file is empty"),
    Case("text-whitespace-only", {"t.txt": b" \n\t\n"}, "t.txt", None, "t.txt: ", "file is empty"),
    # anything
    Case("missing-path", {}, "nowhere.jsonl", None, "nowhere.jsonl: ",
         "no such file or directory"),
    Case("unrecognized-file", {"notes.md": b"# notes\n"}, "notes.md", None, "notes.md: ",
         "no importer recognizes this file"),
    Case("unknown-format", {"t.jsonl": GOOD}, "t.jsonl", "yaml", "", "unknown importer 'yaml'"),
]  # fmt: skip


def materialize(folder: Path, case: Case) -> Path:
    for name, content in case.files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return folder / case.target


def expected_location(folder: Path, case: Case) -> str:
    return f"{folder}/{case.where}" if case.where else ""


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cli_rejects_bad_input(tmp_path: Path, project: Path, case: Case) -> None:
    folder = tmp_path / "in"
    target = materialize(folder, case)
    error = assert_rejected(
        project, [target], case.format, expected_location(folder, case), case.message
    )
    if case.where:
        assert error.startswith(f"error: {folder}/")  # the location comes first


@pytest.mark.parametrize("case", [c for c in CASES if c.format != "yaml"], ids=lambda c: c.id)
def test_import_service_raises_input_error(tmp_path: Path, project: Path, case: Case) -> None:
    folder = tmp_path / "in"
    target = materialize(folder, case)
    before = dump(project)
    with Store(project) as store, pytest.raises(InputError) as raised:
        import_paths(
            store, Plugins(load_entry_points=False), [target], format=case.format or "auto"
        )
    error = raised.value
    assert str(error).startswith(expected_location(folder, case))
    assert case.message in error.message
    assert error.path is not None and error.path.startswith(str(folder))
    assert dump(project) == before


# -- directories ----------------------------------------------------------------------------------


def write_thought_anchors(folder: Path) -> None:
    folder.mkdir(parents=True)
    solution = "Let me set up the problem first.\n\nWait, check: 2 + 2 = 4.\n</think>\n\n4"
    (folder / "base_solution.json").write_text(json.dumps({"solution": solution, "answer": "4"}))
    chunks = [
        {"chunk": "Let me set up the problem first.", "chunk_idx": 0,
         "function_tags": ["problem_setup"], "depends_on": []},
        {"chunk": "Wait, check: 2 + 2 = 4.", "chunk_idx": 1,
         "function_tags": ["self_checking"], "depends_on": ["0"]},
    ]  # fmt: skip
    (folder / "chunks_labeled.json").write_text(json.dumps(chunks, indent=1))


def mixed_folder(root: Path) -> Path:
    folder = root / "mixed"
    folder.mkdir(parents=True)
    (folder / "a.jsonl").write_bytes(
        jsonl(record(id="j1", question="new 1"), record(id="j2", question="q1"))
    )
    write_thought_anchors(folder / "problem_7")
    (folder / "notes.txt").write_text("Some thinking.\n\nMore thinking here.\n", encoding="utf-8")
    (folder / "README.md").write_text("# not a trace\n", encoding="utf-8")
    (folder / ".hidden.jsonl").write_text("garbage\n", encoding="utf-8")
    return folder


def test_mixed_folder_imports_the_valid_files_and_reports_the_rest(
    tmp_path: Path, project: Path
) -> None:
    folder = mixed_folder(tmp_path)
    result = run_cli("import", str(folder), "--db", str(project), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["skipped"] == [str(folder / "README.md")]
    assert report["files"] == 3
    assert report["traces"] == 3  # j1, the Thought Anchors trace, notes.txt
    assert report["duplicates"] == 1  # j2 is seed-1's content under another id
    conn = sqlite3.connect(project)
    try:
        sources = dict(conn.execute("SELECT name, source FROM traces WHERE id > 3"))
        ta_labels = conn.execute(
            "SELECT behavior FROM current_labels WHERE annotator = 'thought-anchors-gpt4o' "
            "ORDER BY step"
        ).fetchall()
    finally:
        conn.close()
    assert sources == {"j1": "unit", "problem_7": "thought-anchors", "notes": "text"}
    assert ta_labels == [("N",), ("R",)]
    # the human-readable report names the skipped file too
    again = run_cli("import", str(folder), "--db", str(project))
    assert again.exit_code == 0
    assert f"skipped 1 files no importer recognizes:\n  {folder / 'README.md'}" in again.stdout


@pytest.mark.parametrize(
    ("bad_name", "content", "where", "message"),
    [
        ("z.jsonl", jsonl(record(id="z1", question="zq"), record(id="z2", steps=[
            {"start": 0, "end": 30}, {"start": 20, "end": 60}])), "z.jsonl:2: field 'steps[1]'",
         "overlaps"),
        ("b.txt", b"fine\n\xc3\x28 not fine\n", "b.txt:2: ", "invalid UTF-8"),
    ],
    ids=["jsonl-overlap", "txt-invalid-utf8"],
)  # fmt: skip
def test_mixed_folder_with_one_bad_file_imports_nothing(
    tmp_path: Path, project: Path, bad_name: str, content: bytes, where: str, message: str
) -> None:
    folder = mixed_folder(tmp_path)
    (folder / bad_name).write_bytes(content)
    assert_rejected(project, [folder], None, f"{folder}/{where}", message)
    assert count(project, "SELECT COUNT(*) FROM traces") == 3


def test_several_paths_one_bad_imports_nothing(tmp_path: Path, project: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_bytes(jsonl(record(id="g", question="other")))
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(jsonl(record(id="b", question="b", labels=[label(behavior="n")])))
    assert_rejected(project, [good, bad], None, f"{bad}:1: field 'labels[0].behavior'")


# -- a big file: streamed, and still all or nothing -----------------------------------------------

BIG_RECORDS = 50
BIG_TEXT_CHARS = 4_200_000  # 50 x 4.2 MB: a file over 200 MB


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.jsonl"
    block = "Let me reconsider this step carefully. " * (BIG_TEXT_CHARS // 39)
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(BIG_RECORDS):
            text = f"Trace {i}. {block}"
            handle.write(
                json.dumps(
                    record(
                        id=f"big-{i}",
                        question=f"big question {i}",
                        text=text,
                        steps=[{"start": 0, "end": len(text)}],
                        labels=[label(behavior="D")],
                        bonds=[],
                    )
                )
                + "\n"
            )
    assert path.stat().st_size >= 200_000_000
    return path


def test_big_file_with_a_bad_last_record_imports_nothing(big_file: Path, project: Path) -> None:
    size = big_file.stat().st_size
    bad = record(id="last", question="last", steps=[{"start": 0, "end": 10**9}], bonds=[])
    try:
        with open(big_file, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(bad) + "\n")
        assert_rejected(
            project,
            [big_file],
            None,
            f"{big_file}:{BIG_RECORDS + 1}: field 'steps[0]'",
            "outside the text (length 71)",
        )
    finally:
        with open(big_file, "r+b") as handle:
            handle.truncate(size)


def test_big_file_is_streamed(big_file: Path, project: Path) -> None:
    size = big_file.stat().st_size
    tracemalloc.start()
    try:
        with Store(project) as store:
            report = import_paths(store, Plugins(load_entry_points=False), [big_file])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (report.traces, report.steps, report.labels) == (BIG_RECORDS, BIG_RECORDS, BIG_RECORDS)
    assert peak < size / 5, f"peak {peak / 1e6:.0f} MB for a {size / 1e6:.0f} MB file"
    assert count(project, "SELECT COUNT(*) FROM traces") == 3 + BIG_RECORDS
    assert count(project, "SELECT SUM(length(text)) FROM traces WHERE name LIKE 'big-%'") > 2e8
