"""Review-queue speed: what `bondscope review` and the app's Review Queue dock compute.

    .venv/bin/python benchmarks/review.py                  # 200 traces x 100 steps = 20,000
    .venv/bin/python benchmarks/review.py --traces 20      # a quicker run
    .venv/bin/python benchmarks/review.py --traces 10 --old  # also the old view-based queries

The project is shaped like the one in issue 19 (a Thought Anchors project after "Pre-label All
Traces"): every step carries an imported LLM label without confidence, two pre-label runs of
`model:bondscope-minilm@1` with confidences (the second overwrites the first), and 5 % of the steps
labeled by the person, some of them relabeled or cleared. It is written directly with executemany
in one transaction. Then it times `uncertain_steps` (the dock's queue, 200 rows) and
`estimate_precision` (the CLI's and the accept dialog's figures), cold and warm. Budget: < 1 s for
the queue and the estimate together.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from bondscope.services.review import estimate_precision, uncertain_steps
from bondscope.store import Store, now

BUDGET_S = 1.0
MODEL = "model:bondscope-minilm@1"
PERSON = "annotator"

# The queries before issue 19: the current_labels view joined to itself (kept here to compare).
OLD_QUEUE_SQL = """
    SELECT m.trace_id, t.name, m.step, m.step_id, m.behavior, m.confidence
    FROM current_labels m JOIN traces t ON t.id = m.trace_id
    WHERE m.annotator = :model AND m.confidence IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM current_labels p
                      WHERE p.step_id = m.step_id AND p.annotator = :person)
    ORDER BY m.confidence, m.trace_id, m.step LIMIT :limit
"""
OLD_UNCHECKED_SQL = """
    SELECT m.step_id FROM current_labels m
    WHERE m.annotator = :model AND m.confidence >= :threshold
      AND NOT EXISTS (SELECT 1 FROM current_labels p
                      WHERE p.step_id = m.step_id AND p.annotator = :person)
"""


def build(path: Path, traces: int, steps: int) -> None:
    rng = np.random.default_rng(0)
    created = now()
    n = traces * steps
    behaviors = np.array(list("NDRE"))
    with Store(path) as store, store.transaction():
        run_id = store.start_run("benchmark", {"traces": traces, "steps": steps})
        llm = store.annotator_id("thought-anchors-gpt4o", "model")
        model = store.annotator_id(MODEL)
        person = store.annotator_id(PERSON)
        text = "\n\n".join(f"step{i:05d}" for i in range(steps))
        store.conn.executemany(
            "INSERT INTO traces (id, name, content_hash, model, source, text, run_id, created_at)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (
                (t + 1, f"trace-{t}", f"h{t}", "bench-model", "bench", text, run_id, created)
                for t in range(traces)
            ),
        )
        store.conn.executemany(
            'INSERT INTO steps (id, trace_id, idx, start, "end", run_id) VALUES (?,?,?,?,?,?)',
            (
                (t * steps + i + 1, t + 1, i, 11 * i, 11 * i + 9, run_id)
                for t in range(traces)
                for i in range(steps)
            ),
        )
        step_ids = np.arange(1, n + 1)
        rows: list[tuple] = []
        for annotator, confident in ((llm, False), (model, True), (model, True)):
            picks = behaviors[rng.integers(0, 4, n)]
            confidences = rng.random(n) if confident else [None] * n
            rows += [
                (int(s), annotator, str(b), None if c is None else float(c), run_id, created)
                for s, b, c in zip(step_ids, picks, confidences, strict=True)
            ]
        checked = rng.choice(step_ids, size=n // 20, replace=False)
        rows += [(int(s), person, str(behaviors[int(s) % 4]), None, None, created) for s in checked]
        rows += [(int(s), person, "D", None, None, created) for s in checked[::5]]  # relabeled
        rows += [(int(s), person, None, None, None, created) for s in checked[::7]]  # cleared
        store.conn.executemany(
            "INSERT INTO label_events (step_id, annotator_id, behavior, confidence, run_id,"
            " created_at) VALUES (?,?,?,?,?,?)",
            rows,
        )


def timed(function, *args) -> tuple[float, object]:
    start = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - start, result


def queue_and_estimate(store: Store) -> tuple[int, int]:
    queue = uncertain_steps(store, MODEL, PERSON, 200)
    estimate = estimate_precision(store, MODEL, PERSON, 0.9)
    return len(queue), estimate.to_accept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=200)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--old", action="store_true", help="also time the old queries (slow)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "review.bondscope"
        seconds, _ = timed(build, path, args.traces, args.steps)
        print(f"built {args.traces * args.steps:,} steps, 5 label events per step: {seconds:.1f} s")
        with Store(path) as store:
            cold, (queued, unchecked) = timed(queue_and_estimate, store)
            warm = min(timed(queue_and_estimate, store)[0] for _ in range(3))
            queue_s = min(timed(uncertain_steps, store, MODEL, PERSON, 200)[0] for _ in range(3))
            estimate_s = min(
                timed(estimate_precision, store, MODEL, PERSON, 0.9)[0] for _ in range(3)
            )
            print(
                f"queue ({queued} rows) + estimate ({unchecked:,} unchecked >= 0.9): cold"
                f" {cold * 1000:.0f} ms, warm {warm * 1000:.0f} ms (queue {queue_s * 1000:.0f} ms,"
                f" estimate {estimate_s * 1000:.0f} ms); budget < {BUDGET_S * 1000:.0f} ms"
            )
            if args.old:
                ids = {"model": MODEL, "person": PERSON}
                old_queue, old_rows = timed(
                    lambda: store.conn.execute(OLD_QUEUE_SQL, {**ids, "limit": 200}).fetchall()
                )
                old_unchecked, _ = timed(
                    lambda: store.conn.execute(
                        OLD_UNCHECKED_SQL, {**ids, "threshold": 0.9}
                    ).fetchall()
                )
                new_rows = [
                    (q.trace_id, q.trace, q.step, q.step_id, q.suggestion, q.confidence)
                    for q in uncertain_steps(store, MODEL, PERSON, 200)
                ]
                print(
                    f"old view-based queries: queue {old_queue:.2f} s, unchecked"
                    f" {old_unchecked:.2f} s; same queue rows: {old_rows == new_rows}"
                )


if __name__ == "__main__":
    main()
