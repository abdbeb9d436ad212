"""Structure-metric speed: transition counts and behavior distribution over 1,000,000 labels.

    .venv/bin/python benchmarks/metrics.py                 # 10,000 traces x 100 steps
    .venv/bin/python benchmarks/metrics.py --traces 1000   # a quicker run

The project is written directly with executemany in one transaction (the row shapes of
services/importing.py TraceWriter), one label per step by one annotator, behaviors drawn from the
DeepSeek-R1 preset chain so the counts look like a real corpus. Then it times what
`bondscope metrics transition-matrix` does: one scan of the annotator's label events into numpy
(`label_sequences`) and the vectorized counting, cold (first query on a freshly opened file) and
warm. Budget: < 1 s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from bondscope.domain import BEHAVIORS
from bondscope.services.structure import (
    LabeledSelection,
    Selection,
    pearson,
    presets,
    transition_counts,
    transition_matrix,
)
from bondscope.store import Store, now

BUDGET_S = 1.0


def behaviors(P: np.ndarray, traces: int, steps: int, rng: np.random.Generator) -> np.ndarray:
    """(traces, steps) behavior indices: all traces advance one step at a time (vectorized)."""
    states = np.empty((traces, steps), dtype=np.int64)
    states[:, 0] = rng.choice(4, size=traces, p=P[0])
    cumulative = P.cumsum(axis=1)
    for t in range(1, steps):
        draws = rng.random(traces)[:, None]
        states[:, t] = (draws > cumulative[states[:, t - 1]]).sum(axis=1).clip(max=3)
    return states


def build(path: Path, traces: int, steps: int, P: np.ndarray) -> None:
    labels = behaviors(P, traces, steps, np.random.default_rng(0))
    created = now()
    with Store(path) as store, store.transaction():
        run_id = store.start_run("benchmark", {"traces": traces, "steps": steps})
        annotator = store.annotator_id("model:bench@1")
        words = [f"step{i:05d}" for i in range(steps)]  # 9 characters, 2 between: fixed spans
        text = "\n\n".join(words)
        spans = [(11 * i, 11 * i + 9) for i in range(steps)]
        store.conn.executemany(
            "INSERT INTO traces (id, name, content_hash, model, source, text, run_id, created_at)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (
                (t + 1, f"t{t}", f"h{t}", "bench-model", "bench", text, run_id, created)
                for t in range(traces)
            ),
        )
        store.conn.executemany(
            'INSERT INTO steps (id, trace_id, idx, start, "end", run_id) VALUES (?,?,?,?,?,?)',
            (
                (t * steps + i + 1, t + 1, i, spans[i][0], spans[i][1], run_id)
                for t in range(traces)
                for i in range(steps)
            ),
        )
        letters = np.array(BEHAVIORS)[labels].ravel().tolist()
        store.conn.executemany(
            "INSERT INTO label_events (step_id, annotator_id, behavior, run_id, created_at)"
            " VALUES (?,?,?,?,?)",
            ((k + 1, annotator, b, run_id, created) for k, b in enumerate(letters)),
        )
        store.finish_run(run_id, "done", {})


def timed(path: Path) -> tuple[float, np.ndarray, np.ndarray]:
    """Seconds for transition counts + distribution on a freshly opened project."""
    with Store(path) as store:
        start = time.perf_counter()
        labeled = LabeledSelection(store, Selection())
        counts = labeled.transition_counts()
        distribution = labeled.behavior_counts() / labeled.behavior_counts().sum()
        elapsed = time.perf_counter() - start
    return elapsed, counts, distribution


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    P = presets()["deepseek-r1-0528"].P
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        start = time.perf_counter()
        build(path, args.traces, args.steps, P)
        built = time.perf_counter() - start
        labels = args.traces * args.steps
        print(f"built {args.traces:,} x {args.steps} steps = {labels:,} labels in {built:.1f} s")
        cold, counts, distribution = timed(path)
        warm = min(timed(path)[0] for _ in range(3))
        with Store(path) as store:
            start = time.perf_counter()
            transition_counts(store, Selection(annotator="model:bench@1", model="bench-model"))
            filtered = time.perf_counter() - start
    print(f"transition counts + distribution: {cold:.3f} s cold, {warm:.3f} s warm (best of 3)")
    print(f"  with --annotator and --source-model filters: {filtered:.3f} s")
    status = "ok" if warm < BUDGET_S else "OVER"
    print(f"  {labels / warm:,.0f} labels/s; budget {BUDGET_S} s: {status}")
    print(f"  transitions counted: {int(counts.sum()):,}")
    shares = zip(BEHAVIORS, distribution, strict=True)
    print("  distribution: " + "  ".join(f"{b}={p:.3f}" for b, p in shares))
    print(f"  r(estimated P, generating P) = {pearson(transition_matrix(counts), P):.4f}")


if __name__ == "__main__":
    main()
