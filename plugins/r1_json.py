"""R1-style records: a question and a response whose thinking sits in `<think>...</think>`.

Reads JSON Lines, a JSON array or a single object, streamed. Field names are options (defaults in
DEFAULTS; e.g. `--option response_field=output`). The trace's text is the whole response; only the
thinking part is segmented. Without an answer field, the answer is the last `\\boxed{...}` after
`</think>`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bondscope import hookimpl
from bondscope.domain import InputError, Trace
from bondscope.jsonio import first_record, iter_json_records

DEFAULTS = {
    "question_field": "question,prompt,problem",
    "response_field": "response,solution,output",
    "id_field": "id",
    "model_field": "model,generator",
    "answer_field": "answer",
    "model": "",
    "source": "",
}
JSON_SUFFIXES = {".json", ".jsonl", ".ndjson"}


def _candidates(options: dict[str, str], key: str) -> list[str]:
    return [name.strip() for name in options.get(key, DEFAULTS[key]).split(",") if name.strip()]


def _pick(record: dict[str, Any], names: list[str]) -> tuple[str | None, Any]:
    for name in names:
        if name in record:
            return name, record[name]
    return None, None


def last_boxed(text: str) -> str:
    """The content of the last \\boxed{...}, braces balanced, or ''."""
    start = text.rfind("\\boxed{")
    if start == -1:
        return ""
    depth, i = 0, start + len("\\boxed")
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    return ""


class R1JsonImporter:
    name = "r1-json"
    description = "JSON/JSONL records with a question and a <think>...</think> response"

    def detect(self, path: Path) -> bool:
        if not path.is_file() or path.suffix.lower() not in JSON_SUFFIXES:
            return False
        record = first_record(path)
        if not isinstance(record, dict):
            return False
        _, response = _pick(record, _candidates({}, "response_field"))
        return isinstance(response, str) and "</think>" in response

    def read(self, path: Path, options: dict[str, str]) -> Iterator[Trace]:
        question_fields = _candidates(options, "question_field")
        response_fields = _candidates(options, "response_field")
        id_fields = _candidates(options, "id_field")
        model_fields = _candidates(options, "model_field")
        answer_fields = _candidates(options, "answer_field")
        empty = True
        for n, (line, record) in enumerate(iter_json_records(path)):
            empty = False
            if not isinstance(record, dict):
                raise InputError(f"expected a JSON object, got {type(record).__name__}", path, line)
            response_name, response = _pick(record, response_fields)
            if response_name is None:
                raise InputError(
                    "missing (set --option response_field=NAME)",
                    path,
                    line,
                    "/".join(response_fields),
                )
            if not isinstance(response, str):
                raise InputError(
                    f"must be a string, got {type(response).__name__}", path, line, response_name
                )
            if not response.strip():  # checked here so the error names the input's field
                raise InputError("must be a non-empty string", path, line, response_name)
            question_name, question = _pick(record, question_fields)
            if question is not None and not isinstance(question, str):
                raise InputError("must be a string", path, line, question_name)
            _, identifier = _pick(record, id_fields)
            model_name, model = _pick(record, model_fields)
            if model is not None and not isinstance(model, str):
                raise InputError("must be a string", path, line, model_name)
            _, answer = _pick(record, answer_fields)
            after_thinking = response.split("</think>", 1)[1] if "</think>" in response else ""
            used = {response_name, question_name, model_name}
            yield Trace(
                id=str(identifier) if identifier is not None else f"{path.stem}:{n}",
                text=response,
                question=question or "",
                model=model or options.get("model", ""),
                source=options.get("source", "") or path.stem,
                answer=str(answer) if answer is not None else last_boxed(after_thinking),
                meta={k: v for k, v in record.items() if k not in used and k != "answer"},
                line=line,
            )
        if empty:
            raise InputError("file is empty", path)


@hookimpl
def register_importers(register):
    register(R1JsonImporter())
