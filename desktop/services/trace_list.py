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
SEPARATOR = "\x1f"  # char(31), the unit separator: between the names in trace_index
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
    """Read from the name, model and source indexes, never the table (it holds the texts).

    Each column comes as one string joined by the unit separator (a list of 100,000 tuples is
    several times slower); a value that holds the separator itself makes that column come as
    rows instead.
    """
    ids = np.zeros(0, dtype=np.int64)
    columns = []
    for column in ("name", "model", "source"):
        id_text, joined, count = store.conn.execute(
            f"SELECT group_concat(id), group_concat({column}, char(31)), COUNT(*) FROM traces"
        ).fetchone()
        row_ids = _parse(id_text, np.int64)
        values = joined.split(SEPARATOR) if count else []
        if len(values) != count:
            rows = store.conn.execute(f"SELECT id, {column} FROM traces").fetchall()
            row_ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
            values = [r[1] for r in rows]
        order = np.argsort(row_ids, kind="stable")
        ids = row_ids[order]
        columns.append([values[i] for i in order.tolist()])
    return TraceIndex(ids, *columns)


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
    """Ids of the model annotators (domain.is_model_annotator, as labeling.load_steps)."""
    rows = store.conn.execute("SELECT id FROM annotators WHERE kind = 'model'").fetchall()
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


class _Sums:
    """Per-trace sums that the label reads add to, a chunk of steps at a time (every event of a
    step comes in the same chunk), and the figures they make: memory grows with traces, not
    with events."""

    def __init__(self, n: int, me: int, models: np.ndarray) -> None:
        self.n, self.me, self.models = n, me, models.tolist()
        self.labeled = np.zeros(n, dtype=np.int64)
        self.agreeing = np.zeros(n)
        self.hinted = np.zeros(n)
        self.latest = {m: np.full(n, -1, dtype=np.int64) for m in self.models}
        self.confidence = {m: np.zeros(n) for m in self.models}
        self.confident = {m: np.zeros(n) for m in self.models}

    def add(self, labels: dict[int, _Labels]) -> None:
        n = self.n
        empty = np.zeros(0, dtype=np.int64)
        mine = labels.get(self.me, _Labels(empty, empty, empty, empty, np.zeros(0)))
        self.labeled += np.bincount(mine.row, minlength=n)
        model_labels = [labels[m] for m in self.models if m in labels]
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
        if len(hint_step) and len(mine.step):
            at = np.minimum(np.searchsorted(hint_step, mine.step), len(hint_step) - 1)
            hinted = hint_step[at] == mine.step
            same = hinted & (hint_behavior[at] == mine.behavior)
            self.hinted += np.bincount(mine.row, weights=hinted, minlength=n)
            self.agreeing += np.bincount(mine.row, weights=same, minlength=n)
        for m in self.models:
            if m in labels:
                model = labels[m]
                np.maximum.at(self.latest[m], model.row, model.event)
                given = model.confidence >= 0
                rows = model.row[given]
                self.confidence[m] += np.bincount(
                    rows, weights=model.confidence[given], minlength=n
                )
                self.confident[m] += np.bincount(rows, minlength=n)

    def figures(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(labeled, uncertainty, agreement) per trace; NaN where undefined.

        Uncertainty is that of the trace's newest model annotator (the one with the newest
        current label there): 1 - the mean of its confidences in the trace.
        """
        with np.errstate(invalid="ignore", divide="ignore"):
            agreement = self.agreeing / self.hinted
            uncertainty = np.full(self.n, np.nan)
            newest_event = np.full(self.n, -1, dtype=np.int64)
            for m in self.models:
                newer = self.latest[m] > newest_event
                newest_event[newer] = self.latest[m][newer]
                uncertainty[newer] = 1.0 - (self.confidence[m] / self.confident[m])[newer]
        return self.labeled, uncertainty, agreement


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
    sums = _Sums(len(ids), me, models)
    sums.add(labels)
    return TraceColumns(ids, steps, *sums.figures())


def _with_rows(current: tuple[np.ndarray, ...], steps: np.ndarray, rows: np.ndarray) -> _Labels:
    """Attach each current label's trace position, looked up by step among (steps, rows)."""
    order = np.argsort(steps, kind="stable")
    at = np.searchsorted(steps[order], current[0])
    return _Labels(rows[order][at], *current)


# Step ids per statement of the whole-project read: parsing a chunk holds the GIL (~1 ms per 20,000
# numbers), so small chunks, with a pause between them, keep a keystroke on the GUI thread from
# waiting behind it.
STEP_CHUNK = 20_000


def _whole_project(store: Store, me: int, models: np.ndarray, progress: Progress) -> TraceColumns:
    """The figures of every trace, a range of step ids at a time: the steps by their primary key,
    the label events of me and the model annotators by `label_events_latest` (all events of a
    step in one chunk, so the latest-event rule is applied per chunk, in numpy)."""
    conn = store.conn
    ids = np.sort(np.asarray([r[0] for r in conn.execute("SELECT id FROM traces")], np.int64))
    n = len(ids)
    last_step, last_annotator = conn.execute(
        "SELECT (SELECT MAX(id) FROM steps), (SELECT MAX(id) FROM annotators)"
    ).fetchone()
    last_step = last_step or 0
    bits = max(1, int(last_annotator or 1).bit_length())
    wanted = [me, *models.tolist()]
    marks = ", ".join("?" * len(wanted))
    steps = np.zeros(n, dtype=np.int64)
    sums = _Sums(n, me, models)
    progress.start("Counting steps and labels", last_step)
    for lo in range(1, last_step + 1, STEP_CHUNK):
        check_cancelled(progress)
        hi = lo + STEP_CHUNK - 1
        texts = conn.execute(
            "SELECT group_concat(id), group_concat(trace_id) FROM steps"
            " WHERE id BETWEEN ? AND ? AND retired_run_id IS NULL",
            (lo, hi),
        ).fetchone()
        active = _parse(texts[0], np.int64)
        active_rows = np.searchsorted(ids, _parse(texts[1], np.int64))
        steps += np.bincount(active_rows, minlength=n)
        # `+`: the annotators filter the step range; they must not pick the index
        texts = conn.execute(
            f"SELECT group_concat(((e.step_id << {bits}) + e.annotator_id) * 8"
            f" + coalesce(instr(?, e.behavior) - 1, ?)), group_concat(e.id),"
            f" group_concat({CONFIDENCE}) FROM label_events e"
            f" WHERE e.step_id BETWEEN ? AND ? AND +e.annotator_id IN ({marks})",
            (ALPHABET, NO_BEHAVIOR, lo, hi, *wanted),
        ).fetchone()
        code, event, confidence = (
            _parse(texts[0], np.int64),
            _parse(texts[1], np.int64),
            _confidences(texts[2]),
        )
        who = (code >> 3) & ((1 << bits) - 1)
        labels = {}
        for annotator in np.unique(who).tolist():
            chosen = who == annotator
            c = code[chosen]
            current = _current(c >> (3 + bits), event[chosen], c & 7, confidence[chosen])
            step = current[0]
            at = np.minimum(np.searchsorted(active, step), max(len(active) - 1, 0))
            on = active[at] == step if len(active) else np.zeros(len(step), dtype=bool)
            labels[annotator] = _Labels(active_rows[at[on]], *(a[on] for a in current))
        sums.add(labels)
        progress.advance(STEP_CHUNK)
    return TraceColumns(ids, steps, *sums.figures())


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
