"""Labels as character spans, the shape annotation tools trade (Label Studio, doccano, Prodigy).

Their records hold a text, labeled spans and relations between spans; the importers and exporters
of those tools share the mapping kept here: label names to behaviors, relation labels to bond
types, spans to steps, and the trace fields that travel beside the text (docs/formats.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from bondscope.domain import (
    BEHAVIOR_NAMES,
    BEHAVIORS,
    BOND_FOR_BEHAVIOR,
    BOND_TYPE_ALIASES,
    Bond,
    InputError,
    Label,
    Step,
    Trace,
    annotators_object,
)

# Names a team may have given the labels in its tool's config, besides N, D, R, E.
BEHAVIOR_ALIASES = {
    **{code.lower(): code for code in BEHAVIORS},
    **{name: code for code, name in BEHAVIOR_NAMES.items()},
    "normal": "N",
    "deep": "D",
    "reflection": "R",
    "exploration": "E",
    "self_reflection": "R",
    "self_exploration": "E",
    "deep_reasoning": "D",
}
TRACE_FIELDS = ("trace_id", "question", "model", "source", "answer", "annotators")


def behavior_code(value: Any, where: str) -> str:
    """N, D, R or E for a label as a tool stores it (the letter or the behavior's name)."""
    code = BEHAVIOR_ALIASES.get(value.strip().lower()) if isinstance(value, str) else None
    if code is None:
        raise InputError(
            f"label {value!r} is not a behavior (N, D, R, E or their names)", field=where
        )
    return code


def bond_type(value: Any, source_behavior: str | None, where: str) -> str:
    """A relation's label as a bond type; an unlabeled relation takes the type that the later
    step's behavior implies (R: hydrogen, E: vdw, else covalent)."""
    if value is None or value == "":
        return BOND_FOR_BEHAVIOR.get(source_behavior or "", "covalent")
    kind = BOND_TYPE_ALIASES.get(value.strip().lower()) if isinstance(value, str) else None
    if kind is None:
        raise InputError(f"relation label {value!r} is not a bond type", field=where)
    return kind


def confidence_field(label: Label) -> dict[str, float]:
    """`{"confidence": c}` for a model's label, {} for one without: an extra key on a span."""
    return {} if label.confidence is None else {"confidence": label.confidence}


def confidence_of(item: dict[str, Any], where: str) -> float | None:
    value = item.get("confidence")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError("must be a number", field=f"{where}.confidence")
    return float(value)


def span(start: Any, end: Any, where: str) -> tuple[int, int]:
    for name, value in (("start", start), ("end", end)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError("must be an integer character offset", field=f"{where}.{name}")
    return start, end


def steps_from_spans(spans: Iterable[tuple[int, int]], where: str) -> list[Step]:
    """The distinct spans in order as steps; two different spans that overlap are an error."""
    steps = [Step(s, e) for s, e in sorted(set(spans))]
    for previous, step in zip(steps, steps[1:], strict=False):
        if step.start < previous.end:
            raise InputError(
                f"spans [{previous.start}, {previous.end}) and [{step.start}, {step.end}) overlap",
                field=where,
            )
    return steps


def given_steps(value: Any, where: str) -> list[Step]:
    """Our own `steps` list of [start, end] pairs, written beside the tool's spans."""
    if not isinstance(value, list):
        raise InputError("must be a list of [start, end] pairs", field=where)
    steps = []
    for i, pair in enumerate(value):
        if not isinstance(pair, list) or len(pair) != 2:
            raise InputError("must be a [start, end] pair", field=f"{where}[{i}]")
        steps.append(Step(*span(pair[0], pair[1], f"{where}[{i}]")))
    return steps


def text_field(record: dict[str, Any], key: str, where: str = "") -> str:
    value = record.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(f"must be a string, got {type(value).__name__}", field=where + key)
    return value


@dataclass
class Annotation:
    """One annotator's labels and bonds on one trace, by step index."""

    annotator: str
    labels: dict[int, Label] = field(default_factory=dict)
    bonds: list[Bond] = field(default_factory=list)

    @property
    def steps(self) -> list[int]:
        """The steps this annotation mentions: labeled, or an end of a bond."""
        ends = {b.source for b in self.bonds} | {b.target for b in self.bonds}
        return sorted(set(self.labels) | ends)


def annotations(trace: Trace) -> list[Annotation]:
    """The trace's labels and bonds grouped by annotator, in order of first appearance."""
    found: dict[str, Annotation] = {}
    for label in trace.labels:
        found.setdefault(label.annotator, Annotation(label.annotator)).labels[label.step] = label
    for bond in trace.bonds:
        found.setdefault(bond.annotator, Annotation(bond.annotator)).bonds.append(bond)
    return list(found.values())


def trace_fields(trace: Trace) -> dict[str, Any]:
    """What travels beside the text so a trace comes back whole (docs/formats.md)."""
    return {
        "trace_id": trace.id,
        "question": trace.question,
        "model": trace.model,
        "source": trace.source,
        "answer": trace.answer,
        "steps": [[s.start, s.end] for s in trace.steps or []],
        "meta": trace.meta,
        "annotators": annotators_object(trace.annotator_kinds),
    }


def consecutive(
    records: Iterable[tuple[int, Any]], key: Any
) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    """Runs of consecutive records with the same `key(record)`: a trace's line per annotator."""
    run: list[tuple[int, dict[str, Any]]] = []
    for line, record in records:
        if not isinstance(record, dict):
            raise InputError(f"expected a JSON object, got {type(record).__name__}", line=line)
        if run and key(run[0][1]) != key(record):
            yield run
            run = []
        run.append((line, record))
    if run:
        yield run


def on_line(function: Any, *args: Any, line: int) -> Any:
    """`function(*args)`, its InputError placed on `line` (one trace may span several lines)."""
    try:
        return function(*args)
    except InputError as error:
        raise InputError(error.message, error.path, error.line or line, error.field) from None
