"""The vocabulary of Bondscope: traces, steps, labels, bonds, and the errors raised on bad input.

These are plain dataclasses with no I/O, so importers, exporters, the store and the app all speak
the same language. See docs/formats.md for the `bondscope-jsonl` interchange format built on them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any


class Behavior(StrEnum):
    """The behavior of the move into a step (paper.md §1.1)."""

    NORMAL = "N"
    DEEP = "D"
    REFLECTION = "R"
    EXPLORATION = "E"


BEHAVIORS: tuple[str, ...] = tuple(b.value for b in Behavior)
BEHAVIOR_NAMES = {
    "N": "normal operation",
    "D": "deep reasoning",
    "R": "self-reflection",
    "E": "self-exploration",
}


class BondType(StrEnum):
    """Typed edges between steps; `from` is the later step, `to` the earlier one it bonds to."""

    COVALENT = "covalent"
    HYDROGEN = "hydrogen"
    VDW = "vdw"


BOND_TYPES: tuple[str, ...] = tuple(b.value for b in BondType)
BOND_TYPE_ALIASES = {
    "covalent": "covalent",
    "hydrogen": "hydrogen",
    "vdw": "vdw",
    "van der waals": "vdw",
    "van-der-waals": "vdw",
    "van_der_waals": "vdw",
}
BOND_FOR_BEHAVIOR = {"D": "covalent", "R": "hydrogen", "E": "vdw"}
ANNOTATOR_KINDS = ("person", "model")
MODEL_PREFIX = "model:"  # pre-labelers are stored as `model:NAME@VERSION`
ANNOTATOR_FIELDS = ("kind",)  # what an entry of the interchange `annotators` object holds


def is_model_annotator(name: str, kind: str | None = None) -> bool:
    """A model (a pre-labeler, an LLM) rather than a person: the kind when one is known (declared
    by an importer, or stored), else the name (`model:...` is a model, any other name a person).

    The store gives every annotator its kind by this rule when it first appears, so a query
    reads `annotators.kind = 'model'`. docs/formats.md states the rule for importers.
    """
    if kind is not None:
        return kind == "model"
    return name.startswith(MODEL_PREFIX)


class RowNumber(int):
    """A row of a table file (Parquet): error messages say `row N` instead of `:N`."""


class InputError(ValueError):
    """Bad input, reported as one line naming the file, the line and the field."""

    def __init__(
        self,
        message: str,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path or "<input>"
        if isinstance(self.line, RowNumber):
            where += f": row {self.line}"
        elif self.line is not None:
            where += f":{self.line}"
        if self.field:
            where += f": field '{self.field}'"
        # One line, even when a file name, a field name or a message holds a line break.
        return f"{where}: {self.message}".replace("\r", "\\r").replace("\n", "\\n")

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:
        """Pickles with its location (Ray workers send their errors to the driver)."""
        return type(self), (self.message, self.path, self.line, self.field)

    def located(self, path: str | Path, line: int | None = None) -> InputError:
        """Fill in the location when the error was raised by code that did not know it."""
        return InputError(
            self.message,
            self.path or path,
            self.line if self.line is not None else line,
            self.field,
        )


def annotators_object(kinds: dict[str, str]) -> dict[str, dict[str, str]]:
    """{name: kind} as the interchange `annotators` object: `{"alice": {"kind": "person"}}`."""
    return {name: {"kind": kind} for name, kind in kinds.items()}


def parse_annotators(value: Any) -> dict[str, str]:
    """The interchange `annotators` object as {name: kind}; absent or null: no declarations."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"must be an object, got {type(value).__name__}", field="annotators")
    kinds = {}
    for name, entry in value.items():
        where = f"annotators.{name}"
        unknown = sorted(set(entry) - set(ANNOTATOR_FIELDS)) if isinstance(entry, dict) else []
        if unknown:
            fields = ", ".join(ANNOTATOR_FIELDS)
            raise InputError(f"unknown field (v1 has: {fields})", field=f"{where}.{unknown[0]}")
        if not isinstance(entry, dict):
            raise InputError(f"must be an object, got {type(entry).__name__}", field=where)
        if "kind" not in entry:
            raise InputError("missing", field=f"{where}.kind")
        if not isinstance(entry["kind"], str):
            kind = type(entry["kind"]).__name__
            raise InputError(f"must be str, got {kind}", field=f"{where}.kind")
        kinds[name] = entry["kind"]
    return kinds


@dataclass(frozen=True, slots=True)
class Step:
    """A character span [start, end) into the trace's text."""

    start: int
    end: int


@dataclass(slots=True)
class Label:
    step: int
    behavior: str
    annotator: str
    confidence: float | None = None
    seconds: float | None = None  # time the annotator spent on the step, when it was measured
    created_at: str | None = None  # ISO 8601 time of the label; None: the time of the import


@dataclass(slots=True)
class Bond:
    source: int
    target: int
    type: str
    annotator: str


@dataclass(slots=True)
class Trace:
    """One model response to one question, with optional steps, labels and bonds."""

    id: str
    text: str
    question: str = ""
    model: str = ""
    source: str = ""
    answer: str = ""
    steps: list[Step] | None = None
    labels: list[Label] = field(default_factory=list)
    bonds: list[Bond] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    # "person" or "model" per annotator named in labels or bonds; names not here follow the
    # store's rule (`model:...` is a model, anything else a person).
    annotator_kinds: dict[str, str] = field(default_factory=dict)
    # Where the record starts in its file; only used to locate error messages.
    line: int | None = field(default=None, compare=False, repr=False)

    @property
    def content_hash(self) -> str:
        return content_hash(self.question, self.text, self.model)


def content_hash(question: str, text: str, model: str) -> str:
    """Identity of a trace for deduplication: the same model saying the same thing to the same
    question is the same trace, whatever file or id it came from."""
    digest = hashlib.sha256()
    for part in (model, question, text):
        encoded = part.encode("utf-8", "surrogatepass")
        digest.update(len(encoded).to_bytes(8, "little"))
        digest.update(encoded)
    return digest.hexdigest()


def thinking_span(text: str) -> tuple[int, int]:
    """The thinking part of a response: between `<think>` and `</think>` when they are present.

    Segmenters split only this part, so the final answer after `</think>` never becomes a step.
    """
    start = 0
    open_tag = text.find("<think>")
    close_tag = text.find("</think>")
    if open_tag != -1 and (close_tag == -1 or open_tag < close_tag):
        start = open_tag + len("<think>")
    end = close_tag if close_tag != -1 and close_tag >= start else len(text)
    return start, end


def validate_trace(trace: Trace) -> None:
    """Raise InputError (with the field named) for anything the store must not hold."""
    if not isinstance(trace.id, str) or not trace.id:
        raise InputError("must be a non-empty string", field="id")
    if not isinstance(trace.text, str) or not trace.text or trace.text.isspace():
        raise InputError("must be a non-empty string", field="text")
    for name in ("question", "model", "source", "answer"):
        if not isinstance(getattr(trace, name), str):
            raise InputError("must be a string", field=name)
    if not isinstance(trace.meta, dict):
        raise InputError("must be an object", field="meta")
    for name in ("id", "text", "question", "model", "source", "answer"):
        _check_unicode(getattr(trace, name), name)
    if trace.meta:
        try:
            encoded = json.dumps(trace.meta, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as error:  # NaN/Infinity would be stored as invalid JSON
            raise InputError(f"must hold only JSON values ({error})", field="meta") from None
        _check_unicode(encoded, "meta")
    n_steps = validate_steps(trace.steps, len(trace.text)) if trace.steps is not None else 0
    for i, label in enumerate(trace.labels):
        where = f"labels[{i}]"
        if trace.steps is None:
            raise InputError("labels need steps", field=where)
        _check_index(label.step, n_steps, f"{where}.step")
        if label.behavior not in BEHAVIORS:
            raise InputError(
                f"behavior {label.behavior!r} is not one of {', '.join(BEHAVIORS)}",
                field=f"{where}.behavior",
            )
        _check_name(label.annotator, f"{where}.annotator")
        if label.confidence is not None and (
            isinstance(label.confidence, bool)
            or not isinstance(label.confidence, int | float)
            or not 0.0 <= label.confidence <= 1.0
        ):
            raise InputError("must be null or a number in [0, 1]", field=f"{where}.confidence")
        if label.seconds is not None and (
            isinstance(label.seconds, bool)
            or not isinstance(label.seconds, int | float)
            or not 0.0 <= label.seconds < float("inf")
        ):
            raise InputError("must be null or a number >= 0", field=f"{where}.seconds")
        if label.created_at is not None:
            _check_timestamp(label.created_at, f"{where}.created_at")
    for name, kind in trace.annotator_kinds.items():
        _check_name(name, f"annotators.{name}")
        if kind not in ANNOTATOR_KINDS:
            raise InputError(
                f"kind {kind!r} is not one of {', '.join(ANNOTATOR_KINDS)}",
                field=f"annotators.{name}.kind",
            )
    for i, bond in enumerate(trace.bonds):
        where = f"bonds[{i}]"
        if trace.steps is None:
            raise InputError("bonds need steps", field=where)
        _check_index(bond.source, n_steps, f"{where}.from")
        _check_index(bond.target, n_steps, f"{where}.to")
        if bond.source == bond.target:
            raise InputError("a bond cannot join a step to itself", field=f"{where}.to")
        if bond.type not in BOND_TYPES:
            raise InputError(
                f"type {bond.type!r} is not one of {', '.join(BOND_TYPES)}", field=f"{where}.type"
            )
        _check_name(bond.annotator, f"{where}.annotator")


def validate_steps(steps: list[Step], text_length: int) -> int:
    """Spans must be non-empty, inside the text, in order and non-overlapping."""
    previous_end = 0
    for i, step in enumerate(steps):
        where = f"steps[{i}]"
        for name in ("start", "end"):
            value = getattr(step, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InputError("must be an integer", field=f"{where}.{name}")
        if step.start < 0 or step.end > text_length:
            raise InputError(
                f"span [{step.start}, {step.end}) is outside the text (length {text_length})",
                field=where,
            )
        if step.end <= step.start:
            raise InputError(f"span [{step.start}, {step.end}) is empty or reversed", field=where)
        if step.start < previous_end:
            raise InputError(
                f"span [{step.start}, {step.end}) overlaps or precedes the previous step "
                f"(which ends at {previous_end})",
                field=where,
            )
        previous_end = step.end
    return len(steps)


def _check_index(value: object, n: int, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError("must be an integer step index", field=where)
    if not 0 <= value < n:
        raise InputError(f"step {value} is out of range (trace has {n} steps)", field=where)


def _check_name(value: object, where: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InputError("must be a non-empty string", field=where)
    _check_unicode(value, where)


def _check_timestamp(value: object, where: str) -> None:
    """Label times are ISO 8601 strings, so they sort and compare as the store writes them."""
    if not isinstance(value, str):
        raise InputError("must be null or an ISO 8601 time string", field=where)
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"{value!r} is not an ISO 8601 time", field=where) from None


def _check_unicode(value: str, where: str) -> None:
    """JSON's \\ud800 escapes decode to lone surrogates, which UTF-8 (and SQLite) cannot hold."""
    if value.isascii():
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InputError(
            f"unpaired surrogate {value[error.start]!r} at character {error.start} "
            "is not valid Unicode",
            field=where,
        ) from None
