"""Interactive labeling on the append-only event tables: set, bond, undo, redo, target hints.

Every change is one appended row (`label_events` or `bond_events`), written in one transaction.
Undo and redo are appended rows too: an undo of event X writes the value the key had before X,
with `reverts = X`; a redo reverts that undo. The undo/redo stacks of an annotator are replayed
from their interactive rows (`run_id IS NULL`), so they survive closing and reopening the project
and need no in-memory state. Imported rows (with a run) are the baseline and cannot be undone.

Label and bond rows live in two tables, so one history needs an order across them: interactive
rows get a `created_at` strictly after the newest row of either table (a logical clock that is
the wall clock unless two events fall in the same millisecond).

No Qt here: the app, the CLI and tests call the same functions.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from bondscope.domain import BEHAVIORS, BOND_TYPES, is_model_annotator
from bondscope.store import Store, now

TOKEN = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class Change:
    """What one undo or redo changed, so the app can show the place."""

    table: str  # "label_events" or "bond_events"
    event_id: int  # the row appended by the undo/redo
    step_id: int  # the labeled step, or the bond's `from` step


def _next_timestamp(store: Store) -> str:
    """Now, or 1 ms after the newest event row, whichever is later (see module docstring)."""
    stamp = now()
    for table in ("label_events", "bond_events"):
        row = store.conn.execute(
            f"SELECT created_at FROM {table} ORDER BY id DESC LIMIT 1"
        ).fetchone()
        if row and row[0] >= stamp:
            later = datetime.fromisoformat(row[0]) + timedelta(milliseconds=1)
            stamp = later.isoformat(timespec="milliseconds")
    return stamp


def _insert_label(
    store: Store,
    step_id: int,
    annotator_id: int,
    behavior: str | None,
    seconds: float | None,
    reverts: int | None,
    stamp: str,
) -> int:
    cursor = store.conn.execute(
        "INSERT INTO label_events (step_id, annotator_id, behavior, seconds, reverts, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (step_id, annotator_id, behavior, seconds, reverts, stamp),
    )
    return int(cursor.lastrowid)


def _insert_bond(
    store: Store,
    from_step_id: int,
    to_step_id: int,
    type: str,
    annotator_id: int,
    present: int,
    reverts: int | None,
    stamp: str,
) -> int:
    cursor = store.conn.execute(
        "INSERT INTO bond_events (from_step_id, to_step_id, type, annotator_id, present, reverts,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (from_step_id, to_step_id, type, annotator_id, present, reverts, stamp),
    )
    return int(cursor.lastrowid)


def _hydrogen_targets(store: Store, from_step_id: int, annotator_id: int) -> list[int]:
    """Step ids the annotator's present hydrogen bonds from this step point to."""
    return [
        r[0]
        for r in store.conn.execute(
            "SELECT e.to_step_id FROM bond_events e WHERE e.id IN (SELECT MAX(id) FROM bond_events"
            " WHERE from_step_id = ? AND type = 'hydrogen' AND annotator_id = ?"
            " GROUP BY to_step_id) AND e.present = 1",
            (from_step_id, annotator_id),
        )
    ]


def set_label(
    store: Store,
    step_id: int,
    annotator: str,
    behavior: str | None,
    seconds: float | None = None,
) -> int:
    """Record `annotator`'s behavior for a step (None clears it); returns the label event id.

    A step that is no longer R loses the annotator's hydrogen bonds from it (a reflection's
    target means nothing on a normal step): the label and the bond removals are one action,
    written with one timestamp, so one undo restores both.
    """
    if behavior is not None and behavior not in BEHAVIORS:
        raise ValueError(f"behavior {behavior!r} is not one of {', '.join(BEHAVIORS)}")
    with store.transaction():
        annotator_id = store.annotator_id(annotator)
        stamp = _next_timestamp(store)
        event_id = _insert_label(store, step_id, annotator_id, behavior, seconds, None, stamp)
        if behavior != "R":
            for target in _hydrogen_targets(store, step_id, annotator_id):
                _insert_bond(store, step_id, target, "hydrogen", annotator_id, 0, None, stamp)
        return event_id


def set_target(store: Store, from_step_id: int, to_step_id: int | None, annotator: str) -> None:
    """Make `to_step_id` the only target of the R step's hydrogen bonds (None: no target).

    Retargeting and removing a reflection's bond are one action (one undo), like `set_label`.
    """
    with store.transaction():
        annotator_id = store.annotator_id(annotator)
        stamp = _next_timestamp(store)
        current = _hydrogen_targets(store, from_step_id, annotator_id)
        for target in current:
            if target != to_step_id:
                _insert_bond(store, from_step_id, target, "hydrogen", annotator_id, 0, None, stamp)
        if to_step_id is not None and to_step_id not in current:
            _insert_bond(store, from_step_id, to_step_id, "hydrogen", annotator_id, 1, None, stamp)


def set_bond(store: Store, from_step_id: int, to_step_id: int, type: str, annotator: str) -> int:
    """Record a bond from a later step to an earlier one; returns the event id."""
    return _bond(store, from_step_id, to_step_id, type, annotator, 1)


def remove_bond(store: Store, from_step_id: int, to_step_id: int, type: str, annotator: str) -> int:
    """Record that `annotator` no longer sees this bond; returns the event id."""
    return _bond(store, from_step_id, to_step_id, type, annotator, 0)


def _bond(
    store: Store, from_step_id: int, to_step_id: int, type: str, annotator: str, present: int
) -> int:
    if type not in BOND_TYPES:
        raise ValueError(f"bond type {type!r} is not one of {', '.join(BOND_TYPES)}")
    with store.transaction():
        annotator_id = store.annotator_id(annotator)
        return _insert_bond(
            store,
            from_step_id,
            to_step_id,
            type,
            annotator_id,
            present,
            None,
            _next_timestamp(store),
        )


Event = tuple[str, int]  # (table, event id)


def _actions(store: Store, annotator_id: int) -> list[tuple[list[Event], set[Event]]]:
    """The annotator's interactive rows grouped into actions, in time order: per action its rows
    and the rows they revert. Rows of one action share one `created_at` (every action gets a
    timestamp strictly after the newest row), so the grouping needs no extra column."""
    rows = store.conn.execute(
        "SELECT 'label_events', id, reverts, created_at FROM label_events"
        " WHERE annotator_id = ? AND run_id IS NULL"
        " UNION ALL SELECT 'bond_events', id, reverts, created_at FROM bond_events"
        " WHERE annotator_id = ? AND run_id IS NULL ORDER BY 4, 2",
        (annotator_id, annotator_id),
    ).fetchall()
    actions: list[tuple[list[Event], set[Event]]] = []
    previous = None
    for table, event_id, reverts, stamp in rows:
        if stamp != previous:
            actions.append(([], set()))
            previous = stamp
        actions[-1][0].append((table, event_id))
        if reverts is not None:
            actions[-1][1].add((table, reverts))
    return actions


def history(store: Store, annotator: str) -> tuple[list[Event], list[Event]]:
    """The annotator's (undo stack, redo stack) of actions, newest last, each named by its first
    (table, event id).

    Replays the interactive actions in time order: one that reverts nothing is a new action (it
    clears the redo stack); one reverting exactly the rows of the top of the undo stack is an
    undo; one reverting the top of the redo stack is a redo.
    """
    done, undone = _stacks(store, _existing_annotator(store, annotator))
    return [rows[0] for rows in done], [rows[0] for rows in undone]


def _stacks(store: Store, annotator_id: int) -> tuple[list[list[Event]], list[list[Event]]]:
    done: list[list[Event]] = []
    undone: list[list[Event]] = []
    for rows, reverted in _actions(store, annotator_id):
        if reverted and len(reverted) == len(rows) and done and reverted == set(done[-1]):
            undone.append(rows)
            done.pop()
        elif reverted and len(reverted) == len(rows) and undone and reverted == set(undone[-1]):
            done.append(rows)
            undone.pop()
        else:
            done.append(rows)
            undone.clear()
    return done, undone


def undo(store: Store, annotator: str) -> Change | None:
    """Undo the annotator's newest action (None when there is nothing to undo)."""
    with store.transaction():
        done, _ = _stacks(store, _existing_annotator(store, annotator))
        return _revert(store, done[-1]) if done else None


def redo(store: Store, annotator: str) -> Change | None:
    """Re-apply the annotator's newest undone action (None when there is nothing to redo)."""
    with store.transaction():
        _, undone = _stacks(store, _existing_annotator(store, annotator))
        return _revert(store, undone[-1]) if undone else None


def _revert(store: Store, rows: list[Event]) -> Change:
    """Append, as one action, a row per row of an action giving its key the value it had just
    before that action; the Change names the first row's step."""
    stamp = _next_timestamp(store)
    changes = [_revert_row(store, table, event_id, stamp) for table, event_id in rows]
    return changes[0]


def _revert_row(store: Store, table: str, event_id: int, stamp: str) -> Change:
    conn = store.conn
    if table == "label_events":
        step_id, annotator_id = conn.execute(
            "SELECT step_id, annotator_id FROM label_events WHERE id = ?", (event_id,)
        ).fetchone()
        before = conn.execute(
            "SELECT behavior FROM label_events WHERE step_id = ? AND annotator_id = ? AND id < ?"
            " ORDER BY id DESC LIMIT 1",
            (step_id, annotator_id, event_id),
        ).fetchone()
        behavior = before[0] if before else None
        new_id = _insert_label(store, step_id, annotator_id, behavior, None, event_id, stamp)
        return Change(table, new_id, step_id)
    from_id, to_id, type, annotator_id = conn.execute(
        "SELECT from_step_id, to_step_id, type, annotator_id FROM bond_events WHERE id = ?",
        (event_id,),
    ).fetchone()
    before = conn.execute(
        "SELECT present FROM bond_events WHERE from_step_id = ? AND to_step_id = ? AND type = ?"
        " AND annotator_id = ? AND id < ? ORDER BY id DESC LIMIT 1",
        (from_id, to_id, type, annotator_id, event_id),
    ).fetchone()
    present = before[0] if before else 0
    new_id = _insert_bond(store, from_id, to_id, type, annotator_id, present, event_id, stamp)
    return Change(table, new_id, from_id)


def suggest_targets(texts: list[str], step: int, limit: int = 9) -> list[tuple[int, float]]:
    """Earlier steps j < step - 1 that step `step` most likely reflects on, best first.

    A stand-in: TF-IDF cosine over word tokens of the trace's own steps (numpy only, instant,
    nothing downloaded). The embedding classifier in `bondscope.models` will replace it; keep the
    signature. Ties go to the nearer step, since reflections usually revisit recent work.
    """
    candidates = step - 1
    if candidates <= 0:
        return []
    docs = [Counter(TOKEN.findall(text.lower())) for text in texts[:candidates]]
    query = Counter(TOKEN.findall(texts[step].lower()))
    frequency: Counter[str] = Counter(query.keys())
    for doc in docs:
        frequency.update(doc.keys())
    total = candidates + 1

    def weigh(doc: Counter[str]) -> dict[str, float]:
        return {w: math.log1p(c) * (math.log(total / frequency[w]) + 1.0) for w, c in doc.items()}

    query_weights = weigh(query)
    query_norm = math.sqrt(sum(v * v for v in query_weights.values()))
    scores = np.zeros(candidates)
    for j, doc in enumerate(docs):
        weights = weigh(doc)
        norm = math.sqrt(sum(v * v for v in weights.values())) * query_norm
        if norm > 0:
            scores[j] = sum(v * weights.get(w, 0.0) for w, v in query_weights.items()) / norm
    order = np.lexsort((-np.arange(candidates), -scores))
    return [(int(j), float(scores[j])) for j in order[:limit]]


def rank_targets_by_embedding(
    embeddings: np.ndarray, step: int, limit: int = 9
) -> list[tuple[int, float]]:
    """Earlier steps j < step - 1 ranked by the cosine of their embeddings with step `step`.

    The same contract as `suggest_targets` (best first, ties to the nearer step), but over
    sentence embeddings (one row per step, e.g. bondscope.models.encoder): a reflection often
    revisits a step in other words, which word overlap misses. Rows need not be unit length.
    """
    candidates = step - 1
    if candidates <= 0:
        return []
    vectors = np.asarray(embeddings[:candidates], dtype=np.float64)
    query = np.asarray(embeddings[step], dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1) * np.linalg.norm(query)
    dots = vectors @ query
    scores = np.divide(dots, norms, out=np.zeros(candidates), where=norms > 0)
    order = np.lexsort((-np.arange(candidates), -scores))
    return [(int(j), float(scores[j])) for j in order[:limit]]


@dataclass(slots=True)
class StepState:
    """One step as the labeling view needs it: span, my label, the model's hint, my R targets."""

    step_id: int
    start: int
    end: int
    label: str | None = None
    suggestion: str | None = None
    targets: list[int] | None = None  # step indexes my hydrogen bonds from this step point to
    confidence: float | None = None  # the model's confidence in `suggestion`, when it gave one


def load_steps(
    store: Store, trace_id: int, annotator: str, step_id: int | None = None
) -> list[StepState]:
    """The trace's active steps in order (or just `step_id`), with labels, hints and targets.

    The hint of a step is the label of its newest model annotator (domain.is_model_annotator).
    Queries go through the trace's steps, not the project-wide current_* views, so opening a
    trace costs the same in a small project and a large one.
    """
    conn = store.conn
    only = " AND s.id = ?" if step_id is not None else ""
    params: tuple[int, ...] = (trace_id, step_id) if step_id is not None else (trace_id,)
    states = {
        r[0]: StepState(r[0], r[1], r[2], targets=[])
        for r in conn.execute(
            f'SELECT s.id, s.start, s."end" FROM steps s WHERE s.trace_id = ?'
            f" AND s.retired_run_id IS NULL{only} ORDER BY s.idx",
            params,
        )
    }
    annotator_id = _existing_annotator(store, annotator)
    suggestion_ids: dict[int, int] = {}
    for sid, behavior, who, kind, name, event_id, confidence in conn.execute(
        "SELECT e.step_id, e.behavior, e.annotator_id, a.kind, a.name, e.id, e.confidence"
        " FROM label_events e"
        " JOIN annotators a ON a.id = e.annotator_id WHERE e.id IN (SELECT MAX(le.id)"
        " FROM label_events le JOIN steps s ON s.id = le.step_id WHERE s.trace_id = ?"
        f" AND s.retired_run_id IS NULL{only} GROUP BY le.step_id, le.annotator_id)",
        params,
    ):
        state = states[sid]
        if who == annotator_id:
            state.label = behavior
        elif (
            behavior is not None
            and is_model_annotator(name, kind)
            and event_id > suggestion_ids.get(sid, -1)
        ):
            state.suggestion = behavior
            state.confidence = confidence
            suggestion_ids[sid] = event_id
    for sid, target in conn.execute(
        "SELECT e.from_step_id, t.idx FROM bond_events e JOIN steps t ON t.id = e.to_step_id"
        " WHERE e.present = 1 AND e.type = 'hydrogen' AND e.id IN (SELECT MAX(be.id)"
        " FROM bond_events be JOIN steps s ON s.id = be.from_step_id WHERE s.trace_id = ?"
        # `+`: not by the annotator's index (all of their bonds in the project), by the steps
        f" AND s.retired_run_id IS NULL{only} AND +be.annotator_id = ?"
        " GROUP BY be.from_step_id, be.to_step_id, be.type) ORDER BY t.idx",
        (*params, annotator_id),
    ):
        states[sid].targets.append(target)
    return list(states.values())


@dataclass(frozen=True, slots=True)
class TraceBond:
    """A current bond of a trace, by row: `source` is the later step, `target` the earlier."""

    source: int
    target: int
    type: str
    mine: bool  # the given annotator's bond (else another annotator's: model or imported)


def trace_bonds(
    store: Store, trace_id: int, annotator: str, rows: dict[int, int]
) -> list[TraceBond]:
    """Every annotator's current bonds in the trace, mapped to rows by `rows` (step id -> row),
    for the bond gutter.

    The same latest-event-per-key rule as the `current_bonds` view, but through the trace's
    steps (like `load_steps`), so it costs the same in a small project and a large one. Bonds
    touching a retired step (not in `rows`) are left out.
    """
    me = _existing_annotator(store, annotator)
    bonds = []
    for from_id, to_id, type_, who in store.conn.execute(
        "SELECT e.from_step_id, e.to_step_id, e.type, e.annotator_id FROM bond_events e"
        " WHERE e.present = 1 AND e.id IN (SELECT MAX(be.id) FROM bond_events be"
        " JOIN steps s ON s.id = be.from_step_id WHERE s.trace_id = ? AND s.retired_run_id IS NULL"
        " GROUP BY be.from_step_id, be.to_step_id, be.type, be.annotator_id) ORDER BY e.id",
        (trace_id,),
    ):
        source, target = rows.get(from_id), rows.get(to_id)
        if source is not None and target is not None:
            bonds.append(TraceBond(source, target, type_, who == me))
    return bonds


@dataclass(frozen=True, slots=True)
class TraceHeader:
    """What the app shows of a trace besides its steps: the question above them, the text they
    are spans of."""

    question: str
    text: str


def trace_header(store: Store, trace_id: int) -> TraceHeader:
    question, text = store.conn.execute(
        "SELECT question, text FROM traces WHERE id = ?", (trace_id,)
    ).fetchone()
    return TraceHeader(question, text)


def step_location(store: Store, step_id: int) -> tuple[int, int]:
    """(trace id, step index) of a step, to show where an undo or redo happened."""
    trace_id, idx = store.conn.execute(
        "SELECT trace_id, idx FROM steps WHERE id = ?", (step_id,)
    ).fetchone()
    return int(trace_id), int(idx)


def _existing_annotator(store: Store, name: str) -> int:
    """The annotator's id, or -1 (matches nothing) when they have not labeled anything yet."""
    row = store.conn.execute("SELECT id FROM annotators WHERE name = ?", (name,)).fetchone()
    return int(row[0]) if row else -1


def label_counts(labels: list[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """(behaviors[4], transitions[4, 4]) of one trace's labels in step order, counted the way
    `structure.transition_counts` counts them in SQL (an unlabeled step breaks the chain), so the
    app can show a trace's structure from the labels it holds without a query per keystroke."""
    index = {behavior: i for i, behavior in enumerate(BEHAVIORS)}
    behaviors = np.zeros(4, dtype=np.int64)
    transitions = np.zeros((4, 4), dtype=np.int64)
    previous: int | None = None
    for label in labels:
        if label is None:
            previous = None
            continue
        current = index[label]
        behaviors[current] += 1
        if previous is not None:
            transitions[previous, current] += 1
        previous = current
    return behaviors, transitions


def newest_model_annotator(store: Store) -> str | None:
    """The model annotator with the newest label event: whose hints the app shows by default."""
    row = store.conn.execute(
        "SELECT a.name FROM label_events e JOIN annotators a ON a.id = e.annotator_id"
        " WHERE a.kind = 'model' ORDER BY e.id DESC LIMIT 1"
    ).fetchone()
    return row[0] if row else None


def has_labels(store: Store, annotator: str) -> bool:
    """The annotator has at least one label event (cleared labels count: they chose)."""
    found = store.conn.execute(
        "SELECT 1 FROM label_events e JOIN annotators a ON a.id = e.annotator_id"
        " WHERE a.name = ? LIMIT 1",
        (annotator,),
    ).fetchone()
    return found is not None


def default_annotator(store: Store, me: str, trace_id: int | None = None) -> str | None:
    """Whose labels a view shows when nobody chose: mine if I have any, else the newest model's.

    With `trace_id`, the same rule within that trace, falling back to any annotator who labeled
    it (alphabetically first), so a trace labeled only by a colleague still shows something.
    """
    if trace_id is None:
        return me if has_labels(store, me) else newest_model_annotator(store)
    names = [
        row[0]
        for row in store.conn.execute(
            "SELECT DISTINCT annotator FROM current_labels WHERE trace_id = ? ORDER BY 1",
            (trace_id,),
        )
    ]
    if me in names:
        return me
    newest = newest_model_annotator(store)
    return newest if newest in names else (names[0] if names else None)


@dataclass(frozen=True)
class ProjectChoices:
    """What a filter box can offer: annotators, the traces' models and sources (no blanks)."""

    annotators: list[str]
    models: list[str]
    sources: list[str]


def project_choices(store: Store) -> ProjectChoices:
    """Cheap DISTINCT reads, for the app's filter and scope boxes."""

    def distinct(sql: str) -> list[str]:
        return [row[0] for row in store.conn.execute(sql) if row[0]]

    return ProjectChoices(
        annotators=distinct("SELECT name FROM annotators ORDER BY 1"),
        models=distinct("SELECT DISTINCT model FROM traces ORDER BY 1"),
        sources=distinct("SELECT DISTINCT source FROM traces ORDER BY 1"),
    )
