"""Prodigy JSONL, both ways: `spans` (steps) with labels and `relations` (bonds).

Each line is a Prodigy task: `text`, `spans` [{start, end, label, token_start, token_end}],
`relations` [{head, child, head_span, child_span, label}], `answer`, `_annotator_id`, `meta`.
The export writes one line per annotator of a trace, with one Prodigy token per step (so spans and
relations refer to steps by token index, as Prodigy's relations UI wants) and the trace's fields
beside them (`trace_id`, `question`, `model`, `source`, `answer_text`, `steps`; `meta` is the
trace's meta). A bond is a relation whose `child` is the later step and `head` the earlier one.
The import joins consecutive lines of one trace; lines answered `reject` or `ignore` add no labels;
relations are matched to steps by their `head_span` / `child_span` offsets. Without
`_annotator_id`, the labels are those of `-o annotator=NAME` (default `prodigy`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from bondscope import hookimpl
from bondscope.domain import Bond, InputError, Label, Trace, parse_annotators
from bondscope.jsonio import JSONL_SUFFIXES, first_record, iter_json_records
from bondscope.spanlabels import (
    annotations,
    behavior_code,
    bond_type,
    confidence_field,
    confidence_of,
    consecutive,
    given_steps,
    on_line,
    span,
    steps_from_spans,
    text_field,
    trace_fields,
)

DEFAULT_ANNOTATOR = "prodigy"
OURS = {"text", "tokens", "spans", "relations", "answer", "answer_text", "_annotator_id", "meta",
        "trace_id", "question", "model", "source", "steps", "_input_hash", "_task_hash",
        "_session_id", "_view_id", "_timestamp", "annotators"}  # fmt: skip


def is_prodigy(record: Any) -> bool:
    return (
        isinstance(record, dict)
        and isinstance(record.get("text"), str)
        and isinstance(record.get("spans"), list)
        and "format" not in record
    )


class Prodigy:
    name = "prodigy"
    description = "Prodigy JSONL: spans (steps) with labels, relations (bonds)"
    default_suffix = ".jsonl"

    def detect(self, path: Path) -> bool:
        return path.is_file() and path.suffix.lower() in JSONL_SUFFIXES and self.recognizes(path)

    def recognizes(self, path: Path) -> bool:
        return is_prodigy(first_record(path))

    def read(self, path: Path, options: dict[str, str]) -> Iterator[Trace]:
        default = options.get("annotator", DEFAULT_ANNOTATOR)
        empty = True
        runs = consecutive(iter_json_records(path), lambda r: (r.get("trace_id"), r.get("text")))
        for n, lines in enumerate(runs):
            empty = False
            try:
                trace = self._trace(lines, f"{path.stem}:{n}", default, options)
            except InputError as error:
                raise error.located(path, error.line or lines[0][0]) from None
            yield trace
        if empty:
            raise InputError("file is empty", path)

    def _trace(
        self,
        lines: list[tuple[int, dict[str, Any]]],
        default_id: str,
        default_annotator: str,
        options: dict[str, str],
    ) -> Trace:
        first_line, first = lines[0]
        parsed = [(line, record, on_line(_spans, record, line=line)) for line, record in lines]
        if "steps" in first:
            steps = given_steps(first["steps"], "steps")
        else:
            spans = [(s, e) for _, _, found in parsed for s, e, _, _ in found]
            steps = steps_from_spans(spans, "spans") or None
        index_of = {(s.start, s.end): k for k, s in enumerate(steps or [])}
        labels, bonds = [], []
        for line, record, found in parsed:
            if record.get("answer", "accept") != "accept":
                continue
            annotator = record.get("_annotator_id") or default_annotator
            if not isinstance(annotator, str):
                raise InputError("must be a string", line=line, field="_annotator_id")
            behavior_at = {}
            for i, (start, end, label, confidence) in enumerate(found):
                if (start, end) not in index_of:
                    raise InputError("span is not one of steps", line=line, field=f"spans[{i}]")
                k = index_of[(start, end)]
                behavior_at[k] = on_line(behavior_code, label, f"spans[{i}].label", line=line)
                labels.append(Label(k, behavior_at[k], annotator, confidence))
            relations = record.get("relations") or []
            if not isinstance(relations, list):
                raise InputError("must be a list", line=line, field="relations")
            for i, relation in enumerate(relations):
                where = f"relations[{i}]"
                ends = []
                for end in ("child_span", "head_span"):
                    piece = relation.get(end) if isinstance(relation, dict) else None
                    if not isinstance(piece, dict):
                        raise InputError(
                            "missing or not an object", line=line, field=f"{where}.{end}"
                        )
                    key = on_line(
                        span, piece.get("start"), piece.get("end"), f"{where}.{end}", line=line
                    )
                    if key not in index_of:
                        raise InputError("is not one of steps", line=line, field=f"{where}.{end}")
                    ends.append(index_of[key])
                kind = on_line(
                    bond_type,
                    relation.get("label"),
                    behavior_at.get(ends[0]),
                    f"{where}.label",
                    line=line,
                )
                bonds.append(Bond(ends[0], ends[1], kind, annotator))
        meta = first.get("meta") if isinstance(first.get("meta"), dict) else {}
        extra = {k: v for k, v in first.items() if k not in OURS}
        trace_id = first.get("trace_id")
        return Trace(
            id=str(trace_id) if trace_id is not None else default_id,
            text=first["text"],
            question=on_line(text_field, first, "question", line=first_line),
            model=on_line(text_field, first, "model", line=first_line) or options.get("model", ""),
            source=on_line(text_field, first, "source", line=first_line)
            or options.get("source", "")
            or "prodigy",
            answer=on_line(text_field, first, "answer_text", line=first_line),
            steps=steps,
            labels=labels,
            bonds=bonds,
            meta={**extra, **meta},
            line=first_line,
            annotator_kinds=on_line(parse_annotators, first.get("annotators"), line=first_line),
        )

    def export(self, traces: Iterable[Trace], out: Path) -> None:
        with open(out, "w", encoding="utf-8", newline="\n") as handle:
            for trace in traces:
                for record in tasks_of(trace):
                    handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def tasks_of(trace: Trace) -> list[dict[str, Any]]:
    """One Prodigy task per annotator (one without spans for a trace nobody labeled)."""
    steps = trace.steps or []
    fields = trace_fields(trace)
    fields["answer_text"] = fields.pop("answer")
    tokens = [
        {"text": trace.text[s.start : s.end], "start": s.start, "end": s.end, "id": k, "ws": True}
        for k, s in enumerate(steps)
    ]

    def piece(k: int) -> dict[str, Any]:
        return {"start": steps[k].start, "end": steps[k].end, "token_start": k, "token_end": k}

    base = {"text": trace.text, "tokens": tokens, **fields}
    tasks = []
    for annotation in annotations(trace):
        spans = [
            {**piece(k), "label": label.behavior, **confidence_field(label)}
            for k, label in sorted(annotation.labels.items())
        ]
        relations = [
            {"child": b.source, "head": b.target, "child_span": piece(b.source),
             "head_span": piece(b.target), "label": b.type}
            for b in annotation.bonds
        ]  # fmt: skip
        tasks.append({**base, "spans": spans, "relations": relations, "answer": "accept",
                      "_annotator_id": annotation.annotator})  # fmt: skip
    return tasks or [{**base, "spans": [], "relations": []}]


def _spans(record: dict[str, Any]) -> list[tuple[int, int, Any, Any]]:
    if not isinstance(record.get("text"), str):
        raise InputError("missing or not a string", field="text")
    found = []
    for i, item in enumerate(record.get("spans") or []):
        if not isinstance(item, dict):
            raise InputError("must be an object", field=f"spans[{i}]")
        start, end = span(item.get("start"), item.get("end"), f"spans[{i}]")
        found.append((start, end, item.get("label"), confidence_of(item, f"spans[{i}]")))
    return found


@hookimpl
def register_importers(register):
    register(Prodigy())


@hookimpl
def register_exporters(register):
    register(Prodigy())
