"""Bad input for the chat, Parquet and annotation-tool importers, and the new r1-json options:
one line naming file, line (or row) and field, exit 1, the project unchanged (as in
test_bad_input, whose helpers these cases reuse)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.test_bad_input import (  # noqa: F401 - `project` is a fixture used below
    Case,
    assert_rejected,
    expected_location,
    jsonl,
    materialize,
    project,
)

TEXT = "First we set up the problem.\n\nWait, let me check that again.\n\nSo x = 4."
CHAT_GOOD = {
    "messages": [
        {"role": "user", "content": "What is x?"},
        {"role": "assistant", "content": "<think>Let me see.</think> 4"},
    ]
}


def chat(*messages: dict[str, Any]) -> dict[str, Any]:
    return {"messages": list(messages)}


def parquet(rows: list[dict[str, Any]], schema: pa.Schema | None = None) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), sink, row_group_size=2)
    return sink.getvalue()


R1_ROW = {"problem": "What is x?", "generation": "<think>Let me see.</think> 4"}
GOOD_PARQUET = parquet(
    [R1_ROW, R1_ROW | {"problem": "Other?"}, {"problem": "q", "generation": None}]
)
TABLES_SCHEMA = {
    "traces": [("trace_id", pa.string()), ("source", pa.string()), ("model", pa.string()),
               ("question", pa.string()), ("text", pa.string()), ("answer", pa.string()),
               ("n_steps", pa.int64()), ("meta", pa.string())],
    "steps": [("trace_id", pa.string()), ("step", pa.int64()), ("start", pa.int64()),
              ("end", pa.int64()), ("text", pa.string())],
    "labels": [("trace_id", pa.string()), ("step", pa.int64()), ("behavior", pa.string()),
               ("annotator", pa.string()), ("confidence", pa.float64())],
    "bonds": [("trace_id", pa.string()), ("from", pa.int64()), ("to", pa.int64()),
              ("type", pa.string()), ("annotator", pa.string())],
}  # fmt: skip


def tables(n_steps: int = 1, extra_step: str | None = None) -> dict[str, bytes]:
    """A parquet export folder of one trace with one step (plus an orphan step row)."""
    trace = {"trace_id": "t1", "source": "s", "model": "m", "question": "q", "text": TEXT,
             "answer": "4", "n_steps": n_steps, "meta": "{}"}  # fmt: skip
    steps = [{"trace_id": "t1", "step": 0, "start": 0, "end": 28, "text": TEXT[:28]}]
    if extra_step:
        steps.append({"trace_id": extra_step, "step": 0, "start": 0, "end": 5, "text": "First"})
    rows = {"traces": [trace], "steps": steps, "labels": [], "bonds": []}
    return {
        f"out/{name}.parquet": parquet(rows[name], pa.schema(TABLES_SCHEMA[name]))
        for name in TABLES_SCHEMA
    }


def region(start: Any, end: Any, label: str, rid: str = "a") -> dict[str, Any]:
    return {"id": rid, "type": "labels", "value": {"start": start, "end": end, "labels": [label]}}


def task(*result: dict[str, Any]) -> bytes:
    return json.dumps(
        [{"data": {"text": TEXT}, "annotations": [{"result": list(result)}]}]
    ).encode()


def doccano(entities: list[dict[str, Any]], relations: list[dict[str, Any]]) -> dict[str, Any]:
    return {"text": TEXT, "entities": entities, "relations": relations}


def entity(eid: int, start: int, end: int, label: str) -> dict[str, Any]:
    return {"id": eid, "label": label, "start_offset": start, "end_offset": end}


CASES = [
    Case("chat-not-a-list", {"c.jsonl": jsonl(CHAT_GOOD, {"messages": "hi"})}, "c.jsonl", None,
         "c.jsonl:2: field 'messages'", "must be a list of message objects"),
    Case("chat-no-assistant", {"c.jsonl": jsonl(CHAT_GOOD, chat({"role": "user", "content": "q"}))},
         "c.jsonl", None, "c.jsonl:2: field 'messages'", "has no assistant turn"),
    Case("chat-content-not-string", {"c.jsonl": jsonl(CHAT_GOOD, chat(
         {"role": "user", "content": "q"}, {"role": "assistant", "content": 5}))}, "c.jsonl", None,
         "c.jsonl:2: field 'messages[1].content'", "must be a string, got int"),
    Case("chat-reasoning-not-string", {"c.jsonl": jsonl(CHAT_GOOD, chat(
         {"role": "user", "content": "q"},
         {"role": "assistant", "content": "4", "reasoning_content": ["a"]}))}, "c.jsonl", None,
         "c.jsonl:2: field 'messages[1].reasoning_content'", "must be a string, got list"),
    Case("chat-missing-role", {"c.jsonl": jsonl(CHAT_GOOD, chat(
         {"content": "q"}, {"role": "assistant", "content": "4"}))}, "c.jsonl", None,
         "c.jsonl:2: field 'messages[0]'", "missing role"),
    Case("chat-missing-messages", {"c.jsonl": jsonl(CHAT_GOOD, {"prompt": "q"})}, "c.jsonl", None,
         "c.jsonl:2: field 'messages/conversations/conversation'", "missing"),
    Case("chat-empty-content", {"c.jsonl": jsonl(CHAT_GOOD, chat(
         {"role": "user", "content": "q"}, {"role": "assistant", "content": " "}))}, "c.jsonl",
         None, "c.jsonl:2: field 'text'", "non-empty"),
    Case("parquet-row", {"p.parquet": GOOD_PARQUET}, "p.parquet", None,
         "p.parquet: row 3: field 'generation'", "must be a string or a list of strings"),
    Case("parquet-corrupt", {"p.parquet": GOOD_PARQUET[:-30]}, "p.parquet", "r1-json",
         "p.parquet: ", "Parquet"),
    Case("tables-step-count", tables(n_steps=2), "out", None,
         "out/traces.parquet: row 1: field 'n_steps'", "says 2 steps, steps.parquet has 1"),
    Case("tables-orphan-step", tables(extra_step="t9"), "out", None,
         "out/steps.parquet: row 2: field 'trace_id'", "'t9' is not in traces.parquet"),
    Case("ls-bad-label", {"t.json": task(region(0, 28, "X"))}, "t.json", None,
         "t.json:1: field 'annotations[0].result[0].value.labels'", "'X' is not a behavior"),
    Case("ls-unknown-region", {"t.json": task(region(0, 28, "N"), {
         "type": "relation", "from_id": "zz", "to_id": "a"})}, "t.json", None,
         "t.json:1: field 'annotations[0].result[1].from_id'", "names no labeled region"),
    Case("ls-offset-not-int", {"t.json": task(region("0", 28, "N"))}, "t.json", None,
         "t.json:1: field 'annotations[0].result[0].start'", "integer character offset"),
    Case("ls-overlap", {"t.json": task(region(0, 28, "N"), region(20, 40, "D", "b"))}, "t.json",
         None, "t.json:1: field 'annotations'", "overlap"),
    Case("doccano-bad-label", {"d.jsonl": jsonl(doccano([entity(0, 0, 28, "N")], []),
         {"text": "Other text here.", "entities": [entity(0, 0, 5, "Q")]})}, "d.jsonl", None,
         "d.jsonl:2: field 'entities.label'", "'Q' is not a behavior"),
    Case("doccano-unknown-entity", {"d.jsonl": jsonl(doccano([entity(0, 0, 28, "N")],
         [{"id": 0, "from_id": 7, "to_id": 0, "type": "vdw"}]))}, "d.jsonl", None,
         "d.jsonl:1: field 'relations[0].from_id'", "names no entity"),
    Case("doccano-bad-bond-type", {"d.jsonl": jsonl(doccano(
         [entity(0, 0, 28, "N"), entity(1, 30, 60, "R")],
         [{"id": 0, "from_id": 1, "to_id": 0, "type": "ionic"}]))}, "d.jsonl", None,
         "d.jsonl:1: field 'relations[0].type'", "not a bond type"),
    Case("prodigy-span-not-int", {"p.jsonl": jsonl({"text": TEXT, "spans": [
         {"start": 0.5, "end": 28, "label": "N"}]})}, "p.jsonl", None,
         "p.jsonl:1: field 'spans[0].start'", "integer character offset"),
    Case("prodigy-relation-without-span", {"p.jsonl": jsonl({"text": TEXT, "spans": [
         {"start": 0, "end": 28, "label": "N"}], "relations": [{"head": 0, "child": 1}]})},
         "p.jsonl", None, "p.jsonl:1: field 'relations[0].child_span'", "missing"),
    Case("text-refuses-jsonl", {"r.jsonl": jsonl(CHAT_GOOD)}, "r.jsonl", "text", "r.jsonl: ",
         "parses as JSON / JSON Lines"),
    Case("two-importers", {"b.jsonl": jsonl(CHAT_GOOD | {"response": "<think>a</think>"})},
         "b.jsonl", None, "b.jsonl: ", "several importers could read this file (r1-json, chat)"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cli_rejects_bad_input(tmp_path: Path, project: Path, case: Case) -> None:  # noqa: F811
    folder = tmp_path / "in"
    target = materialize(folder, case)
    error = assert_rejected(
        project, [target], case.format, expected_location(folder, case), case.message
    )
    if case.where:
        assert error.startswith(f"error: {folder}/")


OPTION_CASES = [
    (["-o", "samples=some"], "field 'samples'", "expected all or first"),
    (["-o", "think=<a> <b> <c>"], "field 'think'", "expected one of auto"),
    (["-o", "correct_field=grade"], ":1: field 'grade'", "'B+' is not true/false"),
]


@pytest.mark.parametrize("options,where,message", OPTION_CASES)
def test_bad_r1_options(
    tmp_path: Path,
    project: Path,  # noqa: F811
    options: list[str],
    where: str,
    message: str,
) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(jsonl({"question": "q", "response": "<think>a</think>4", "grade": "B+"}))
    from tests.test_bad_input import dump, run_cli

    before = dump(project)
    result = run_cli("import", str(path), "--db", str(project), "--format", "r1-json", *options)
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.output
    assert result.stderr.startswith(f"error: {path}") and where in result.stderr
    assert message in result.stderr
    assert dump(project) == before
