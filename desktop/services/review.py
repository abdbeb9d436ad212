"""Active learning: which suggestions a person should check next, and how far to trust the rest.

A pre-labeler's suggestions are label events of `model:NAME@VERSION` with a confidence. The queue
puts the least confident suggestions the person has not labeled yet first, across the corpus.
Before accepting every suggestion above a confidence `t`, the person sees the precision of those
suggestions on the steps people already checked: the share of checked steps with confidence >= t
whose suggestion equals the person's label (a Wilson interval says how much that sample can say).

Accepted suggestions become the person's labels in one transaction, as one `accept` run, so they
are told apart from hand labels in the history (and, like imports, are not undone key by key).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bondscope.store import Store, now

QUEUE_SQL = """
    SELECT m.trace_id, t.name, m.step, m.step_id, m.behavior, m.confidence
    FROM current_labels m
    JOIN traces t ON t.id = m.trace_id
    WHERE m.annotator = :model AND m.confidence IS NOT NULL
      AND NOT EXISTS (
          SELECT 1 FROM current_labels p WHERE p.step_id = m.step_id AND p.annotator = :person
      )
    ORDER BY m.confidence, m.trace_id, m.step
    LIMIT :limit
"""

# Only labels a person made count as checked: a label copied by `accept` agrees with the
# suggestion by construction, so counting it would report precision 1.00 right after an accept.
CHECKED_SQL = """
    SELECT m.confidence, m.behavior = p.behavior
    FROM current_labels m
    JOIN current_labels p ON p.step_id = m.step_id AND p.annotator = :person
    JOIN label_events pe ON pe.id = p.event_id
    LEFT JOIN runs r ON r.id = pe.run_id
    WHERE m.annotator = :model AND m.confidence >= :threshold
      AND (r.kind IS NULL OR r.kind != 'accept')
"""

UNCHECKED_SQL = """
    SELECT m.step_id, m.behavior, m.confidence
    FROM current_labels m
    WHERE m.annotator = :model AND m.confidence >= :threshold
      AND NOT EXISTS (
          SELECT 1 FROM current_labels p WHERE p.step_id = m.step_id AND p.annotator = :person
      )
"""


@dataclass(frozen=True, slots=True)
class QueuedStep:
    trace_id: int
    trace: str
    step: int
    step_id: int
    suggestion: str
    confidence: float


@dataclass(frozen=True, slots=True)
class PrecisionEstimate:
    threshold: float
    checked: int  # steps at or above the threshold that the person labeled (not by accepting)
    correct: int  # ... whose suggestion equals the person's label
    precision: float | None  # correct / checked, None when nothing was checked yet
    low: float | None  # 95 % Wilson interval of the precision
    high: float | None
    to_accept: int  # unchecked suggestions at or above the threshold


def uncertain_steps(store: Store, model: str, person: str, limit: int = 100) -> list[QueuedStep]:
    """The least confident suggestions the person has not labeled, across the whole corpus."""
    rows = store.conn.execute(QUEUE_SQL, {"model": model, "person": person, "limit": limit})
    return [QueuedStep(*row) for row in rows]


def estimate_precision(
    store: Store, model: str, person: str, threshold: float
) -> PrecisionEstimate:
    params = {"model": model, "person": person, "threshold": threshold}
    checked = store.conn.execute(CHECKED_SQL, params).fetchall()
    correct = sum(1 for _, same in checked if same)
    to_accept = len(store.conn.execute(UNCHECKED_SQL, params).fetchall())
    if not checked:
        return PrecisionEstimate(threshold, 0, 0, None, None, None, to_accept)
    low, high = wilson_interval(correct, len(checked))
    return PrecisionEstimate(
        threshold, len(checked), correct, correct / len(checked), low, high, to_accept
    )


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval: honest for small samples and for proportions near 0 or 1."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def accept_suggestions(store: Store, model: str, person: str, threshold: float) -> int:
    """Copy every unchecked suggestion with confidence >= threshold into the person's labels."""
    params = {"model": model, "person": person, "threshold": threshold}
    with store.transaction():
        rows = store.conn.execute(UNCHECKED_SQL, params).fetchall()
        run_id = store.start_run("accept", {"model": model, "threshold": threshold})
        person_id = store.annotator_id(person)
        created_at = now()
        store.conn.executemany(
            "INSERT INTO label_events (step_id, annotator_id, behavior, run_id, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [(step_id, person_id, behavior, run_id, created_at) for step_id, behavior, _ in rows],
        )
        store.finish_run(run_id, "done", {"accepted": len(rows)})
    return len(rows)
