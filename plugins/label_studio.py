"""Label Studio task JSON, both ways: one task per trace, steps as labeled text regions.

Export: a JSON array of tasks. `data` holds the text and the trace's fields (with `steps`, so the
segmentation survives); each person's labels are one entry of `annotations` and each model's
(`model:...`) one entry of `predictions` (`model_version` = its name, `score` = confidence). A
labeled step is a `labels` region (`from_name` behavior, `to_name` text, value start/end/text/
labels); a bond is a `relation` from the later step's region to the earlier one, its label the
bond type. Import reads these files and Label Studio's own exports of a project with that config
(docs/formats.md has the config): cancelled annotations are skipped, steps are the regions when
the task has no `data.steps`, an unlabeled relation gets the type its later step's behavior implies.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from bondscope import hookimpl
from bondscope.domain import (
    MODEL_PREFIX,
    Bond,
    InputError,
    Label,
    Step,
    Trace,
    is_model_annotator,
    parse_annotators,
)
from bondscope.jsonio import first_record, iter_json_records
from bondscope.spanlabels import (
    TRACE_FIELDS,
    annotations,
    behavior_code,
    bond_type,
    given_steps,
    span,
    steps_from_spans,
    text_field,
    trace_fields,
)

FROM_NAME, TO_NAME = "behavior", "text"


def is_task(record: Any) -> bool:
    return (
        isinstance(record, dict)
        and isinstance(record.get("data"), dict)
        and isinstance(record["data"].get("text"), str)
    )


class LabelStudio:
    name = "label-studio"
    description = "Label Studio task JSON: steps as labeled regions, bonds as relations"
    default_suffix = ".json"

    # -- import ------------------------------------------------------------------------------

    def detect(self, path: Path) -> bool:
        return path.is_file() and path.suffix.lower() == ".json" and self.recognizes(path)

    def recognizes(self, path: Path) -> bool:
        return is_task(first_record(path))

    def read(self, path: Path, options: dict[str, str]) -> Iterator[Trace]:
        empty = True
        for n, (line, record) in enumerate(iter_json_records(path)):
            empty = False
            try:
                trace = task_trace(record, f"{path.stem}:{n}", options)
            except InputError as error:
                raise error.located(path, line) from None
            trace.line = line
            yield trace
        if empty:
            raise InputError("file is empty", path)

    # -- export ------------------------------------------------------------------------------

    def export(self, traces: Iterable[Trace], out: Path) -> None:
        with open(out, "w", encoding="utf-8", newline="\n") as handle:
            handle.write("[")
            for i, trace in enumerate(traces):
                handle.write(",\n" if i else "\n")
                handle.write(json.dumps(task(trace), ensure_ascii=False))
            handle.write("\n]\n")


def task(trace: Trace) -> dict[str, Any]:
    steps = trace.steps or []
    people, models = [], []
    for annotation in annotations(trace):
        result: list[dict[str, Any]] = []
        for index in annotation.steps:
            step, label = steps[index], annotation.labels.get(index)
            region: dict[str, Any] = {
                "id": f"s{index}",
                "from_name": FROM_NAME,
                "to_name": TO_NAME,
                "type": "labels",
                "value": {
                    "start": step.start,
                    "end": step.end,
                    "text": trace.text[step.start : step.end],
                    "labels": [label.behavior] if label else [],
                },
            }
            if label is not None and label.confidence is not None:
                region["score"] = label.confidence
            result.append(region)
        result += [
            {
                "type": "relation",
                "from_id": f"s{bond.source}",
                "to_id": f"s{bond.target}",
                "direction": "right",
                "labels": [bond.type],
            }
            for bond in annotation.bonds
        ]
        if is_model_annotator(
            annotation.annotator, trace.annotator_kinds.get(annotation.annotator)
        ):
            models.append({"model_version": annotation.annotator, "result": result})
        else:
            people.append({"created_username": annotation.annotator, "result": result})
    return {
        "data": {"text": trace.text, **trace_fields(trace)},
        "annotations": people,
        "predictions": models,
    }


def task_trace(record: Any, default_id: str, options: dict[str, str]) -> Trace:
    if not is_task(record):
        raise InputError("expected a task object with data.text", field="data.text")
    data = record["data"]
    text = data["text"]
    try:
        kinds = parse_annotators(data.get("annotators"))
    except InputError as error:
        raise InputError(error.message, field=f"data.{error.field}") from None
    entries = [
        ("annotations", i, entry, annotator_name(entry, f"annotations[{i}]"))
        for i, entry in enumerate(_list(record, "annotations"))
        if not (isinstance(entry, dict) and entry.get("was_cancelled"))
    ] + [
        ("predictions", i, entry, model_name(entry, f"predictions[{i}]", kinds))
        for i, entry in enumerate(_list(record, "predictions"))
    ]
    regions: list[tuple[str, list[dict[str, Any]]]] = []
    spans = []
    for kind, i, entry, annotator in entries:
        results = _list(entry, "result", f"{kind}[{i}].")
        regions.append((annotator, results))
        for j, item in enumerate(results):
            if isinstance(item, dict) and item.get("type") == "labels":
                value = item.get("value")
                if not isinstance(value, dict):
                    raise InputError("must be an object", field=f"{kind}[{i}].result[{j}].value")
                spans.append(span(value.get("start"), value.get("end"), f"{kind}[{i}].result[{j}]"))
    if "steps" in data:
        steps: list[Step] | None = given_steps(data["steps"], "data.steps")
    else:
        steps = steps_from_spans(spans, "annotations") or None
    index_of = {(s.start, s.end): k for k, s in enumerate(steps or [])}
    labels, bonds = [], []
    for (kind, i, _, annotator), (_, results) in zip(entries, regions, strict=True):
        region_step: dict[Any, int] = {}
        behavior_at: dict[int, str] = {}
        for j, item in enumerate(results):
            where = f"{kind}[{i}].result[{j}]"
            if not isinstance(item, dict):
                raise InputError("must be an object", field=where)
            if item.get("type") != "labels":
                continue
            value = item["value"]
            key = (value["start"], value["end"])
            if key not in index_of:
                raise InputError(f"region {list(key)} is not one of data.steps", field=where)
            region_step[item.get("id")] = index_of[key]
            names = value.get("labels") or []
            if not isinstance(names, list):
                raise InputError("must be a list", field=f"{where}.value.labels")
            if names:
                behavior = behavior_code(names[0], f"{where}.value.labels")
                behavior_at[index_of[key]] = behavior
                labels.append(Label(index_of[key], behavior, annotator, _score(item, where)))
        for j, item in enumerate(results):
            if isinstance(item, dict) and item.get("type") == "relation":
                where = f"{kind}[{i}].result[{j}]"
                ends = []
                for end in ("from_id", "to_id"):
                    if item.get(end) not in region_step:
                        raise InputError("names no labeled region", field=f"{where}.{end}")
                    ends.append(region_step[item[end]])
                source, target = ends if item.get("direction", "right") != "left" else ends[::-1]
                names = item.get("labels") or [None]
                kind_name = bond_type(names[0], behavior_at.get(source), f"{where}.labels")
                bonds.append(Bond(source, target, kind_name, annotator))
    meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
    extra = {k: v for k, v in data.items() if k not in {"text", "steps", "meta", *TRACE_FIELDS}}
    trace_id = data.get("trace_id", record.get("id"))
    return Trace(
        id=str(trace_id) if trace_id is not None else default_id,
        text=text,
        question=text_field(data, "question", "data."),
        model=text_field(data, "model", "data.") or options.get("model", ""),
        source=text_field(data, "source", "data.") or options.get("source", "") or "label-studio",
        answer=text_field(data, "answer", "data."),
        steps=steps,
        labels=labels,
        bonds=bonds,
        meta={**extra, **meta},
        annotator_kinds=kinds,
    )


def annotator_name(entry: Any, where: str) -> str:
    """A person: the exported username, else Label Studio's user (an e-mail or a user id)."""
    if not isinstance(entry, dict):
        raise InputError("must be an object", field=where)
    name = entry.get("created_username")
    if isinstance(name, str) and name.strip():
        return name
    user = entry.get("completed_by")
    if isinstance(user, dict):
        user = user.get("email") or user.get("id")
    if isinstance(user, str) and user.strip():
        return user
    if isinstance(user, int) and not isinstance(user, bool):
        return f"label-studio-user-{user}"
    return "label-studio"


def model_name(entry: Any, where: str, kinds: dict[str, str]) -> str:
    """A prediction's model: `model:` + its version, unless our export declared that name."""
    if not isinstance(entry, dict):
        raise InputError("must be an object", field=where)
    version = entry.get("model_version")
    name = str(version) if version not in (None, "") else "label-studio"
    return name if name.startswith(MODEL_PREFIX) or name in kinds else MODEL_PREFIX + name


def _list(record: dict[str, Any], key: str, prefix: str = "") -> list[Any]:
    value = record.get(key) or []
    if not isinstance(value, list):
        raise InputError(f"must be a list, got {type(value).__name__}", field=prefix + key)
    return value


def _score(item: dict[str, Any], where: str) -> float | None:
    score = item.get("score")
    if score is None:
        return None
    if isinstance(score, bool) or not isinstance(score, int | float):
        raise InputError("must be a number", field=f"{where}.score")
    return float(score)


@hookimpl
def register_importers(register):
    register(LabelStudio())


@hookimpl
def register_exporters(register):
    register(LabelStudio())
