"""Thought Anchors folders: `base_solution.json` + `chunks_labeled.json` (+ `problem.json`).

The older rollout layout has no `base_solution.json`: the text then comes from `chunks.json`
(`solution_text`, else `source_text`, as `generate_rollouts.py` wrote it).

Each labeled chunk becomes a step (found in the solution text by whitespace-insensitive search,
since the chunks were whitespace-normalized). Its GPT-4o `function_tags` become labels of the
annotator `thought-anchors-gpt4o` through TAG_TO_BEHAVIOR, and `depends_on` becomes bonds of the
same annotator, typed by the dependent chunk's behavior (R: hydrogen, E: vdw, otherwise covalent).

The mapping is a judgment call (docs/formats.md explains it); they are weak LLM labels, not gold.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bondscope import hookimpl
from bondscope.domain import Bond, InputError, Label, Step, Trace
from bondscope.jsonio import unparsable_message

ANNOTATOR = "thought-anchors-gpt4o"
TAG_TO_BEHAVIOR = {
    "problem_setup": "N",  # restating the problem
    "fact_retrieval": "N",  # recalling a fact or formula
    "active_computation": "N",  # arithmetic, substitution
    "final_answer_emission": "N",
    "unknown": "N",
    "result_consolidation": "D",  # combines intermediate results into a new derived node
    "self_checking": "R",  # verifies earlier work
    "uncertainty_management": "R",  # doubts, backtracks, reconsiders
    "plan_generation": "E",  # proposes an approach or a new path
}
BOND_FOR = {"R": "hydrogen", "E": "vdw"}
RESULT_FOLDER = re.compile(r"^(correct|incorrect|yes|no)_base_solution$")


class ThoughtAnchorsImporter:
    name = "thought-anchors"
    description = "Thought Anchors trace folders (base_solution.json + chunks_labeled.json)"
    annotator_kinds = {ANNOTATOR: "model"}

    def detect(self, path: Path) -> bool:
        return (
            path.is_dir()
            and ((path / "base_solution.json").is_file() or (path / "chunks.json").is_file())
            and (path / "chunks_labeled.json").is_file()
        )

    def read(self, path: Path, options: dict[str, str]) -> Iterator[Trace]:
        base, solution_file, solution_field = _solution_source(path)
        if not (path / "chunks_labeled.json").is_file():
            raise InputError("expected a folder holding chunks_labeled.json", path)
        chunks = _load(path / "chunks_labeled.json")
        problem = _load(path / "problem.json") if (path / "problem.json").is_file() else {}
        solution = base.get(solution_field)
        if not isinstance(solution, str) or not solution.strip():
            raise InputError("missing or not a string", solution_file, field=solution_field)
        if not isinstance(chunks, list):
            raise InputError("expected a JSON list of chunks", path / "chunks_labeled.json")
        steps, labels, bonds = _steps_labels_bonds(solution, chunks, path / "chunks_labeled.json")
        model, split = _model_and_split(path)
        question = problem.get("problem") if isinstance(problem, dict) else None
        meta: dict[str, Any] = {"folder": f"{model}/{split}/{path.name}" if model else path.name}
        for key in ("is_correct", "contains_blackmail"):
            if key in base:
                meta[key] = base[key]
        if isinstance(problem, dict):
            meta.update({k: problem[k] for k in ("level", "type") if k in problem})
        yield Trace(
            id=meta["folder"],
            text=solution,
            question=question if isinstance(question, str) else str(base.get("prompt", "")),
            model=model,
            source="thought-anchors",
            answer=str(base.get("answer", "")),
            steps=steps,
            labels=labels,
            bonds=bonds,
            meta=meta,
            line=None,
        )


def _solution_source(path: Path) -> tuple[dict[str, Any], Path, str]:
    """The object holding the solution text, its file and field: `base_solution.json`'s
    `solution`, or in the older layout `chunks.json`'s `solution_text` (else `source_text`)."""
    if (path / "base_solution.json").is_file():
        where, field = path / "base_solution.json", "solution"
    elif (path / "chunks.json").is_file():
        where, field = path / "chunks.json", "solution_text"
    else:
        raise InputError("expected a folder holding base_solution.json or chunks.json", path)
    data = _load(where)
    if not isinstance(data, dict):
        raise InputError("expected a JSON object", where)
    if (
        field == "solution_text"
        and not data.get(field)
        and isinstance(data.get("source_text"), str)
    ):
        field = "source_text"
    return data, where, field


def _load(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except UnicodeDecodeError:
        raise InputError("invalid UTF-8", path) from None
    except json.JSONDecodeError as error:
        raise InputError(f"invalid JSON: {error.msg}", path, error.lineno) from None
    except (ValueError, RecursionError) as error:  # a 5,000-digit integer, nesting too deep
        raise InputError(unparsable_message(error), path) from None


def _model_and_split(path: Path) -> tuple[str, str]:
    parent = path.parent
    if RESULT_FOLDER.match(parent.name):
        return parent.parent.name, parent.name
    return "", parent.name


def _chunk_pattern(chunk: str) -> re.Pattern[str]:
    words = chunk.split()
    return re.compile(r"\s*".join(re.escape(word) for word in words))


def _steps_labels_bonds(
    solution: str, chunks: list[Any], where: Path
) -> tuple[list[Step], list[Label], list[Bond]]:
    steps: list[Step] = []
    behaviors: list[str] = []
    position_of: dict[int, int] = {}
    position = 0
    for i, chunk in enumerate(chunks):
        field = f"chunks[{i}]"
        if not isinstance(chunk, dict):
            raise InputError("must be an object", where, field=field)
        text = chunk.get("chunk")
        if not isinstance(text, str) or not text.strip():
            raise InputError("missing or empty", where, field=f"{field}.chunk")
        match = _chunk_pattern(text).search(solution, position)
        if match is None:
            raise InputError(
                f"chunk text not found in the solution after offset {position}",
                where,
                field=f"{field}.chunk",
            )
        steps.append(Step(match.start(), match.end()))
        position = match.end()
        tags = chunk.get("function_tags") or ["unknown"]
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise InputError("must be a list of strings", where, field=f"{field}.function_tags")
        behaviors.append(TAG_TO_BEHAVIOR.get(tags[0], "N"))
        index = chunk.get("chunk_idx", i)
        if isinstance(index, bool) or not isinstance(index, int):
            raise InputError("must be an integer", where, field=f"{field}.chunk_idx")
        if index in position_of:  # a second chunk with this index would take its bonds
            raise InputError(
                f"chunk_idx {index} is also chunk {position_of[index]}'s",
                where,
                field=f"{field}.chunk_idx",
            )
        position_of[index] = i
    labels = [Label(i, behavior, ANNOTATOR) for i, behavior in enumerate(behaviors)]
    bonds: list[Bond] = []
    seen: set[tuple[int, int]] = set()
    for i, chunk in enumerate(chunks):
        depends = chunk.get("depends_on") or []
        if not isinstance(depends, list):
            raise InputError("must be a list", where, field=f"chunks[{i}].depends_on")
        for dependency in depends:
            if isinstance(dependency, str) and dependency.strip().lstrip("-").isdigit():
                dependency = int(dependency)  # the dataset writes some indices as strings
            if isinstance(dependency, bool) or not isinstance(dependency, int):
                raise InputError(  # int(1.7) would silently bond to chunk 1
                    f"{dependency!r} is not a chunk index", where, field=f"chunks[{i}].depends_on"
                )
            target = position_of.get(dependency)
            if target is None or target == i or (i, target) in seen:
                continue
            seen.add((i, target))
            bonds.append(Bond(i, target, BOND_FOR.get(behaviors[i], "covalent"), ANNOTATOR))
    return steps, labels, bonds


@hookimpl
def register_importers(register):
    register(ThoughtAnchorsImporter())
