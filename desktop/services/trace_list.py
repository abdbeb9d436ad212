"""What the app's trace list shows, read so that its cost never grows with traces x traces.

Two reads, both set-based:

- `trace_index`: id, name, model and source of every trace, from the three covering indexes
  (about 10 ms per 10,000 traces): the list sorts and filters on these in memory.
- `trace_columns`: steps, my labeled steps, the pre-labels' uncertainty and my agreement with
  them, for a page of traces (the rows on screen: tens of milliseconds) or for the whole project
  (in chunks of traces, off the GUI thread). One statement per chunk hands the current label events
  of the chunk's steps to numpy as comma-separated columns (as `structure.label_sequences` does);
  the latest-event rule and the per-trace figures are computed there.

No Qt here: the app calls these, and `benchmarks/ui.py` times the same calls without a window.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from bondscope.domain import BEHAVIORS
from bondscope.progress import NullProgress, Progress, check_cancelled
from bondscope.store import Store

ALPHABET = "".join(BEHAVIORS)
NO_BEHAVIOR = len(BEHAVIORS)  # the code of a cleared label (behavior NULL)
# Confidences travel as integers (billionths; -1: none): SQLite writes integers as text several
# times faster than floats, and 1e-9 is far below what a pre-labeler's confidence means.
CONFIDENCE = "coalesce(cast(round(e.confidence * 1e9) AS INTEGER), -1)"
CONFIDENCE_SCALE = 1e9
CHUNK_TRACES = 2_000  # traces per statement of a whole-project read: bounded memory


@dataclass(slots=True)
class TraceRow:
    """One line of the trace list."""

    trace_id: int
    name: str
    model: str
    source: str
    steps: int
    labeled: int  # steps with a current label of the annotator
    uncertainty: float | None = None  # 1 - mean confidence of the newest model annotator's labels
    agreement: float | None = None  # share of my labeled steps (with a hint) that match the hint


@dataclass(frozen=True)
class TraceIndex:
    """Every trace's id (ascending) and the texts the list sorts and filters on."""

    ids: np.ndarray
    names: list[str]
    models: list[str]
    sources: list[str]

    def __len__(self) -> int:
        return len(self.ids)


def trace_index(store: Store) -> TraceIndex:
    """Read from the name, model and source indexes, never the table (it holds the texts)."""
    columns = []
    for column in ("name", "model", "source"):
        rows = store.conn.execute(f"SELECT id, {column} FROM traces").fetchall()
        order = sorted(range(len(rows)), key=lambda i: rows[i][0])
        columns.append(([rows[i][0] for i in order], [rows[i][1] for i in order]))
    (ids, names), (_, models), (_, sources) = columns
    return TraceIndex(np.asarray(ids, dtype=np.int64), names, models, sources)


@dataclass(frozen=True)
class TraceColumns:
    """Per-trace figures, parallel to `ids` (ascending); NaN where a figure is undefined."""

    ids: np.ndarray
    steps: np.ndarray
    labeled: np.ndarray
    uncertainty: np.ndarray
    agreement: np.ndarray

    def position(self, trace_id: int) -> int:
        """The index of `trace_id` in the columns, or -1."""
        i = int(np.searchsorted(self.ids, trace_id))
        return i if i < len(self.ids) and self.ids[i] == trace_id else -1


def _annotator_id(store: Store, name: str) -> int:
    row = store.conn.execute("SELECT id FROM annotators WHERE name = ?", (name,)).fetchone()
    return int(row[0]) if row else -1


def _model_annotators(store: Store) -> np.ndarray:
    """Ids of the model annotators (kind 'model' or a `model:` name, as labeling.load_steps)."""
    rows = store.conn.execute(
        "SELECT id FROM annotators WHERE kind = 'model' OR name LIKE 'model:%'"
    ).fetchall()
    return np.asarray([r[0] for r in rows], dtype=np.int64)


def _parse(text: str | None, dtype: type) -> np.ndarray:
    return np.fromstring(text or "", dtype=dtype, sep=",")


def _confidences(text: str | None) -> np.ndarray:
    """The CONFIDENCE column back as floats (-1: none)."""
    scaled = _parse(text, np.int64)
    return np.where(scaled >= 0, scaled / CONFIDENCE_SCALE, -1.0)


@dataclass(frozen=True)
class _Labels:
    """One annotator's current labels (latest event per step, cleared ones dropped), by step."""

    row: np.ndarray  # the trace's position in the figures
    step: np.ndarray  # step id, ascending
    event: np.ndarray  # anything ordered like the event ids
    behavior: np.ndarray
    confidence: np.ndarray  # -1: none


def _current(
    step: np.ndarray, event: np.ndarray, behavior: np.ndarray, confidence: np.ndarray
) -> tuple[np.ndarray, ...]:
    """The latest event per step (events of one annotator), cleared labels dropped, by step."""
    if len(step) > 1 and not np.all(np.diff(step) > 0):  # several events of a step, or unsorted
        order = np.lexsort((event, step))
        step, event, behavior, confidence = (a[order] for a in (step, event, behavior, confidence))
        last = np.ones(len(step), dtype=bool)
        last[:-1] = step[1:] != step[:-1]
        step, event, behavior, confidence = (a[last] for a in (step, event, behavior, confidence))
    keep = behavior != NO_BEHAVIOR
    return step[keep], event[keep], behavior[keep], confidence[keep]


def _figures(
    n: int, labels: dict[int, _Labels], me: int, models: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labeled, uncertainty, agreement) per trace position from every annotator's labels."""
    empty = np.zeros(0, dtype=np.int64)
    mine = labels.get(me, _Labels(empty, empty, empty, empty, np.zeros(0)))
    labeled = np.bincount(mine.row, minlength=n)
    model_labels = [labels[a] for a in labels if a in set(models.tolist())]

    # Each step's hint: the newest current label of any model annotator.
    if len(model_labels) == 1:
        hint_step, hint_behavior = model_labels[0].step, model_labels[0].behavior
    elif model_labels:
        step = np.concatenate([m.step for m in model_labels])
        event = np.concatenate([m.event for m in model_labels])
        behavior = np.concatenate([m.behavior for m in model_labels])
        order = np.lexsort((event, step))
        step, behavior = step[order], behavior[order]
        newest = np.ones(len(step), dtype=bool)
        newest[:-1] = step[1:] != step[:-1]
        hint_step, hint_behavior = step[newest], behavior[newest]
    else:
        hint_step, hint_behavior = empty, empty
    at = np.minimum(np.searchsorted(hint_step, mine.step), max(len(hint_step) - 1, 0))
    hinted = hint_step[at] == mine.step if len(hint_step) else np.zeros(len(at), dtype=bool)
    same = hinted & (hint_behavior[at] == mine.behavior) if len(hint_step) else hinted
    with np.errstate(invalid="ignore", divide="ignore"):
        agreement = np.bincount(mine.row, weights=same, minlength=n) / np.bincount(
            mine.row[hinted], minlength=n
        )

    # Uncertainty: the trace's newest model annotator (the one with the newest current label
    # there), 1 - the mean of its confidences in the trace.
    uncertainty = np.full(n, np.nan)
    newest_event = np.full(n, -1, dtype=np.int64)
    for m in model_labels:
        latest = np.full(n, -1, dtype=np.int64)
        np.maximum.at(latest, m.row, m.event)
        newer = latest > newest_event
        newest_event[newer] = latest[newer]
        given = m.confidence >= 0
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.bincount(m.row[given], weights=m.confidence[given], minlength=n) / (
                np.bincount(m.row[given], minlength=n)
            )
        uncertainty[newer] = 1.0 - mean[newer]
    return labeled, uncertainty, agreement


def _page(store: Store, ids: np.ndarray, me: int, models: np.ndarray) -> TraceColumns:
    """The figures of a few traces, in two statements driven by their steps (indexes)."""
    conn = store.conn
    marks = ", ".join("?" * len(ids))
    params = ids.tolist()
    counted = dict(
        conn.execute(
            "SELECT trace_id, COUNT(*) FROM steps"
            f" WHERE trace_id IN ({marks}) AND retired_run_id IS NULL GROUP BY trace_id",
            params,
        ).fetchall()
    )
    steps = np.asarray([counted.get(i, 0) for i in params], dtype=np.int64)
    texts = conn.execute(
        "SELECT group_concat(s.trace_id), group_concat(e.step_id), group_concat(e.annotator_id),"
        " group_concat(e.id), group_concat(coalesce(instr(?, e.behavior) - 1, ?)),"
        f" group_concat({CONFIDENCE})"
        " FROM steps s JOIN label_events e ON e.step_id = s.id"
        f" WHERE s.trace_id IN ({marks}) AND s.retired_run_id IS NULL",
        (ALPHABET, NO_BEHAVIOR, *params),
    ).fetchone()
    trace, step, who, event, behavior = (_parse(t, np.int64) for t in texts[:5])
    confidence = _confidences(texts[5])
    row = np.searchsorted(ids, trace)
    labels = {}
    for annotator in np.unique(who).tolist():
        chosen = who == annotator
        current = _current(step[chosen], event[chosen], behavior[chosen], confidence[chosen])
        labels[annotator] = _with_rows(current, step[chosen], row[chosen])
    return TraceColumns(ids, steps, *_figures(len(ids), labels, me, models))


def _with_rows(current: tuple[np.ndarray, ...], steps: np.ndarray, rows: np.ndarray) -> _Labels:
    """Attach each current label's trace position, looked up by step among (steps, rows)."""
    order = np.argsort(steps, kind="stable")
    at = np.searchsorted(steps[order], current[0])
    return _Labels(rows[order][at], *current)


# Ids per statement of the whole-project read: parsing a chunk holds the GIL (~1 ms per 20,000
# numbers), so small chunks, with a pause between them, keep a keystroke on the GUI thread from
# waiting behind it.
STEP_CHUNK = 20_000
EVENT_CHUNK = 20_000


def _whole_project(store: Store, me: int, models: np.ndarray, progress: Progress) -> TraceColumns:
    """The figures of every trace from sequential scans of steps and label events by id range
    (the cheapest reads SQLite has), with the latest-event rule applied in numpy."""
    conn = store.conn
    ids = np.sort(np.asarray([r[0] for r in conn.execute("SELECT id FROM traces")], dtype=np.int64))
    n = len(ids)
    last_step, last_event, last_annotator = conn.execute(
        "SELECT (SELECT MAX(id) FROM steps), (SELECT MAX(id) FROM label_events),"
        " (SELECT MAX(id) FROM annotators)"
    ).fetchone()
    last_step, last_event = last_step or 0, last_event or 0
    progress.start("Counting steps and labels", last_step + last_event)
    step_ids, step_traces = [], []
    for begin in range(1, last_step + 1, STEP_CHUNK):
        check_cancelled(progress)
        texts = conn.execute(
            "SELECT group_concat(id), group_concat(trace_id) FROM steps"
            " WHERE id BETWEEN ? AND ? AND retired_run_id IS NULL",
            (begin, begin + STEP_CHUNK - 1),
        ).fetchone()
        step_ids.append(_parse(texts[0], np.int64))
        step_traces.append(_parse(texts[1], np.int64))
        progress.advance(STEP_CHUNK)
    active = np.concatenate(step_ids) if step_ids else np.zeros(0, dtype=np.int64)
    step_row = np.searchsorted(ids, np.concatenate(step_traces)) if step_traces else active
    steps = np.bincount(step_row, minlength=n).astype(np.int64)

    bits = max(1, int(last_annotator or 1).bit_length())
    codes, confidences = [], []
    for begin in range(1, last_event + 1, EVENT_CHUNK):
        check_cancelled(progress)
        texts = conn.execute(
            f"SELECT group_concat(((e.step_id << {bits}) + e.annotator_id) * 8"
            f" + coalesce(instr(?, e.behavior) - 1, ?)), group_concat({CONFIDENCE})"
            " FROM label_events e WHERE e.id BETWEEN ? AND ?",
            (ALPHABET, NO_BEHAVIOR, begin, begin + EVENT_CHUNK - 1),
        ).fetchone()
        codes.append(_parse(texts[0], np.int64))
        confidences.append(_confidences(texts[1]))
        progress.advance(EVENT_CHUNK)
    code = np.concatenate(codes) if codes else np.zeros(0, dtype=np.int64)
    confidence = np.concatenate(confidences) if confidences else np.zeros(0)
    del codes, confidences
    who = (code >> 3) & ((1 << bits) - 1)
    labels = {}
    for annotator in np.unique(who).tolist():
        chosen = np.flatnonzero(who == annotator)  # in id order: the position orders events
        c = code[chosen]
        step, event, behavior, conf = _current(c >> (3 + bits), chosen, c & 7, confidence[chosen])
        at = np.minimum(np.searchsorted(active, step), max(len(active) - 1, 0))
        on = active[at] == step if len(active) else np.zeros(len(step), dtype=bool)  # retired: off
        labels[annotator] = _Labels(step_row[at[on]], step[on], event[on], behavior[on], conf[on])
    return TraceColumns(ids, steps, *_figures(n, labels, me, models))


def trace_columns(
    store: Store,
    annotator: str,
    trace_ids: Sequence[int] | np.ndarray | None = None,
    progress: Progress | None = None,
) -> TraceColumns:
    """The figures of `trace_ids` (default: every trace), in ascending id order.

    A page of ids is read through the indexes of its steps; the whole project by sequential
    scans inside one read transaction, so the figures are of one moment even while someone
    labels; a cancel (`progress`) is seen between statements.
    """
    me, models = _annotator_id(store, annotator), _model_annotators(store)
    if trace_ids is not None:
        ids = np.unique(np.asarray(trace_ids, dtype=np.int64))
        parts = [_page(store, block, me, models) for block in _blocks(ids)]
        if not parts:
            empty = np.zeros(0, dtype=np.int64)
            return TraceColumns(empty, empty, empty, np.zeros(0), np.zeros(0))
        return TraceColumns(
            *(
                np.concatenate([getattr(p, f) for p in parts])
                for f in TraceColumns.__dataclass_fields__
            )
        )
    with _read_snapshot(store):
        return _whole_project(store, me, models, progress or NullProgress())


def _blocks(ids: np.ndarray) -> Iterator[np.ndarray]:
    for begin in range(0, len(ids), CHUNK_TRACES):
        yield ids[begin : begin + CHUNK_TRACES]


@contextmanager
def _read_snapshot(store: Store) -> Iterator[None]:
    """BEGIN ... COMMIT around reads: WAL gives them one snapshot (nothing is written)."""
    store.conn.execute("BEGIN")
    try:
        yield
    finally:
        store.conn.execute("COMMIT")


def trace_rows(
    store: Store, annotator: str, trace_ids: Sequence[int] | None = None
) -> list[TraceRow]:
    """Rows of the trace list for `trace_ids` (default: every trace), in ascending id order."""
    index = trace_index(store)
    columns = trace_columns(store, annotator, index.ids if trace_ids is None else trace_ids)
    at = np.searchsorted(index.ids, columns.ids)
    return [
        row_from(index, int(j), columns, i)
        for i, j in enumerate(at)
        if index.ids[j] == columns.ids[i]
    ]


def row_from(index: TraceIndex, at: int, columns: TraceColumns, i: int) -> TraceRow:
    """The list row of index position `at`, with the figures at position `i` of `columns`."""

    def value(array: np.ndarray) -> float | None:
        v = float(array[i])
        return None if np.isnan(v) else v

    return TraceRow(
        int(index.ids[at]),
        index.names[at],
        index.models[at],
        index.sources[at],
        int(columns.steps[i]),
        int(columns.labeled[i]),
        value(columns.uncertainty),
        value(columns.agreement),
    )


def trace_id_named(store: Store, name: str) -> int | None:
    row = store.conn.execute("SELECT id FROM traces WHERE name = ?", (name,)).fetchone()
    return int(row[0]) if row else None


def trace_text(store: Store, trace_id: int) -> tuple[str, str]:
    """(text, question) of a trace, for the trace view."""
    text, question = store.conn.execute(
        "SELECT text, question FROM traces WHERE id = ?", (trace_id,)
    ).fetchone()
    return text, question
