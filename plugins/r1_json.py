"""R1-style records: a question and a response whose thinking is marked (`<think>`, Stratos tags,
gpt-oss harmony or custom tags; see bondscope.thinking).

Reads JSON Lines, a JSON array, a single object or Parquet rows, streamed. Field names are options
(defaults in DEFAULTS) and may be paths into nested records (`-o response_field=choices.0.message.
reasoning_content`). A list-valued response (`code: [str]`, `generations: [str]`) gives one trace
per item (`-o samples=all`, ids `<id>#<k>`) or only the first (`-o samples=first`). Correctness
fields (`score`, `is_correct`, `correct`; a list is read per sample) become `meta.correct`.
The trace's text is the response in Bondscope's `<think>` shape; only the thinking is segmented.
Without an answer field, the answer is the last `\\boxed{...}` after the thinking, or that text.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bondscope import hookimpl
from bondscope.domain import InputError, Trace
from bondscope.jsonio import first_record, iter_json_records
from bondscope.parquetio import PARQUET_SUFFIXES
from bondscope.thinking import (
    ThinkStyle,
    final_answer,
    has_thinking,
    normalized,
    parse_style,
)

DEFAULTS = {
    "question_field": "question,prompt,problem",
    "response_field": "response,solution,output,generation,generations,gen,code,completion",
    "id_field": "id",
    "model_field": "model,generator",
    "answer_field": "answer",
    "correct_field": "correct,is_correct,score",
    "model": "",
    "source": "",
    "samples": "all",
    "think": "auto",
}
SUFFIXES = {".json", ".jsonl", ".ndjson", *PARQUET_SUFFIXES}
TRUE_WORDS = {"true", "yes", "1", "correct"}
FALSE_WORDS = {"false", "no", "0", "incorrect", "wrong"}
MISSING = object()


def candidates(options: dict[str, str], key: str) -> list[str]:
    return [name.strip() for name in options.get(key, DEFAULTS[key]).split(",") if name.strip()]


def get_path(record: Any, path: str) -> Any:
    """`record[path]`, or the value at a dotted path (`choices.0.message.content`); MISSING."""
    if isinstance(record, dict) and path in record:
        return record[path]
    value = record
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return MISSING
    return value


def pick(record: Any, names: list[str]) -> tuple[str | None, Any]:
    """The first of `names` present in the record, and its value."""
    for name in names:
        value = get_path(record, name)
        if value is not MISSING:
            return name, value
    return None, None


def as_bool(value: Any) -> bool | None:
    """A correctness flag as True/False; None when the value does not read as one."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    return None


def _texts(value: Any) -> list[str] | None:
    """The response as samples: a string is one, a list of strings each; else None."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    return None


def response_field(
    record: dict[str, Any], options: dict[str, str], style: ThinkStyle
) -> str | None:
    """Which field holds the responses: the first candidate whose text marks its thinking, else
    (when the user named fields) the first present."""
    names = candidates(options, "response_field")
    for name in names:
        texts = _texts(get_path(record, name))
        if texts and has_thinking(texts[0], style):
            return name
    if "response_field" in options:
        return pick(record, names)[0]
    return None


def correct_flag(value: Any, sample: int, name: str | None, named: bool) -> bool | None:
    """meta.correct of one sample; a value that is not a flag is an error only when the user
    named the field (a default name such as `score` may hold a reward)."""
    if name is None:
        return None
    if isinstance(value, list):
        value = value[sample] if sample < len(value) else None
    flag = as_bool(value)
    if flag is None and named and value is not None:
        raise InputError(f"{value!r} is not true/false", field=name)
    return flag


class R1JsonImporter:
    name = "r1-json"
    description = "records with a question and a response whose thinking is marked (<think>, ...)"

    def detect(self, path: Path, options: dict[str, str] | None = None) -> bool:
        if not path.is_file() or path.suffix.lower() not in SUFFIXES:
            return False
        record = first_record(path)
        if not isinstance(record, dict):
            return False
        options = options or {}
        try:
            style = parse_style(options.get("think"))
        except ValueError:  # a bad think= option: claim by the defaults, read() reports it
            style = parse_style(None)
        name = response_field(record, options, style)
        return name is not None and _texts(get_path(record, name)) is not None

    def read(self, path: Path, options: dict[str, str]) -> Iterator[Trace]:
        try:
            style = parse_style(options.get("think"))
        except ValueError as error:
            raise InputError(str(error), path, field="think") from None
        samples = options.get("samples", DEFAULTS["samples"])
        if samples not in ("all", "first"):
            raise InputError(f"samples={samples!r}: expected all or first", path, field="samples")
        question_fields = candidates(options, "question_field")
        id_fields = candidates(options, "id_field")
        model_fields = candidates(options, "model_field")
        answer_fields = candidates(options, "answer_field")
        correct_fields = candidates(options, "correct_field")
        chosen: str | None = None
        empty = True
        for n, (line, record) in enumerate(iter_json_records(path)):
            empty = False
            if not isinstance(record, dict):
                raise InputError(f"expected a JSON object, got {type(record).__name__}", path, line)
            if chosen is None:
                chosen = (
                    response_field(record, options, style)
                    or pick(record, candidates(options, "response_field"))[0]
                )
            value = get_path(record, chosen) if chosen else MISSING
            if value is MISSING:
                raise InputError(
                    "missing (set --option response_field=NAME)",
                    path,
                    line,
                    chosen or "/".join(candidates(options, "response_field")),
                )
            texts = _texts(value)
            if texts is None:
                hint = " (chat messages? use --format chat)" if isinstance(value, list) else ""
                raise InputError(
                    f"must be a string or a list of strings, got {type(value).__name__}{hint}",
                    path,
                    line,
                    chosen,
                )
            if not texts:
                raise InputError("is an empty list", path, line, chosen)
            if not all(text.strip() for text in texts):  # here, so the error names the field
                raise InputError("must be a non-empty string", path, line, chosen)
            question_name, question = pick(record, question_fields)
            if question is not None and not isinstance(question, str):
                raise InputError("must be a string", path, line, question_name)
            _, identifier = pick(record, id_fields)
            model_name, model = pick(record, model_fields)
            if model is not None and not isinstance(model, str):
                raise InputError("must be a string", path, line, model_name)
            _, answer = pick(record, answer_fields)
            correct_name, correct = pick(record, correct_fields)
            top = chosen.split(".")[0] if chosen not in record else chosen
            used = {top, question_name, model_name}
            meta = {k: v for k, v in record.items() if k not in used and k != "answer"}
            base_id = str(identifier) if identifier is not None else f"{path.stem}:{n}"
            listed = isinstance(value, list)
            for k, response in enumerate(texts[:1] if samples == "first" else texts):
                text = normalized(response, style)
                trace_meta = dict(meta)
                try:
                    flag = correct_flag(correct, k, correct_name, "correct_field" in options)
                except InputError as error:
                    raise error.located(path, line) from None
                if flag is not None:
                    trace_meta["correct"] = flag
                if listed:
                    trace_meta["sample"] = k
                yield Trace(
                    id=f"{base_id}#{k}" if listed and samples == "all" else base_id,
                    text=text,
                    question=question or "",
                    model=model or options.get("model", ""),
                    source=options.get("source", "") or path.stem,
                    answer=str(answer) if answer is not None else final_answer(text),
                    meta=trace_meta,
                    line=line,
                )
        if empty:
            raise InputError("file is empty", path)


@hookimpl
def register_importers(register):
    register(R1JsonImporter())
