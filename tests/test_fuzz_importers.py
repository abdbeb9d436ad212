"""Property tests of the importers: lossless round trips, and no crash on arbitrary input."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from bondscope.domain import (
    ANNOTATOR_KINDS,
    BEHAVIORS,
    BOND_TYPES,
    Bond,
    InputError,
    Label,
    Step,
    Trace,
)
from bondscope.plugin_manager import Plugins
from bondscope.services.importing import import_paths
from bondscope.store import Store
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import dump

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Every importer; the JSON ones more often, as they have more to get wrong.
FILE_IMPORTERS = (
    ("bondscope-jsonl",) * 3
    + ("r1-json", "step-lists") * 2
    + ("text", "thought-anchors")
    + ("chat", "label-studio", "doccano", "prodigy")
)

# Any Unicode scalar value (no surrogates), with astral characters drawn often on purpose.
CHARS = st.one_of(
    st.characters(codec="utf-8"),
    st.characters(min_codepoint=0x10000, codec="utf-8"),
    st.sampled_from("\n\r\t \u2028\u0085\x00\ufeff"),
)
TEXT = st.text(CHARS, max_size=40)
NAME = st.text(CHARS, min_size=1, max_size=12).filter(lambda s: not s.isspace())


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="bondscope-fuzz-") as folder:
        yield Path(folder)


# -- (a) export -> import round trip ---------------------------------------------------------------

JSON_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),  # JSON has no NaN or Infinity
    TEXT,
)
JSON_VALUE = st.recursive(
    JSON_LEAF,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)


@st.composite
def traces(draw: st.DrawFn) -> Trace:
    text = draw(st.text(CHARS, min_size=1, max_size=300).filter(lambda s: not s.isspace()))
    cuts = sorted(draw(st.sets(st.integers(0, len(text)), max_size=16)))
    cuts = cuts[: len(cuts) // 2 * 2]
    steps = [Step(cuts[i], cuts[i + 1]) for i in range(0, len(cuts), 2)]
    annotators = draw(st.lists(NAME, min_size=1, max_size=3, unique=True))
    labels = []
    if steps:
        keys = draw(st.sets(st.tuples(st.integers(0, len(steps) - 1), st.sampled_from(annotators))))
        for step, annotator in sorted(keys):
            confidence = draw(st.none() | st.floats(0.0, 1.0))
            seconds = draw(st.none() | st.floats(0.0, 1e6))
            created_at = draw(st.datetimes(timezones=st.just(UTC))).isoformat()
            behavior = draw(st.sampled_from(BEHAVIORS))
            labels.append(Label(step, behavior, annotator, confidence, seconds, created_at))
    bonds = []
    if len(steps) >= 2:
        index = st.integers(0, len(steps) - 1)
        edges = draw(
            st.sets(
                st.tuples(
                    index, index, st.sampled_from(BOND_TYPES), st.sampled_from(annotators)
                ).filter(lambda e: e[0] != e[1]),
                max_size=6,
            )
        )
        bonds = [Bond(*edge) for edge in sorted(edges)]
    return Trace(
        id=draw(NAME),
        text=text,
        question=draw(TEXT),
        model=draw(TEXT),
        source=draw(TEXT),
        answer=draw(TEXT),
        steps=steps,
        labels=labels,
        bonds=bonds,
        meta=draw(st.dictionaries(TEXT, JSON_VALUE, max_size=4)),
        annotator_kinds={
            name: draw(st.sampled_from(ANNOTATOR_KINDS))
            for name in sorted({lb.annotator for lb in labels} | {b.annotator for b in bonds})
        },
    )


@FUZZ
@given(trace=traces())
def test_bondscope_jsonl_round_trip(workdir: Path, trace: Trace) -> None:
    plugins = Plugins(load_entry_points=False)
    with tempfile.TemporaryDirectory(dir=workdir) as folder:
        exported = Path(folder) / "trace.jsonl"
        plugins.get("exporter", "bondscope-jsonl").export([trace], exported)
        with Store(Path(folder) / "project.bondscope") as store:
            report = import_paths(store, plugins, [exported])
            assert (report.traces, report.steps) == (1, len(trace.steps or []))
            assert (report.labels, report.bonds) == (len(trace.labels), len(trace.bonds))
            [trace_id] = store.trace_ids()
            loaded = store.load_trace(trace_id)
    assert loaded.id == trace.id
    assert loaded.text == trace.text
    assert loaded.question == trace.question
    assert loaded.model == trace.model
    assert loaded.source == trace.source
    assert loaded.answer == trace.answer
    assert loaded.steps == trace.steps
    assert sorted(loaded.labels, key=lambda lb: (lb.step, lb.annotator)) == trace.labels
    assert sorted(loaded.bonds, key=lambda b: (b.source, b.target, b.type, b.annotator)) == (
        trace.bonds
    )
    assert loaded.annotator_kinds == trace.annotator_kinds
    assert loaded.meta == trace.meta
    for step in loaded.steps or []:  # offsets are str indices: astral characters count as one
        assert loaded.text[step.start : step.end] == trace.text[step.start : step.end]


# -- (b) arbitrary input: imports, or InputError and an unchanged project -------------------------

# Text that may hold lone surrogates: written with \udXXX escapes or as raw (invalid) bytes.
ANY_TEXT = st.lists(CHARS | st.sampled_from("\ud800\udbff\udc00\udfff"), max_size=30).map("".join)
ANY_JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=10**300, max_value=10**310),  # beyond float's range
        st.floats(),
        ANY_TEXT,
    ),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(ANY_TEXT, children, max_size=4)
    ),
    max_leaves=12,
)
R1_RECORD = {"id": "r", "question": "q", "response": "<think>\nHm.\n\nSo 4.</think> 4"}
STEP_RECORD = {"id": "s", "problem": "q", "steps": ["First.", "Then 4."], "label": -1}
BONDSCOPE_RECORD = {
    "format": "bondscope-jsonl/1",
    "id": "b",
    "text": "One step here.\n\nAnd another step.",
    "steps": [{"start": 0, "end": 14}, {"start": 16, "end": 33}],
    "labels": [{"step": 0, "behavior": "N", "annotator": "a", "confidence": 0.5}],
    "bonds": [{"from": 1, "to": 0, "type": "vdw", "annotator": "a"}],
    "meta": {},
}


CHAT_RECORD = {
    "id": "c",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "4", "reasoning_content": "Hm.\n\nSo 4."},
    ],
}
SAMPLES_RECORD = {
    "id": "g",
    "problem": "q",
    "gen": ["<|begin_of_thought|>Hm.<|end_of_thought|><|begin_of_solution|>4<|end_of_solution|>"],
    "score": [True],
}
SPANS = {
    "text": "One step here.\n\nAnd another step.",
    "trace_id": "x",
    "steps": [[0, 14], [16, 33]],
}
LABEL_STUDIO_RECORD = {
    "data": SPANS,
    "annotations": [
        {
            "created_username": "a",
            "result": [
                {"id": "s0", "type": "labels", "value": {"start": 0, "end": 14, "labels": ["N"]}},
                {"id": "s1", "type": "labels", "value": {"start": 16, "end": 33, "labels": ["R"]}},
                {"type": "relation", "from_id": "s1", "to_id": "s0", "labels": ["hydrogen"]},
            ],
        }
    ],
    "predictions": [{"model_version": "m", "result": []}],
}
DOCCANO_RECORD = {
    **SPANS,
    "annotator": "a",
    "entities": [
        {"id": 0, "label": "N", "start_offset": 0, "end_offset": 14},
        {"id": 1, "label": "E", "start_offset": 16, "end_offset": 33, "confidence": 0.5},
    ],
    "relations": [{"id": 0, "from_id": 1, "to_id": 0, "type": "vdw"}],
}
PRODIGY_RECORD = {
    **SPANS,
    "_annotator_id": "a",
    "answer": "accept",
    "spans": [{"start": 0, "end": 14, "label": "N"}, {"start": 16, "end": 33, "label": "D"}],
    "relations": [
        {"child_span": {"start": 16, "end": 33}, "head_span": {"start": 0, "end": 14}, "label": ""}
    ],
}


BASE_RECORDS = {
    "bondscope-jsonl": [BONDSCOPE_RECORD],
    "r1-json": [R1_RECORD, SAMPLES_RECORD],
    "chat": [CHAT_RECORD],
    "label-studio": [LABEL_STUDIO_RECORD],
    "doccano": [DOCCANO_RECORD],
    "prodigy": [PRODIGY_RECORD],
    "step-lists": [STEP_RECORD],
    "text": [R1_RECORD, STEP_RECORD, BONDSCOPE_RECORD],
    "thought-anchors": [R1_RECORD, STEP_RECORD, BONDSCOPE_RECORD],
}


@st.composite
def mutated_records(draw: st.DrawFn, importer: str) -> Any:
    """A valid record for the importer with one value, anywhere in it, replaced or removed."""
    record = json.loads(json.dumps(draw(st.sampled_from(BASE_RECORDS[importer]))))
    container: Any = record
    while True:
        keys = list(container) if isinstance(container, dict) else list(range(len(container)))
        if not keys:
            return record
        key = draw(st.sampled_from(keys))
        child = container[key]
        if isinstance(child, dict | list) and child and draw(st.booleans()):
            container = child
            continue
        if isinstance(container, dict) and draw(st.booleans()):
            del container[key]
        else:
            container[key] = draw(ANY_TEXT | ANY_JSON)  # strings often: they reach the store
        return record


def encode(value: Any, ascii_only: bool) -> bytes:
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


@st.composite
def files(draw: st.DrawFn, importer: str) -> tuple[str, bytes]:
    """(suffix, content): random bytes, or JSON values and near-valid records as one document,
    as JSON Lines or as an array."""
    kind = draw(st.sampled_from(["bytes", "json", "lines", "lines", "array"]))
    if kind == "bytes":
        return draw(st.sampled_from([".jsonl", ".json"])), draw(st.binary(max_size=200))
    values = st.one_of(mutated_records(importer), mutated_records(importer), ANY_JSON)
    ascii_only = draw(st.booleans())
    if kind == "json":
        return ".json", encode(draw(values), ascii_only)
    items = draw(st.lists(values, min_size=1, max_size=4))
    if kind == "lines":
        return ".jsonl", b"\n".join(encode(item, ascii_only) for item in items) + b"\n"
    return ".json", b"[\n" + b",\n".join(encode(item, ascii_only) for item in items) + b"\n]"


@pytest.fixture(scope="module")
def project(workdir: Path) -> Path:
    """A project holding a trace, shared by the examples (each compares before and after)."""
    seed = workdir / "seed.jsonl"
    seed.write_text(json.dumps(BONDSCOPE_RECORD) + "\n", encoding="utf-8")
    db = workdir / "project.bondscope"
    with Store(db) as store:
        import_paths(store, Plugins(load_entry_points=False), [seed])
    return db


def import_or_input_error(project: Path, target: Path, importer: str) -> None:
    before = dump(project)
    try:
        with Store(project) as store:
            import_paths(store, Plugins(load_entry_points=False), [target], format=importer)
    except InputError as error:
        assert error.path is not None
        assert "\n" not in str(error) and "\r" not in str(error)
        assert dump(project) == before


@settings(FUZZ, max_examples=160)
@given(
    case=st.sampled_from(FILE_IMPORTERS).flatmap(
        lambda importer: st.tuples(st.just(importer), files(importer))
    ),
)
def test_arbitrary_files(workdir: Path, project: Path, case: tuple[str, tuple[str, bytes]]) -> None:
    importer, (suffix, content) = case
    with tempfile.TemporaryDirectory(dir=workdir) as folder:
        target = Path(folder) / f"input{suffix}"
        target.write_bytes(content)
        import_or_input_error(project, target, importer)


@st.composite
def chunk_lists(draw: st.DrawFn) -> Any:
    """Thought Anchors chunks, some of them well formed."""
    chunk = st.fixed_dictionaries(
        {"chunk": st.sampled_from(["Hm.", "So 4.", "Wait", "x"]) | ANY_TEXT},
        optional={
            "chunk_idx": st.integers(-2, 4) | ANY_JSON,
            "function_tags": st.lists(st.sampled_from(["self_checking", "plan_generation"]))
            | ANY_JSON,
            "depends_on": st.lists(st.sampled_from(["0", "1", 0, 1, "a"])) | ANY_JSON,
        },
    )
    return draw(st.lists(chunk | ANY_JSON, max_size=4) | ANY_JSON)


@FUZZ
@given(
    base=st.fixed_dictionaries({"solution": st.just("Hm.\n\nSo 4.\n</think>4") | ANY_TEXT})
    | ANY_JSON,
    chunks=chunk_lists(),
    ascii_only=st.booleans(),
    garbage=st.none() | st.binary(max_size=40),
)
def test_arbitrary_thought_anchors_folders(
    workdir: Path, project: Path, base: Any, chunks: Any, ascii_only: bool, garbage: bytes | None
) -> None:
    with tempfile.TemporaryDirectory(dir=workdir) as folder:
        target = Path(folder) / "problem_1"
        target.mkdir()
        (target / "base_solution.json").write_bytes(encode(base, ascii_only))
        (target / "chunks_labeled.json").write_bytes(
            garbage if garbage is not None else encode(chunks, ascii_only)
        )
        import_or_input_error(project, target, "thought-anchors")
