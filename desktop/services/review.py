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

# The model's current suggestion (with a confidence) on every active step, beside the person's
# current label there (NULL: none). Set-based on the indexes: the model's events come from
# label_events_annotator, and "current" is one probe of label_events_latest per step, so the
# cost grows with the model's labels, never with their square (the current_labels view, joined to
# itself, re-grouped every label event for each suggestion: ~112 s on a 20,000-step project).
SUGGESTIONS_SQL = """
    SELECT s.trace_id, s.idx AS step, e.step_id, e.behavior, e.confidence,
           (SELECT p.behavior FROM label_events p
            WHERE p.step_id = e.step_id AND p.annotator_id = :person
            ORDER BY p.id DESC LIMIT 1) AS person_behavior,
           (SELECT p.id FROM label_events p
            WHERE p.step_id = e.step_id AND p.annotator_id = :person
            ORDER BY p.id DESC LIMIT 1) AS person_event
    FROM label_events e
    JOIN steps s ON s.id = e.step_id AND s.retired_run_id IS NULL
    WHERE e.annotator_id = :model AND e.behavior IS NOT NULL AND e.confidence IS NOT NULL
      AND e.id = (SELECT MAX(l.id) FROM label_events l
                  WHERE l.step_id = e.step_id AND l.annotator_id = :model)
"""

QUEUE_SQL = f"""
    SELECT m.trace_id, t.name, m.step, m.step_id, m.behavior, m.confidence
    FROM ({SUGGESTIONS_SQL}) m JOIN traces t ON t.id = m.trace_id
    WHERE m.person_behavior IS NULL
    ORDER BY m.confidence, m.trace_id, m.step
    LIMIT :limit
"""

# Only labels a person made count as checked: a label copied by `accept` agrees with the
# suggestion by construction, so counting it would report precision 1.00 right after an accept.
CHECKED_SQL = f"""
    SELECT m.confidence, m.behavior = m.person_behavior FROM ({SUGGESTIONS_SQL}) m
    JOIN label_events pe ON pe.id = m.person_event
    LEFT JOIN runs r ON r.id = pe.run_id
    WHERE m.person_behavior IS NOT NULL AND m.confidence >= :threshold
      AND (r.kind IS NULL OR r.kind != 'accept')
"""

UNCHECKED_SQL = f"""
    SELECT m.step_id, m.behavior, m.confidence FROM ({SUGGESTIONS_SQL}) m
    WHERE m.person_behavior IS NULL AND m.confidence >= :threshold
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


def _params(store: Store, model: str, person: str, **more: float) -> dict[str, object]:
    """Annotator ids for the queries; an unknown model is an error (LookupError, one line),
    since a misspelt name would otherwise read as "nothing to review"."""
    ids = dict(
        store.conn.execute("SELECT name, id FROM annotators WHERE name IN (?, ?)", (model, person))
    )
    if model not in ids:
        known = [
            r[0]
            for r in store.conn.execute(
                "SELECT name FROM annotators WHERE kind = 'model' ORDER BY name"
            )
        ]
        hint = f"; known: {', '.join(known)}" if known else "; none in this project"
        raise LookupError(f"no model annotator {model!r}{hint}")
    return {"model": ids[model], "person": ids.get(person, -1), **more}


def uncertain_steps(store: Store, model: str, person: str, limit: int = 100) -> list[QueuedStep]:
    """The least confident suggestions the person has not labeled, across the whole corpus."""
    rows = store.conn.execute(QUEUE_SQL, _params(store, model, person, limit=limit))
    return [QueuedStep(*row) for row in rows]


def estimate_precision(
    store: Store, model: str, person: str, threshold: float
) -> PrecisionEstimate:
    params = _params(store, model, person, threshold=threshold)
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
    params = _params(store, model, person, threshold=threshold)
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
