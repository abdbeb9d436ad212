"""Generated projects for the start-up benchmarks: many traces, two annotators, some bonds.

    .venv/bin/python benchmarks/projects.py jsonl OUT.jsonl --traces 400   # a bondscope-jsonl file
    .venv/bin/python benchmarks/projects.py sqlite OUT.bondscope --traces 100000   # a project

Every trace has 80-120 steps of one sentence each. The pre-labeler `model:bench@1` labels every
step with a confidence and bonds each of its R steps to an earlier step (hydrogen); the person
`bench` has labeled 30 % of the traces (a prefix of half to all of their steps, agreeing with the
model four times in five) with a hydrogen bond for each of their R labels. Models and sources
cycle over a few names, so the filters and the --by groups have something to split.

The same traces come out either as a bondscope-jsonl file (imported by the real import service:
what a user does) or straight into a project file with `executemany` through the store's schema,
in the row shapes of `services/importing.py` (`TraceWriter`): an import of 10M steps with 13M
labels would take minutes, the direct write is several times faster. `benchmarks/ui.py --sweep`
uses the direct write; keep the files in /tmp, never in the repository.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bondscope.domain import content_hash
from bondscope.store import Store, now

PERSON = "bench"
MODEL = "model:bench@1"
MODELS = ("deepseek-r1", "qwq-32b", "llama-3.3-70b", "gpt-oss-120b", "claude-3.7")
SOURCES = ("math", "code", "science")
BEHAVIORS = "NNNNDDRE"
PHRASE = (
    "so the value of x is then equal to the sum we found wait let me check whether this holds"
    " again because the sign might flip alternatively try the discriminant which gives two roots"
)
WORDS = tuple(PHRASE.split())
SENTENCES = 512  # a pool of sentences, drawn from for every step
LABELED_SHARE = 3  # in 10: traces the person has labeled
AGREE = 0.8  # the person's label equals the model's this often


@dataclass(slots=True)
class GeneratedTrace:
    """One trace as plain lists: what both writers need, without the domain's objects."""

    name: str
    model: str
    source: str
    question: str
    text: str
    spans: list[tuple[int, int]]
    model_labels: list[tuple[str, float]]  # (behavior, confidence) per step
    person_labels: list[str]  # a prefix of the steps (empty: not labeled)
    model_bonds: list[tuple[int, int]]  # hydrogen (from, to) of the model's R steps
    person_bonds: list[tuple[int, int]]  # hydrogen (from, to) of the person's R labels


def generate(traces: int, seed: int = 0) -> Iterator[GeneratedTrace]:
    """`traces` traces, the same for the same seed."""
    rng = random.Random(seed)
    pool = [
        " ".join(rng.choices(WORDS, k=rng.randint(6, 14))).capitalize() + "."
        for _ in range(SENTENCES)
    ]
    for t in range(traces):
        n = rng.randint(80, 120)
        sentences = [f"{s}. {rng.choice(pool)}" for s in range(n)]
        spans, position = [], 0
        for sentence in sentences:
            spans.append((position, position + len(sentence)))
            position += len(sentence) + 2
        model_labels = [(rng.choice(BEHAVIORS), round(rng.uniform(0.3, 1.0), 3)) for _ in range(n)]
        person_labels: list[str] = []
        if t % 10 < LABELED_SHARE:
            for behavior, _ in model_labels[: rng.randint(n // 2, n)]:
                person_labels.append(behavior if rng.random() < AGREE else rng.choice("NDRE"))
        yield GeneratedTrace(
            name=f"{MODELS[t % len(MODELS)]}/{SOURCES[t % len(SOURCES)]}/trace-{t:06d}",
            model=MODELS[t % len(MODELS)],
            source=SOURCES[t % len(SOURCES)],
            question=f"Question {t}: what is the sum of the roots?",
            text="\n\n".join(sentences),
            spans=spans,
            model_labels=model_labels,
            person_labels=person_labels,
            model_bonds=[
                (s, rng.randint(max(0, s - 20), s - 2))
                for s, (b, _) in enumerate(model_labels)
                if b == "R" and s >= 2
            ],
            person_bonds=[
                (s, rng.randint(max(0, s - 20), s - 2))
                for s, b in enumerate(person_labels)
                if b == "R" and s >= 2
            ],
        )


def write_jsonl(path: Path, traces: int, seed: int = 0) -> Path:
    """The traces as one bondscope-jsonl file, for `bondscope import`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for trace in generate(traces, seed):
            record = {
                "format": "bondscope-jsonl/1",
                "id": trace.name,
                "model": trace.model,
                "source": trace.source,
                "question": trace.question,
                "text": trace.text,
                "steps": [{"start": a, "end": b} for a, b in trace.spans],
                "labels": [
                    {"step": s, "behavior": b, "annotator": MODEL, "confidence": c}
                    for s, (b, c) in enumerate(trace.model_labels)
                ]
                + [
                    {"step": s, "behavior": b, "annotator": PERSON}
                    for s, b in enumerate(trace.person_labels)
                ],
                "bonds": [
                    {"from": a, "to": b, "type": "hydrogen", "annotator": MODEL}
                    for a, b in trace.model_bonds
                ]
                + [
                    {"from": a, "to": b, "type": "hydrogen", "annotator": PERSON}
                    for a, b in trace.person_bonds
                ],
            }
            handle.write(json.dumps(record) + "\n")
    return path


def write_project(path: Path, traces: int, seed: int = 0, flush_traces: int = 2_000) -> Path:
    """The traces straight into a new project file (one transaction, the importer's rows)."""
    if path.exists():
        raise FileExistsError(f"{path} exists: remove it first")
    created = now()
    with Store(path) as store, store.transaction():
        conn = store.conn
        run_id = store.start_run("import", {"generated": traces, "seed": seed})
        model_id, person_id = store.annotator_id(MODEL), store.annotator_id(PERSON)
        step_id = 0
        rows: dict[str, list[tuple[object, ...]]] = {"traces": [], "steps": [], "l": [], "b": []}

        def flush() -> None:
            conn.executemany(
                "INSERT INTO traces (id, name, content_hash, source, model, question, text,"
                " answer, given_steps, meta, run_id, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, '', ?, '{}', ?, ?)",
                rows["traces"],
            )
            conn.executemany(
                'INSERT INTO steps (id, trace_id, idx, start, "end", run_id) VALUES (?,?,?,?,?,?)',
                rows["steps"],
            )
            conn.executemany(
                "INSERT INTO label_events (step_id, annotator_id, behavior, confidence, run_id,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                rows["l"],
            )
            conn.executemany(
                "INSERT INTO bond_events (from_step_id, to_step_id, type, annotator_id, run_id,"
                " created_at) VALUES (?, ?, 'hydrogen', ?, ?, ?)",
                rows["b"],
            )
            for buffer in rows.values():
                buffer.clear()

        for t, trace in enumerate(generate(traces, seed), start=1):
            rows["traces"].append(
                (
                    t,
                    trace.name,
                    content_hash(trace.question, trace.text, trace.model),
                    trace.source,
                    trace.model,
                    trace.question,
                    trace.text,
                    json.dumps([list(span) for span in trace.spans]),
                    run_id,
                    created,
                )
            )
            first = step_id + 1
            rows["steps"].extend(
                (first + i, t, i, a, b, run_id) for i, (a, b) in enumerate(trace.spans)
            )
            step_id += len(trace.spans)
            rows["l"].extend(
                (first + i, model_id, b, c, run_id, created)
                for i, (b, c) in enumerate(trace.model_labels)
            )
            rows["l"].extend(
                (first + i, person_id, b, None, run_id, created)
                for i, b in enumerate(trace.person_labels)
            )
            for who, bonds in ((model_id, trace.model_bonds), (person_id, trace.person_bonds)):
                rows["b"].extend((first + a, first + b, who, run_id, created) for a, b in bonds)
            if t % flush_traces == 0:
                flush()
        flush()
        store.finish_run(run_id, "done", {"traces": traces, "steps": step_id})
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("jsonl", "sqlite"))
    parser.add_argument("out", type=Path)
    parser.add_argument("--traces", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    if args.kind == "jsonl":
        write_jsonl(args.out, args.traces, args.seed)
    else:
        write_project(args.out, args.traces, args.seed)
    print(f"wrote {args.out} ({args.traces:,} traces) in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
