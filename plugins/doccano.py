"""doccano JSONL, both ways: sequence-labeling records with entities and relations.

Each line is `{"text", "entities": [{"id", "label", "start_offset", "end_offset"}], "relations":
[{"id", "from_id", "to_id", "type"}]}`; doccano keeps other keys as metadata, so the trace's fields
(`trace_id`, `question`, `model`, `source`, `answer`, `steps`, `meta`) and the `annotator` travel
beside them. doccano holds one annotator per record: the export writes one line per annotator of
a trace (consecutive lines), and the import joins consecutive lines of one trace again. The older
`"label": [[start, end, "D"], ...]` form is read too. An entity with a null label is a bond's end
that the annotator did not label. Without an `annotator` key the labels are
those of `-o annotator=NAME` (default `doccano`).
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
    TRACE_FIELDS,
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

DEFAULT_ANNOTATOR = "doccano"


def is_doccano(record: Any) -> bool:
    return (
        isinstance(record, dict)
        and isinstance(record.get("text"), str)
        and (isinstance(record.get("entities"), list) or isinstance(record.get("label"), list))
        and "format" not in record
        and "spans" not in record
    )


class Doccano:
    name = "doccano"
    description = "doccano JSONL: entities (steps) with labels, relations (bonds)"
    default_suffix = ".jsonl"

    def detect(self, path: Path) -> bool:
        return path.is_file() and path.suffix.lower() in JSONL_SUFFIXES and self.recognizes(path)

    def recognizes(self, path: Path) -> bool:
        return is_doccano(first_record(path))

    def read(self, path: Path, options: dict[str, str]) -> Iterator[Trace]:
        default = options.get("annotator", DEFAULT_ANNOTATOR)
        empty = True
        records = iter_json_records(path)
        for n, lines in enumerate(
            consecutive(records, lambda r: (r.get("trace_id"), r.get("text")))
        ):
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
        if not isinstance(first.get("text"), str):
            raise InputError("missing or not a string", line=first_line, field="text")
        parsed = [
            (line, record, on_line(_entities, record, line, line=line)) for line, record in lines
        ]
        if "steps" in first:
            steps = given_steps(first["steps"], "steps")
        else:
            spans = [(s, e) for _, _, entities in parsed for _, s, e, _, _ in entities]
            steps = steps_from_spans(spans, "entities") or None
        index_of = {(s.start, s.end): k for k, s in enumerate(steps or [])}
        labels, bonds = [], []
        for line, record, entities in parsed:
            annotator = record.get("annotator") or default_annotator
            if not isinstance(annotator, str):
                raise InputError("must be a string", line=line, field="annotator")
            step_of, behavior_at = {}, {}
            for entity_id, start, end, label, confidence in entities:
                if (start, end) not in index_of:
                    raise InputError(
                        f"entity [{start}, {end}) is not one of steps", line=line, field="entities"
                    )
                k = index_of[(start, end)]
                step_of[entity_id] = k
                if label is None:  # a bond's end that this annotator did not label
                    continue
                behavior_at[k] = on_line(behavior_code, label, "entities.label", line=line)
                labels.append(Label(k, behavior_at[k], annotator, confidence))
            relations = record.get("relations") or []
            if not isinstance(relations, list):
                raise InputError("must be a list", line=line, field="relations")
            for i, relation in enumerate(relations):
                where = f"relations[{i}]"
                if not isinstance(relation, dict):
                    raise InputError("must be an object", line=line, field=where)
                ends = []
                for end in ("from_id", "to_id"):
                    if relation.get(end) not in step_of:
                        raise InputError(
                            "names no entity of this line", line=line, field=f"{where}.{end}"
                        )
                    ends.append(step_of[relation[end]])
                kind = on_line(
                    bond_type,
                    relation.get("type"),
                    behavior_at.get(ends[0]),
                    f"{where}.type",
                    line=line,
                )
                bonds.append(Bond(ends[0], ends[1], kind, annotator))
        meta = first.get("meta") if isinstance(first.get("meta"), dict) else {}
        extra = {
            k: v
            for k, v in first.items()
            if k
            not in {"text", "steps", "meta", "entities", "label", "relations", "annotator", "id"}
            and k not in TRACE_FIELDS
        }
        trace_id = first.get("trace_id", first.get("id"))
        trace = Trace(
            id=str(trace_id) if trace_id is not None else default_id,
            text=first["text"],
            question=text_field(first, "question"),
            model=text_field(first, "model") or options.get("model", ""),
            source=text_field(first, "source") or options.get("source", "") or "doccano",
            answer=text_field(first, "answer"),
            steps=steps,
            labels=labels,
            bonds=bonds,
            meta={**extra, **meta},
            line=first_line,
            annotator_kinds=on_line(parse_annotators, first.get("annotators"), line=first_line),
        )
        return trace

    def export(self, traces: Iterable[Trace], out: Path) -> None:
        with open(out, "w", encoding="utf-8", newline="\n") as handle:
            for trace in traces:
                for record in records_of(trace):
                    handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def records_of(trace: Trace) -> list[dict[str, Any]]:
    """One line per annotator (one line without labels for a trace nobody labeled)."""
    steps = trace.steps or []
    base = {"text": trace.text, **trace_fields(trace)}
    lines = []
    for annotation in annotations(trace):
        entities = []
        for k in annotation.steps:  # labeled steps, and bond ends (label null) if unlabeled
            label = annotation.labels.get(k)
            entities.append(
                {
                    "id": k,
                    "label": label.behavior if label else None,
                    "start_offset": steps[k].start,
                    "end_offset": steps[k].end,
                    **(confidence_field(label) if label else {}),
                }
            )
        relations = [
            {"id": i, "from_id": b.source, "to_id": b.target, "type": b.type}
            for i, b in enumerate(annotation.bonds)
        ]
        lines.append(
            {
                **base,
                "annotator": annotation.annotator,
                "entities": entities,
                "relations": relations,
            }
        )
    return lines or [{**base, "entities": [], "relations": []}]


def _entities(record: dict[str, Any], line: int) -> list[tuple[Any, int, int, Any, Any]]:
    """(id, start, end, label, confidence) of each entity, from `entities` or `label` triples."""
    found = []
    if isinstance(record.get("entities"), list):
        for i, entity in enumerate(record["entities"]):
            where = f"entities[{i}]"
            if not isinstance(entity, dict):
                raise InputError("must be an object", line=line, field=where)
            start, end = span(entity.get("start_offset"), entity.get("end_offset"), where)
            confidence = on_line(confidence_of, entity, where, line=line)
            found.append((entity.get("id", i), start, end, entity.get("label"), confidence))
    elif record.get("label") is not None:
        if not isinstance(record["label"], list):
            raise InputError("must be a list of [start, end, label]", line=line, field="label")
        for i, triple in enumerate(record["label"]):
            where = f"label[{i}]"
            if not isinstance(triple, list) or len(triple) != 3:
                raise InputError("must be [start, end, label]", line=line, field=where)
            start, end = span(triple[0], triple[1], where)
            found.append((i, start, end, triple[2], None))
    return found


@hookimpl
def register_importers(register):
    register(Doccano())


@hookimpl
def register_exporters(register):
    register(Doccano())
