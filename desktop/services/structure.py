"""Structure statistics of labeled traces (paper.md §3.2, §3.3, §8 B1-B3), headless.

Counting is vectorized: one SQL scan hands one annotator's labels to numpy as packed integers
(`label_sequences`), so a million labeled steps never become Python objects.
Formulas and every choice made are in docs/metrics.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from functools import cached_property
from importlib.resources import files
from itertools import combinations
from typing import Any

import numpy as np
from bondscope.domain import BEHAVIORS
from bondscope.metafilter import (
    MISSING,
    PREFIX,
    MetaFilter,
    conditions,
    group_value_sql,
    json_path,
    meta_key,
)
from bondscope.services.labeling import default_annotator, label_counts
from bondscope.store import Store

ALPHABET = "".join(BEHAVIORS)  # instr(ALPHABET, behavior) - 1 is the behavior's index
COMPATIBLE, INCOMPATIBLE = 0.9, 0.8  # paper.md §3.3 thresholds on Pearson r
MIXING_R = 0.9


class SelectionError(LookupError):
    """The selection cannot be measured as asked (ambiguous annotator, nothing labeled, ...)."""


@dataclass(frozen=True)
class Selection:
    """Which labels to measure; None means no filter. `run` is the run that wrote the labels;
    `meta` holds `--where meta.KEY=VALUE` conditions on the traces (bondscope.metafilter)."""

    model: str | None = None
    source: str | None = None
    annotator: str | None = None
    run: int | None = None
    meta: tuple[MetaFilter, ...] = ()

    def describe(self) -> str:
        chosen = [
            f"{f.name}={getattr(self, f.name)}"
            for f in fields(self)
            if f.name != "meta" and getattr(self, f.name) is not None
        ]
        chosen += [where.describe() for where in self.meta]
        return ", ".join(chosen) or "all labels"

    def trace_conditions(self, trace_id: str) -> tuple[list[str], list[Any]]:
        """SQL conditions on the trace (by its id column `trace_id`): model, source, meta."""
        clauses, params = [], []
        for column in ("model", "source"):
            value = getattr(self, column)
            if value is not None:
                clauses.append(f"{trace_id} IN (SELECT id FROM traces WHERE {column} = ?)")
                params.append(value)
        if self.meta:
            meta_clauses, meta_params = conditions("meta", self.meta)
            clauses.append(
                f"{trace_id} IN (SELECT id FROM traces WHERE {' AND '.join(meta_clauses)})"
            )
            params += meta_params
        return clauses, params

    def where(self) -> tuple[str, list[Any]]:
        """SQL conditions on `current_labels` (aliased l) for this selection."""
        clauses, params = [], []
        if self.annotator is not None:
            clauses.append("l.annotator = ?")
            params.append(self.annotator)
        trace_clauses, trace_params = self.trace_conditions("l.trace_id")
        clauses += trace_clauses
        params += trace_params
        if self.run is not None:
            clauses.append("l.event_id IN (SELECT id FROM label_events WHERE run_id = ?)")
            params.append(self.run)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def require_annotators(store: Store, names: list[str]) -> None:
    """Every name is an annotator of this project, else one SelectionError line naming the
    unknown ones and the known ones: a misspelt name must not read as "no labels"."""
    known = [r[0] for r in store.conn.execute("SELECT name FROM annotators ORDER BY name")]
    unknown = [name for name in dict.fromkeys(names) if name not in known]
    if unknown:
        listed = ", ".join(known[:8]) + (f", … ({len(known)} in all)" if len(known) > 8 else "")
        raise SelectionError(
            f"no such annotator: {', '.join(unknown)}"
            + (f"; this project has: {listed}" if known else "; this project has no labels yet")
        )


def resolve_annotator(store: Store, selection: Selection) -> Selection:
    """Fill in the annotator: one at a time, never a silent mix of people and models.

    With no --annotator, the selection's only annotator is used; when several labeled it, the
    caller must choose (their labels disagree, and pooling them would count each step twice).
    """
    if selection.annotator is not None:
        return selection
    ids = store.conn.execute("SELECT DISTINCT annotator_id FROM label_events LIMIT 2").fetchall()
    if len(ids) == 1:  # the common case, without a pass over the view
        name = store.conn.execute("SELECT name FROM annotators WHERE id = ?", ids[0]).fetchone()
        return replace(selection, annotator=name[0])
    where, params = selection.where()
    found = store.conn.execute(
        f"SELECT annotator, COUNT(*) FROM current_labels l{where} GROUP BY annotator "
        "ORDER BY COUNT(*) DESC, annotator",
        params,
    ).fetchall()
    if not found:
        raise SelectionError(f"no labels match {selection.describe()}")
    if len(found) > 1:
        listed = ", ".join(f"{name} ({n} labels)" for name, n in found)
        raise SelectionError(
            f"several annotators labeled {selection.describe()}: {listed}; "
            "pass --annotator NAME or --by annotator"
        )
    return replace(selection, annotator=found[0][0])


IDX_BITS = 24  # a label's key is (trace_id << IDX_BITS) + idx: traces of < 16.7M steps
NO_BEHAVIOR = 4  # the code of a cleared label (behavior NULL), dropped after the latest-event rule


@dataclass(frozen=True)
class Sequences:
    """The current labels of one selection, sorted by (trace, step): parallel numpy arrays."""

    trace: np.ndarray
    idx: np.ndarray
    behavior: np.ndarray  # 0-3 in BEHAVIORS order

    @cached_property
    def adjacent(self) -> np.ndarray:
        """adjacent[k]: label k + 1 is the step right after label k in the same trace.

        A gap (an unlabeled step) breaks the chain rather than joining distant steps.
        """
        return (np.diff(self.idx) == 1) & (self.trace[1:] == self.trace[:-1])

    def pair_codes(self) -> np.ndarray:
        """from * 4 + to for every transition, in order."""
        return self.behavior[:-1][self.adjacent] * 4 + self.behavior[1:][self.adjacent]


def label_sequences(store: Store, selection: Selection) -> Sequences:
    """One annotator's current labels as arrays, without the `current_labels` view.

    The view groups every event of every annotator and costs ~1 s per million labels, so this
    scans the annotator's events in id order (a plain table scan is the cheapest read SQLite
    offers), has SQL pack each into one integer and join the step's (trace, idx), fetches them as
    one comma-separated string (far cheaper than a million Python rows) and applies the latest-event
    rule in numpy: per step, the event seen last wins; a cleared label (NULL) then drops out.
    Active steps have unique (trace, idx), so the key identifies the step.
    """
    selection = resolve_annotator(store, selection)
    found = store.conn.execute(
        "SELECT id FROM annotators WHERE name = ?", (selection.annotator,)
    ).fetchone()
    if found is None:
        empty = np.zeros(0, dtype=np.int64)
        return Sequences(empty, empty, empty)
    clauses, params = ["e.annotator_id = ?"], [found[0]]
    trace_clauses, trace_params = selection.trace_conditions("s.trace_id")
    clauses += trace_clauses
    params += trace_params
    # bit 3 marks events of the selected run (all events when no run is selected)
    in_run = "1" if selection.run is None else "(e.run_id IS ?)"
    run_params = [] if selection.run is None else [selection.run]
    text = store.conn.execute(
        f"""SELECT group_concat(((s.trace_id << {IDX_BITS}) + s.idx) * 16 + {in_run} * 8
                                + coalesce(instr(?, e.behavior) - 1, {NO_BEHAVIOR}))
            FROM label_events e NOT INDEXED
            JOIN steps s ON s.id = e.step_id AND s.retired_run_id IS NULL
            WHERE {" AND ".join(clauses)}""",
        [*run_params, ALPHABET, *params],
    ).fetchone()[0]
    codes = np.fromstring(text or "", dtype=np.int64, sep=",")
    keys = codes >> 4
    if len(keys) and not np.all(np.diff(keys) > 0):  # some step has several events: keep the last
        keys, last = np.unique(keys[::-1], return_index=True)
        codes = codes[::-1][last]
    # the current label must be a behavior, written by the selected run
    keep = ((codes & 7) != NO_BEHAVIOR) & ((codes & 8) != 0)
    keys, behavior = keys[keep], codes[keep] & 7
    return Sequences(keys >> IDX_BITS, keys & ((1 << IDX_BITS) - 1), behavior)


@dataclass(frozen=True)
class Counts:
    """Pooled counts of one selection: transitions[from, to], behaviors[b], labeled traces."""

    transitions: np.ndarray
    behaviors: np.ndarray
    traces: int


def transition_counts(store: Store, selection: Selection) -> Counts:
    """The corpus-level counts of §3.2 for one annotator's labels (see `resolve_annotator`)."""
    return counts_of(label_sequences(store, selection))


def counts_of(labels: Sequences) -> Counts:
    """Counts of labels sorted by (trace, step); they are sums, so per-block counts add up."""
    transitions = np.bincount(labels.pair_codes(), minlength=16).reshape(4, 4)
    behaviors = np.bincount(labels.behavior, minlength=4)
    traces = int(np.count_nonzero(np.diff(labels.trace))) + 1 if len(labels.trace) else 0
    return Counts(transitions.astype(np.int64), behaviors.astype(np.int64), traces)


@dataclass(frozen=True)
class CorpusSnapshot:
    """The app's corpus view at one moment: whose labels, their counts over the project, and
    the counts of one trace at that same moment (the app adds what changes there since)."""

    annotator: str
    counts: Counts
    trace_id: int | None
    trace_behaviors: np.ndarray
    trace_transitions: np.ndarray


def corpus_snapshot(store: Store, annotator: str, trace_id: int | None) -> CorpusSnapshot:
    """Whose labels `labeling.default_annotator` picks for `annotator` (theirs if they have
    any, else the newest model's) over the project, with the counts of `trace_id`, all in one
    read snapshot."""
    store.conn.execute("BEGIN")
    try:
        who = default_annotator(store, annotator) or annotator
        counts = transition_counts(store, Selection(annotator=who))
        labels = [] if trace_id is None else trace_labels(store, trace_id, who)
    finally:
        store.conn.execute("COMMIT")
    behaviors, transitions = label_counts(labels)
    return CorpusSnapshot(who, counts, trace_id, behaviors, transitions)


def trace_labels(store: Store, trace_id: int, annotator: str) -> list[str | None]:
    """The annotator's current label of each active step of the trace, in order (None: none)."""
    return [
        row[0]
        for row in store.conn.execute(
            "SELECT e.behavior FROM steps s LEFT JOIN label_events e ON e.id = ("
            " SELECT MAX(id) FROM label_events WHERE step_id = s.id AND annotator_id ="
            " (SELECT id FROM annotators WHERE name = ?))"
            " WHERE s.trace_id = ? AND s.retired_run_id IS NULL ORDER BY s.idx",
            (annotator, trace_id),
        )
    ]


def trace_transition_counts(store: Store, selection: Selection) -> tuple[np.ndarray, np.ndarray]:
    """(trace ids, transitions[trace, from, to]): per-trace counts for resampling traces.

    A trace with a single labeled step stays in, with no transitions.
    """
    labels = label_sequences(store, selection)
    ids, position = np.unique(labels.trace, return_inverse=True)
    cells = position[:-1][labels.adjacent] * 16 + labels.pair_codes()
    per_trace = np.bincount(cells, minlength=len(ids) * 16)
    return ids, per_trace.astype(np.int64).reshape(len(ids), 4, 4)


def transition_matrix(counts: np.ndarray, alpha: float = 0.0) -> np.ndarray:
    """Row-normalized P(to | from) with Laplace smoothing alpha; a row never left stays zero."""
    smoothed = np.asarray(counts, dtype=float) + alpha
    totals = smoothed.sum(axis=-1, keepdims=True)
    return np.divide(smoothed, totals, out=np.zeros_like(smoothed), where=totals > 0)


def never_left(transitions: np.ndarray) -> list[str]:
    """The behaviors with no outgoing transition: their rows of P are zero unless smoothed."""
    return [b for b, n in zip(BEHAVIORS, np.sum(transitions, axis=1), strict=True) if n == 0]


@dataclass(frozen=True)
class CorpusMatrix:
    """The transition matrix of a labeled selection, with what it was computed from."""

    selection: Selection  # the annotator filled in (`resolve_annotator`)
    counts: Counts
    alpha: float  # the smoothing applied
    P: np.ndarray


def corpus_matrix(
    store: Store, selection: Selection, alpha: float = 0.0, *, fallback_alpha: float | None = None
) -> CorpusMatrix:
    """P(to | from) of one annotator's labels over the selection, smoothed by `alpha`.

    The one policy for a behavior that is never left (docs/metrics.md, "Rows never left"): with
    alpha = 0 its row would be zero, P not row-stochastic, and neither a walk nor a stationary pi
    exists, so this refuses with a SelectionError naming the behaviors. A caller that shows the
    smoothing it used may pass `fallback_alpha` instead, applied only in that case (the app's
    Transition tab does, with the paper's 0.001, and prints the alpha in its title).
    """
    selection = resolve_annotator(store, selection)
    counts = transition_counts(store, selection)
    stuck = never_left(counts.transitions)
    if stuck and alpha == 0:
        if fallback_alpha is None:
            raise SelectionError(
                f"{store.path.name} ({selection.describe()}): no transition out of "
                f"{', '.join(stuck)} (zero rows of P); pass --alpha 0.001 to smooth"
            )
        alpha = fallback_alpha
    return CorpusMatrix(selection, counts, alpha, transition_matrix(counts.transitions, alpha))


def stationary(P: np.ndarray) -> np.ndarray:
    """The stationary distribution: left eigenvector of P for the eigenvalue nearest 1, sum 1."""
    values, vectors = np.linalg.eig(np.asarray(P, dtype=float).T)
    vector = np.real(vectors[:, np.argmin(np.abs(values - 1))])
    return vector / vector.sum()


def pearson(P1: np.ndarray, P2: np.ndarray) -> float:
    """Pearson r over the 16 cells, the paper's structure similarity (§3.3).

    NaN when a matrix is constant (e.g. all zeros: no transitions), where r is undefined.
    """
    a, b = np.ravel(P1).astype(float), np.ravel(P2).astype(float)
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def js_rows(P1: np.ndarray, P2: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence of each row pair, in bits (log base 2, so 0 <= JS <= 1)."""
    P1, P2 = np.asarray(P1, dtype=float), np.asarray(P2, dtype=float)
    M = (P1 + P2) / 2

    def kl(p: np.ndarray) -> np.ndarray:
        ratio = np.divide(p, M, out=np.ones_like(p), where=p > 0)
        return np.sum(p * np.log2(ratio), axis=-1)

    return (kl(P1) + kl(P2)) / 2


def weighted_js(P1: np.ndarray, P2: np.ndarray, pi: np.ndarray) -> float:
    """sum_b pi(b) JS(P1(.|b) || P2(.|b)) in bits: each row's divergence, weighted by its use."""
    return float(np.dot(pi, js_rows(P1, P2)))


def verdict(r: float) -> str:
    """The paper's reading of r between two structures (§3.3, §8 B2)."""
    if r >= COMPATIBLE:
        return "compatible"
    return "borderline" if r >= INCOMPATIBLE else "incompatible"


def compare(P1: np.ndarray, P2: np.ndarray) -> dict[str, Any]:
    """r, pi-weighted JS (weights: side 1's stationary pi), L1 of the stationary pis, verdict."""
    pi1, pi2 = stationary(P1), stationary(P2)
    r = pearson(P1, P2)
    return {
        "pearson_r": r,
        "weighted_js_bits": weighted_js(P1, P2, pi1),
        "pi_l1": float(np.abs(pi1 - pi2).sum()),
        "verdict": verdict(r),
        "pi": [dict(zip(BEHAVIORS, pi.tolist(), strict=True)) for pi in (pi1, pi2)],
    }


@dataclass(frozen=True)
class BootstrapCurve:
    """Mean and sd of r(P of n resampled traces, P of the whole corpus) for each n."""

    sizes: np.ndarray
    mean: np.ndarray
    sd: np.ndarray


def bootstrap_r(
    per_trace: np.ndarray,
    sizes: list[int],
    *,
    repeats: int = 100,
    alpha: float = 0.0,
    seed: int = 0,
) -> BootstrapCurve:
    """Stability versus sample size (§8 B3): n traces drawn with replacement, `repeats` times.

    Sizes larger than the corpus are dropped (resampling more traces than exist says nothing).
    """
    n_traces = len(per_trace)
    flat = per_trace.reshape(n_traces, 16).astype(float)
    full = transition_matrix(flat.sum(axis=0).reshape(4, 4), alpha).ravel()
    rng = np.random.default_rng(seed)
    kept = [n for n in sizes if 0 < n <= n_traces]
    offsets = n_traces * np.arange(repeats)[:, None]  # one bincount row per repeat
    means, sds = [], []
    for n in kept:
        drawn = rng.integers(0, n_traces, size=(repeats, n)) + offsets
        weights = np.bincount(drawn.ravel(), minlength=repeats * n_traces)
        sampled = weights.reshape(repeats, n_traces) @ flat
        P = transition_matrix(sampled.reshape(repeats, 4, 4), alpha).reshape(repeats, 16)
        centered = P - P.mean(axis=1, keepdims=True)
        target = full - full.mean()
        r = centered @ target / (np.linalg.norm(centered, axis=1) * np.linalg.norm(target))
        means.append(r.mean())
        sds.append(r.std(ddof=1) if repeats > 1 else 0.0)
    return BootstrapCurve(np.array(kept), np.array(means), np.array(sds))


def groups(store: Store, selection: Selection, by: str) -> list[Selection]:
    """The selection split by model, source, annotator or `meta.KEY` (each value with labels;
    traces without the key form their own group)."""
    where, params = selection.where()
    if by.startswith(PREFIX):
        key = meta_key(by, "--by")
        path = json_path(key)
        values = store.conn.execute(
            f"SELECT DISTINCT {group_value_sql('t.meta')} FROM current_labels l "
            f"JOIN traces t ON t.id = l.trace_id{where} ORDER BY 1",
            [path, path, *params],
        ).fetchall()
        return [
            replace(selection, meta=(*selection.meta, MetaFilter(key, value)))
            for (value,) in values
        ]
    if by not in ("model", "source", "annotator"):
        raise SelectionError(f"cannot group by {by!r} (model, source, annotator or meta.KEY)")
    column = "l.annotator" if by == "annotator" else f"t.{by}"
    values = store.conn.execute(
        f"SELECT DISTINCT {column} FROM current_labels l JOIN traces t ON t.id = l.trace_id"
        f"{where} ORDER BY 1",
        params,
    ).fetchall()
    return [replace(selection, **{by: value}) for (value,) in values]


def group_name(selection: Selection, by: str) -> str | None:
    """The value that `groups(..., by)` gave this selection, as shown in results."""
    if by.startswith(PREFIX):
        last = selection.meta[-1]
        return MISSING if last.value is None else last.value
    return getattr(selection, by)


def mixing_check(store: Store, selection: Selection, threshold: float = MIXING_R) -> list[str]:
    """Warnings when the selection pools models or sources whose structures disagree (r < 0.9).

    A pooled matrix of two incompatible structures describes neither (paper.md §3.4). Per-trace
    counts are read once and summed per model and per source, so the check costs one scan.
    """
    warnings = []
    selection = resolve_annotator(store, selection)
    ids, per_trace = trace_transition_counts(store, selection)
    for by in ("model", "source"):
        if getattr(selection, by) is not None:
            continue
        value_of = dict(store.conn.execute(f"SELECT id, {by} FROM traces"))
        values = np.array([value_of[int(i)] for i in ids], dtype=object)  # one per trace
        counts = {value: per_trace[values == value].sum(axis=0) for value in sorted(set(values))}
        warnings += mixing_warnings(by, counts, threshold)
    return warnings


def mixing_warnings(
    by: str, transitions: dict[str, np.ndarray], threshold: float = MIXING_R
) -> list[str]:
    """One warning per pair of `by` values whose transition counts give r < threshold."""
    matrices = {value: transition_matrix(counts) for value, counts in transitions.items()}
    warnings = []
    for (a, Pa), (b, Pb) in combinations(matrices.items(), 2):
        r = pearson(Pa, Pb)
        if r < threshold:  # NaN (an empty side) compares False: no claim either way
            warnings.append(
                f"this selection mixes {by}s with different structures: r({a!r}, {b!r}) = "
                f"{r:.3f} < {threshold}; the pooled matrix describes neither (use --by {by})"
            )
    return warnings


class CountedSelection:
    """A `Labeled` over counts already summed (e.g. per block on a cluster, `services/batch`)."""

    def __init__(self, name: str, counts: Counts) -> None:
        self.name = name
        self._counts = counts

    @property
    def traces(self) -> int:
        return self._counts.traces

    def behavior_counts(self) -> np.ndarray:
        return self._counts.behaviors

    def transition_counts(self) -> np.ndarray:
        return self._counts.transitions

    def transition_matrix(self, alpha: float = 0.0) -> np.ndarray:
        return transition_matrix(self._counts.transitions, alpha)

    def stationary(self) -> np.ndarray | None:
        """None when some behavior is never left (P is not row-stochastic; smooth it first)."""
        P = self.transition_matrix()
        return stationary(P) if np.allclose(P.sum(axis=1), 1.0) else None


class LabeledSelection(CountedSelection):
    """The `Labeled` a metric receives: counts computed in SQL on first use, then kept."""

    def __init__(self, store: Store, selection: Selection) -> None:
        self.store = store
        self.selection = resolve_annotator(store, selection)
        self.name = self.selection.describe()

    @cached_property
    def _counts(self) -> Counts:
        return transition_counts(self.store, self.selection)


# -- presets: the paper's Fig. 5 teacher graphs ---------------------------------------------------


@dataclass(frozen=True)
class Preset:
    """A published transition graph; `percent` as printed, `P` row-normalized (rows sum ~100)."""

    id: str
    name: str
    percent: np.ndarray
    source: str

    @property
    def P(self) -> np.ndarray:
        return transition_matrix(self.percent)


def presets() -> dict[str, Preset]:
    """Every preset shipped in bondscope.resources/presets, by id."""
    found = {}
    for entry in sorted((files("bondscope.resources") / "presets").iterdir(), key=str):
        if not entry.name.endswith(".json"):
            continue
        data = json.loads(entry.read_text("utf-8"))
        if data["behaviors"] != list(BEHAVIORS):
            raise ValueError(f"preset {entry.name}: behaviors must be {list(BEHAVIORS)}")
        found[data["id"]] = Preset(
            data["id"], data["name"], np.array(data["percent"], dtype=float), data["source"]
        )
    return found


def preset(preset_id: str) -> Preset:
    available = presets()
    if preset_id not in available:
        raise SelectionError(
            f"unknown preset {preset_id!r} (available: {', '.join(sorted(available))})"
        )
    return available[preset_id]
