"""Import throughput: a generated bondscope-jsonl corpus through the real import service.

    .venv/bin/python benchmarks/import.py                # 10,000 traces x 100 steps = 1,000,000
    .venv/bin/python benchmarks/import.py --traces 1000  # a quicker run
    .venv/bin/python benchmarks/import.py --profile      # cProfile of the given-steps import

Four figures: the corpus with its steps and one label per step given in the file; the same texts
without steps or labels, segmented on import by the `paragraph` segmenter; the same texts as
Parquet shards of R1-style rows (`question`, `response` = `<think>text</think>answer`, as a Hugging
Face dataset holds them) read by `r1-json` and segmented on import; and the first project exported
as Parquet tables (the `parquet` exporter) and imported back with its steps and labels. Each import
goes into a fresh project file (SQLite, WAL) in a temporary folder; the time includes reading and
parsing the files, validation, segmentation, and the commit. Budget (design.md): >= 20,000 steps/s.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import random
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from bondscope.domain import Trace
from bondscope.plugin_manager import Plugins
from bondscope.plugins.bondscope_jsonl import trace_from_record
from bondscope.services.importing import import_paths
from bondscope.store import Store

BUDGET_STEPS_PER_S = 20_000
PHRASES = [
    "so the sum of the roots is then equal to minus b over a and we can check this by",
    "substituting back wait let me reconsider the second case because the sign might flip",
    "alternatively we could try a different approach using the discriminant which gives",
]
WORDS = [word for phrase in PHRASES for word in phrase.split()]
BEHAVIORS = "NNNNDDRE"


def paragraph(rng: random.Random, trace: int, step: int) -> str:
    """A paragraph of 60-160 characters: never merged or split by the paragraph segmenter."""
    words = rng.choices(WORDS, k=rng.randint(10, 24))
    return f"Step {step} of {trace}: " + " ".join(words) + "."


def write_corpus(folder: Path, traces: int, steps: int, files: int, seed: int = 0) -> list[Path]:
    """`files` bondscope-jsonl files with `traces` traces of `steps` steps and labels in all."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"corpus-{i:03d}.jsonl" for i in range(files)]
    with ExitStack() as stack:
        handles = [stack.enter_context(open(path, "w", encoding="utf-8")) for path in paths]
        for t in range(traces):
            pieces = [paragraph(rng, t, s) for s in range(steps)]
            spans, position = [], 0
            for piece in pieces:
                spans.append({"start": position, "end": position + len(piece)})
                position += len(piece) + 2
            record = {
                "format": "bondscope-jsonl/1",
                "id": f"bench-{t}",
                "source": "benchmark",
                "model": "synthetic",
                "question": f"Question {t}: what is the sum of the roots?",
                "text": "\n\n".join(pieces),
                "answer": str(t % 97),
                "steps": spans,
                "labels": [
                    {"step": s, "behavior": rng.choice(BEHAVIORS), "annotator": "bench"}
                    for s in range(steps)
                ],
                "meta": {"n": t},
            }
            handles[t % files].write(json.dumps(record, ensure_ascii=False) + "\n")
    return paths


def strip_steps(paths: list[Path], folder: Path) -> list[Path]:
    """The same records without steps and labels, so the importer segments them."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for path in paths:
        target = folder / path.name
        with open(path, encoding="utf-8") as src, open(target, "w", encoding="utf-8") as dst:
            for line in src:
                record = json.loads(line)
                del record["steps"], record["labels"]
                dst.write(json.dumps(record, ensure_ascii=False) + "\n")
        out.append(target)
    return out


def parquet_rows(paths: list[Path], folder: Path, row_group: int = 1000) -> list[Path]:
    """The same records as Parquet shards of R1-style rows, one shard per JSONL file."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, path in enumerate(paths):
        rows = []
        with open(path, encoding="utf-8") as src:
            for line in src:
                record = json.loads(line)
                rows.append(
                    {
                        "id": record["id"],
                        "question": record["question"],
                        "response": f"<think>{record['text']}</think>{record['answer']}",
                        "model": record["model"],
                        "n": record["meta"]["n"],
                    }
                )
        target = folder / f"train-{i:05d}-of-{len(paths):05d}.parquet"
        pq.write_table(pa.Table.from_pylist(rows), target, row_group_size=row_group)
        out.append(target)
    return out


def exported_tables(paths: list[Path], folder: Path) -> Path:
    """The corpus as the `parquet` exporter writes it (untimed; straight from the records)."""
    exporter = Plugins(load_entry_points=False).get("exporter", "parquet")

    def traces() -> Iterator[Trace]:
        for path in paths:
            with open(path, encoding="utf-8") as handle:
                for line in handle:
                    yield trace_from_record(json.loads(line))

    exporter.export(traces(), folder)
    return folder


def folder_size(paths: list[Path]) -> int:
    return sum(
        p.stat().st_size
        for path in paths
        for p in (path.rglob("*") if path.is_dir() else [path])
        if p.is_file()
    )


def timed_import(
    db: Path, paths: list[Path], profile: bool = False, format: str = "bondscope-jsonl"
) -> tuple[float, dict]:
    plugins = Plugins(load_entry_points=False)
    store = Store(db)
    profiler = cProfile.Profile() if profile else None
    try:
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        report = import_paths(store, plugins, paths, format=format)
        if profiler:
            profiler.disable()
        elapsed = time.perf_counter() - started
    finally:
        store.close()
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    return elapsed, {"traces": report.traces, "steps": report.steps, "labels": report.labels}


def describe(name: str, elapsed: float, counts: dict, size: int) -> bool:
    steps_per_s = counts["steps"] / elapsed
    ok = steps_per_s >= BUDGET_STEPS_PER_S
    print(
        f"{name}: {counts['traces']:,} traces, {counts['steps']:,} steps, "
        f"{counts['labels']:,} labels, {size / 1e6:,.1f} MB in {elapsed:.2f} s -> "
        f"{steps_per_s:,.0f} steps/s, {counts['traces'] / elapsed:,.0f} traces/s, "
        f"{size / 1e6 / elapsed:,.1f} MB/s  [{'ok' if ok else 'BELOW BUDGET'}]"
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=100, help="steps per trace")
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--profile", action="store_true", help="cProfile the given-steps import")
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temp one)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bondscope-bench-", dir=args.dir) as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        given = write_corpus(work / "given", args.traces, args.steps, args.files)
        plain = strip_steps(given, work / "plain")
        print(
            f"generated {args.traces:,} traces x {args.steps} steps in "
            f"{time.perf_counter() - started:.1f} s ({os.cpu_count()} CPUs)"
        )
        size_given = sum(p.stat().st_size for p in given)
        size_plain = sum(p.stat().st_size for p in plain)

        elapsed, counts = timed_import(work / "given.bondscope", given, profile=args.profile)
        assert counts["steps"] == args.traces * args.steps, counts
        ok = describe("given steps + labels", elapsed, counts, size_given)

        elapsed, counts = timed_import(work / "plain.bondscope", plain)
        assert counts["steps"] == args.traces * args.steps, counts  # one paragraph per step
        ok = describe("segmented on import (paragraph)", elapsed, counts, size_plain) and ok

        shards = parquet_rows(given, work / "parquet-rows")
        elapsed, counts = timed_import(work / "rows.bondscope", shards, format="r1-json")
        assert counts["steps"] == args.traces * args.steps, counts
        ok = (
            describe("Parquet rows, r1-json (paragraph)", elapsed, counts, folder_size(shards))
            and ok
        )

        tables = exported_tables(given, work / "parquet-tables")
        elapsed, counts = timed_import(work / "tables.bondscope", [tables], format="parquet")
        assert counts["labels"] == args.traces * args.steps, counts
        ok = (
            describe(
                "Parquet tables (given steps + labels)", elapsed, counts, folder_size([tables])
            )
            and ok
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
