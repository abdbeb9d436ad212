"""Pre-split solutions: records whose `steps` is a list of strings (ProcessBench style).

The steps are joined with blank lines into the trace text and kept as the given spans. Other
fields (ProcessBench's `label`, `final_answer_correct`, ...) go to `meta`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from bondscope import hookimpl
from bondscope.domain import InputError, Step, Trace
from bondscope.jsonio import first_record, iter_json_records

SEPARATOR = "\n\n"
QUESTION_FIELDS = ("problem", "question", "prompt")
MODEL_FIELDS = ("generator", "model")


class StepListsImporter:
    name = "step-lists"
    description = "records with a pre-split `steps` list of strings (ProcessBench style)"

    def detect(self, path: Path) -> bool:
        if not path.is_file() or path.suffix.lower() not in {".json", ".jsonl", ".ndjson"}:
            return False
        record = first_record(path)
        steps = record.get("steps") if isinstance(record, dict) else None
        return isinstance(steps, list) and bool(steps) and all(isinstance(s, str) for s in steps)

    def read(self, path: Path, options: dict[str, str]) -> Iterator[Trace]:
        empty = True
        for n, (line, record) in enumerate(iter_json_records(path)):
            empty = False
            if not isinstance(record, dict):
                raise InputError(f"expected a JSON object, got {type(record).__name__}", path, line)
            pieces = record.get("steps")
            if not isinstance(pieces, list) or not pieces:
                raise InputError("missing or not a non-empty list", path, line, "steps")
            spans, position = [], 0
            for i, piece in enumerate(pieces):
                if not isinstance(piece, str) or not piece.strip():
                    raise InputError("must be a non-empty string", path, line, f"steps[{i}]")
                spans.append(Step(position, position + len(piece)))
                position += len(piece) + len(SEPARATOR)
            question_key = next((k for k in QUESTION_FIELDS if k in record), None)
            model_key = next((k for k in MODEL_FIELDS if k in record), None)
            question = record[question_key] if question_key else ""
            model = record[model_key] if model_key else options.get("model", "")
            for key, value in ((question_key, question), (model_key, model)):
                if not isinstance(value, str):  # named as in the input, e.g. 'problem'
                    raise InputError("must be a string", path, line, key)
            used = {"steps", "id", *QUESTION_FIELDS, *MODEL_FIELDS}
            yield Trace(
                id=f"{path.stem}:{n}" if record.get("id") is None else str(record["id"]),
                text=SEPARATOR.join(pieces),
                question=question,
                model=model,
                source=options.get("source", "") or path.stem,
                steps=spans,
                meta={k: v for k, v in record.items() if k not in used},
                line=line,
            )
        if empty:
            raise InputError("file is empty", path)


@hookimpl
def register_importers(register):
    register(StepListsImporter())
