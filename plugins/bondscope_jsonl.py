"""`bondscope-jsonl` version 1: our lossless interchange format (docs/formats.md).

One JSON object per line. The importer accepts exactly what the exporter writes and rejects
unknown fields, so a typo such as `label` for `labels` is an error rather than silent data loss.
The exporter writes every field of every record and of every label, null where there is no value,
so two exports concatenate into one file (and one table) with the same schema.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from bondscope import hookimpl
from bondscope.domain import (
    BOND_TYPE_ALIASES,
    Bond,
    InputError,
    Label,
    Step,
    Trace,
    annotators_object,
    parse_annotators,
)
from bondscope.jsonio import JSONL_SUFFIXES, first_record, iter_jsonl

FORMAT = "bondscope-jsonl/1"
FIELDS = (
    "format",
    "id",
    "source",
    "model",
    "question",
    "text",
    "answer",
    "steps",
    "labels",
    "bonds",
    "meta",
    "annotators",
)


class BondscopeJsonl:
    name = "bondscope-jsonl"
    description = "Bondscope's own JSON Lines format, lossless both ways"
    default_suffix = ".jsonl"

    # -- import ------------------------------------------------------------------------------

    def detect(self, path: Path) -> bool:
        if not path.is_file() or path.suffix.lower() not in JSONL_SUFFIXES | {".json"}:
            return False
        return self.recognizes(path)

    def recognizes(self, path: Path) -> bool:
        record = first_record(path)
        return isinstance(record, dict) and str(record.get("format", "")).startswith(
            "bondscope-jsonl"
        )

    def read(self, path: Path, options: dict[str, str]) -> Iterator[Trace]:
        empty = True
        for line, record in iter_jsonl(path):
            empty = False
            try:
                trace = trace_from_record(record)
            except InputError as error:
                raise error.located(path, line) from None
            trace.line = line
            yield trace
        if empty:
            raise InputError("file is empty", path)

    # -- export ------------------------------------------------------------------------------

    def export(self, traces: Iterable[Trace], out: Path) -> None:
        with open(out, "w", encoding="utf-8", newline="\n") as handle:
            for trace in traces:
                handle.write(json.dumps(record_from_trace(trace), ensure_ascii=False))
                handle.write("\n")


def record_from_trace(trace: Trace) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "id": trace.id,
        "source": trace.source,
        "model": trace.model,
        "question": trace.question,
        "text": trace.text,
        "answer": trace.answer,
        "steps": [{"start": s.start, "end": s.end} for s in trace.steps or []],
        "labels": [
            {
                "step": lb.step,
                "behavior": lb.behavior,
                "annotator": lb.annotator,
                "confidence": lb.confidence,
                "seconds": lb.seconds,
                "created_at": lb.created_at,
            }
            for lb in trace.labels
        ],
        "bonds": [
            {"from": b.source, "to": b.target, "type": b.type, "annotator": b.annotator}
            for b in trace.bonds
        ],
        "meta": trace.meta,
        "annotators": annotators_object(trace.annotator_kinds),
    }


def trace_from_record(record: Any) -> Trace:
    """Parse one record; types are checked here, spans and indices by validate_trace."""
    if not isinstance(record, dict):
        raise InputError(f"expected a JSON object, got {type(record).__name__}")
    unknown = sorted(set(record) - set(FIELDS))
    if unknown:
        raise InputError(f"unknown field (v1 has: {', '.join(FIELDS)})", field=unknown[0])
    if "format" in record and record["format"] != FORMAT:
        raise InputError(
            f"unsupported format {record['format']!r} (expected {FORMAT!r})", field="format"
        )
    for required in ("id", "text"):
        if required not in record:
            raise InputError("missing", field=required)
    steps = None
    if "steps" in record:
        steps = [
            Step(_get(item, "start", int, f"steps[{i}]"), _get(item, "end", int, f"steps[{i}]"))
            for i, item in enumerate(_list(record["steps"], "steps"))
        ]
    labels = [
        Label(
            _get(item, "step", int, f"labels[{i}]"),
            _get(item, "behavior", str, f"labels[{i}]"),
            _get(item, "annotator", str, f"labels[{i}]"),
            _get(item, "confidence", float, f"labels[{i}]", optional=True),
            _get(item, "seconds", float, f"labels[{i}]", optional=True),
            _get(item, "created_at", str, f"labels[{i}]", optional=True),
        )
        for i, item in enumerate(_list(record.get("labels", []), "labels"))
    ]
    bonds = []
    for i, item in enumerate(_list(record.get("bonds", []), "bonds")):
        kind = _get(item, "type", str, f"bonds[{i}]")
        bonds.append(
            Bond(
                _get(item, "from", int, f"bonds[{i}]"),
                _get(item, "to", int, f"bonds[{i}]"),
                BOND_TYPE_ALIASES.get(kind.lower(), kind),
                _get(item, "annotator", str, f"bonds[{i}]"),
            )
        )
    return Trace(
        id=_str(record, "id"),
        text=_str(record, "text"),
        question=_str(record, "question"),
        model=_str(record, "model"),
        source=_str(record, "source"),
        answer=_str(record, "answer"),
        steps=steps,
        labels=labels,
        bonds=bonds,
        meta=record.get("meta") if record.get("meta") is not None else {},
        annotator_kinds=parse_annotators(record.get("annotators")),
    )


def _str(record: dict[str, Any], key: str) -> str:
    value = record.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InputError(f"must be a string, got {type(value).__name__}", field=key)
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise InputError(f"must be a list, got {type(value).__name__}", field=where)
    return value


def _get(item: Any, key: str, kind: type, where: str, optional: bool = False) -> Any:
    if not isinstance(item, dict):
        raise InputError(f"must be an object, got {type(item).__name__}", field=where)
    if key not in item:
        if optional:
            return None
        raise InputError("missing", field=f"{where}.{key}")
    value = item[key]
    if value is None and optional:
        return None
    if kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        try:
            value = float(value) if ok else value
        except OverflowError:  # an integer beyond float's range
            raise InputError("number too large", field=f"{where}.{key}") from None
    else:
        ok = isinstance(value, kind) and not isinstance(value, bool)
    if not ok:
        raise InputError(
            f"must be {kind.__name__}, got {type(value).__name__}", field=f"{where}.{key}"
        )
    return value


@hookimpl
def register_importers(register):
    register(BondscopeJsonl())


@hookimpl
def register_exporters(register):
    register(BondscopeJsonl())
