"""Adjudication: settle the steps annotators disagree on; the choice becomes annotator `gold`.

A step is disputed when two or more of the chosen annotators labeled it differently. The most
disputed come first: the smallest share for the most common label, then the most distinct labels,
then the most annotators. Each decision is one `gold` label event plus an `adjudications` row with
who chose, why, and every annotator's label at that moment, in one transaction. Steps everybody
agreed on can become gold in bulk (`accept_agreed`), recorded the same way with the reason
"agreed". The CLI (`bondscope adjudicate`) and the app (Tools > Adjudicate) call these functions.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass

from bondscope.domain import BEHAVIORS, InputError
from bondscope.services.labeling import set_label
from bondscope.store import Store, now

GOLD = "gold"
AGREED = "agreed"


@dataclass(frozen=True, slots=True)
class Dispute:
    trace_id: int
    trace: str
    step: int
    step_id: int
    labels: dict[str, str]  # annotator -> behavior
    disagreement: float  # 1 - (votes for the most common label) / (labels)
    gold: str | None  # the gold label when the step was settled already
    text: str


def default_annotators(store: Store) -> list[str]:
    """Every person who labeled something, except `gold` itself."""
    return [
        row[0]
        for row in store.conn.execute(
            "SELECT name FROM annotators WHERE kind = 'person' AND name != ? AND id IN "
            "(SELECT DISTINCT annotator_id FROM label_events) ORDER BY name",
            (GOLD,),
        )
    ]


def _labels_by_step(
    store: Store, annotators: list[str], trace_id: int | None
) -> dict[int, tuple[int, int, dict[str, str]]]:
    known = {row[0] for row in store.conn.execute("SELECT name FROM annotators")}
    unknown = [name for name in annotators if name not in known]
    if unknown:
        raise InputError(f"no such annotator: {', '.join(unknown)}", field="--annotators")
    if GOLD in annotators:
        raise InputError(f"{GOLD!r} is the adjudicated result, not an annotator to settle")
    clause, params = "", list(annotators)
    if trace_id is not None:
        clause, params = " AND trace_id = ?", [*annotators, trace_id]
    steps: dict[int, tuple[int, int, dict[str, str]]] = {}
    for step_id, trace, idx, name, behavior in store.conn.execute(
        "SELECT step_id, trace_id, step, annotator, behavior FROM current_labels WHERE annotator"
        f" IN ({', '.join('?' * len(annotators))}){clause} ORDER BY trace_id, step, annotator",
        params,
    ):
        steps.setdefault(step_id, (trace, idx, {}))[2][name] = behavior
    return steps


def disputes(
    store: Store,
    annotators: list[str] | None = None,
    *,
    trace_id: int | None = None,
    include_settled: bool = False,
    limit: int | None = None,
) -> list[Dispute]:
    """Disputed steps, most disputed first (see the module docstring)."""
    annotators = annotators if annotators is not None else default_annotators(store)
    gold = dict(
        store.conn.execute(
            "SELECT step_id, behavior FROM current_labels WHERE annotator = ?", (GOLD,)
        ).fetchall()
    )
    found = []
    for step_id, (trace, idx, labels) in _labels_by_step(store, annotators, trace_id).items():
        votes = Counter(labels.values())
        if len(votes) < 2 or (step_id in gold and not include_settled):
            continue
        share = max(votes.values()) / len(labels)
        found.append((-(1 - share), -len(votes), -len(labels), trace, idx, step_id, labels))
    found.sort(key=lambda item: item[:5])
    found = found[:limit] if limit is not None else found
    texts = {
        row[0]: row[1:]
        for row in store.conn.execute(
            'SELECT s.id, t.name, substr(t.text, s.start + 1, s."end" - s.start) FROM steps s'
            " JOIN traces t ON t.id = s.trace_id WHERE s.id IN (SELECT value FROM json_each(?))",
            (json.dumps([item[5] for item in found]),),
        )
    }
    return [
        Dispute(
            trace,
            texts[step_id][0],
            idx,
            step_id,
            labels,
            -minus,
            gold.get(step_id),
            texts[step_id][1],
        )  # fmt: skip
        for minus, _, _, trace, idx, step_id, labels in found
    ]


def _record(
    store: Store, step_id: int, behavior: str, by: str, reason: str, labels: dict[str, str]
) -> int:
    event_id = set_label(store, step_id, GOLD, behavior)
    store.conn.execute(
        "INSERT INTO adjudications (event_id, step_id, decided_by, reason, labels, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (event_id, step_id, by, reason, json.dumps(labels, sort_keys=True), now()),
    )
    return event_id


def decide(store: Store, step_id: int, behavior: str, by: str, reason: str = "") -> int:
    """Make `behavior` the gold label of the step; returns the gold label event's id."""
    if behavior not in BEHAVIORS:
        raise InputError(f"behavior {behavior!r} is not one of {', '.join(BEHAVIORS)}")
    if not by.strip():
        raise InputError("must name who decides", field="--by")
    labels = dict(
        store.conn.execute(
            "SELECT annotator, behavior FROM current_labels WHERE step_id = ? AND annotator != ?"
            " ORDER BY annotator",
            (step_id, GOLD),
        ).fetchall()
    )
    if not labels and not store.count("SELECT COUNT(*) FROM active_steps WHERE id = ?", (step_id,)):
        raise InputError(f"no current step with id {step_id}")
    with store.transaction():
        return _record(store, step_id, behavior, by.strip(), reason.strip(), labels)


def accept_agreed(
    store: Store, by: str, annotators: list[str] | None = None, min_labels: int = 2
) -> int:
    """Gold for every step at least `min_labels` annotators labeled, all alike; returns how many."""
    if min_labels < 1:
        raise InputError("must be 1 or more", field="--min-labels")
    annotators = annotators if annotators is not None else default_annotators(store)
    settled = {
        row[0]
        for row in store.conn.execute(
            "SELECT step_id FROM current_labels WHERE annotator = ?", (GOLD,)
        )
    }
    agreed = defaultdict(list)
    for step_id, (_, _, labels) in _labels_by_step(store, annotators, None).items():
        if len(labels) >= min_labels and len(set(labels.values())) == 1 and step_id not in settled:
            agreed[next(iter(labels.values()))].append((step_id, labels))
    with store.transaction():
        for behavior, steps in agreed.items():
            for step_id, labels in steps:
                _record(store, step_id, behavior, by, AGREED, labels)
    return sum(len(steps) for steps in agreed.values())


def adjudication_summary(store: Store) -> dict[str, object]:
    """Counts behind the current gold labels: decided by whom, or agreed."""
    rows = store.conn.execute(
        "SELECT a.decided_by, a.reason = ?, COUNT(*) FROM current_labels l"
        " JOIN adjudications a ON a.event_id = l.event_id WHERE l.annotator = ?"
        " GROUP BY a.decided_by, a.reason = ? ORDER BY a.decided_by",
        (AGREED, GOLD, AGREED),
    ).fetchall()
    decided = {by: n for by, agreed, n in rows if not agreed}
    return {
        "gold_labels": store.count(
            "SELECT COUNT(*) FROM current_labels WHERE annotator = ?", (GOLD,)
        ),
        "agreed": sum(n for _, agreed, n in rows if agreed),
        "decided": sum(decided.values()),
        "decided_by": decided,
    }
