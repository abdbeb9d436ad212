"""What the app's Metrics dock computes: one Qt-free job per tab, and the rows its tables show.

Each job is a function of a Store (the dock runs it in a worker thread with its own connection)
and of the dock's choices (`Scope`). Whose labels are measured when nobody chose follows
`labeling.default_annotator`; the transition matrix is `structure.corpus_matrix`. The formatting
helpers are here too, so the tables, the CSV exports and the tests read the same numbers.
"""

from __future__ import annotations

import csv
import json
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from bondscope.childcall import call_in_child
from bondscope.domain import BEHAVIORS
from bondscope.services.agreement import agreement
from bondscope.services.geometry import geometry
from bondscope.services.labeling import default_annotator
from bondscope.services.structure import (
    BootstrapCurve,
    Counts,
    Preset,
    Selection,
    SelectionError,
    bootstrap_r,
    compare,
    corpus_matrix,
    preset,
    resolve_annotator,
    trace_transition_counts,
)
from bondscope.store import Store

FALLBACK_ALPHA = 1e-3  # the paper's smoothing for sparse corpora (docs/metrics.md)
SIZES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
REPEATS = 100
TIP_CHARS = 80
# t-SNE's OpenMP threads fought each other and the GUI on a shared CPU (10 s instead of 0.8 s
# for a 95-step trace); one trace gains nothing from more than one.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


# -- formatting -----------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 3) -> str:
    """A number as every tab shows it; an undefined one (None, NaN) as a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def csv_cell(value: Any) -> Any:
    """Floats at full precision (repr), numpy scalars as Python ones, undefined as empty."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(value) if isinstance(value, float) else value


def write_csv(path: Path, header: tuple[str, ...], rows: list[list[Any]]) -> None:
    """A tab's numbers at full precision; an undefined value is an empty cell."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows:
            writer.writerow([csv_cell(v) for v in row])


def percent_texts(P: np.ndarray) -> list[list[str]]:
    """P's cells in whole percent; a row never left is blank rather than a row of zeros."""
    used = np.asarray(P).sum(axis=1) > 0
    return [[f"{100 * P[i, j]:.0f}" if used[i] else "" for j in range(4)] for i in range(4)]


# -- what to measure ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """The dock's choices: an annotator (None: the default one) and trace filters."""

    me: str
    annotator: str | None = None
    model: str | None = None
    source: str | None = None


def scope_selection(store: Store, scope: Scope) -> Selection:
    """The selection to count: the chosen annotator, else `default_annotator`, else the
    selection's only annotator (a project labeled by one colleague only)."""
    annotator = (
        scope.annotator if scope.annotator is not None else default_annotator(store, scope.me)
    )
    selection = Selection(model=scope.model, source=scope.source, annotator=annotator)
    return resolve_annotator(store, selection)


# -- transition graph -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TransitionResult:
    selection: Selection
    counts: Counts
    alpha: float  # the smoothing used: the chosen one, or FALLBACK_ALPHA when a row was empty
    P: np.ndarray
    preset: Preset
    comparison: dict[str, Any] | None  # structure.compare(P, preset.P); None: no transitions


def transition_job(store: Store, scope: Scope, preset_id: str, alpha: float) -> TransitionResult:
    """The corpus matrix and its comparison with a preset, as `bondscope compare` makes it.

    compare() needs a row-stochastic P; with alpha = 0 and a behavior never left, the tab shows
    the matrix smoothed by FALLBACK_ALPHA (and says so) where the CLI refuses.
    """
    matrix = corpus_matrix(
        store, scope_selection(store, scope), alpha, fallback_alpha=FALLBACK_ALPHA
    )
    chosen = preset(preset_id)
    comparison = compare(matrix.P, chosen.P) if matrix.counts.transitions.sum() else None
    return TransitionResult(
        matrix.selection, matrix.counts, matrix.alpha, matrix.P, chosen, comparison
    )


def transition_csv_rows(result: TransitionResult) -> list[list[Any]]:
    """matrix, from, to, count, probability: the corpus's 16 cells, then the preset's."""
    rows: list[list[Any]] = []
    for i, a in enumerate(BEHAVIORS):
        for j, b in enumerate(BEHAVIORS):
            rows.append(["corpus", a, b, int(result.counts.transitions[i, j]), result.P[i, j]])
    for i, a in enumerate(BEHAVIORS):
        for j, b in enumerate(BEHAVIORS):
            rows.append([result.preset.id, a, b, None, float(result.preset.P[i, j])])
    return rows


# -- stability ------------------------------------------------------------------------------------


def stability_sizes(traces: int) -> list[int]:
    """A 1-2-5 ladder below the corpus size, then the corpus size itself."""
    return [n for n in SIZES if n < traces] + ([traces] if traces else [])


@dataclass(frozen=True)
class StabilityResult:
    selection: Selection
    traces: int
    curve: BootstrapCurve


def stability_job(store: Store, scope: Scope) -> StabilityResult:
    """structure.bootstrap_r over the selection's traces (100 resamples per size, seed 0)."""
    selection = scope_selection(store, scope)
    ids, per_trace = trace_transition_counts(store, selection)
    curve = bootstrap_r(per_trace, stability_sizes(len(ids)), repeats=REPEATS, seed=0)
    return StabilityResult(selection, len(ids), curve)


def stability_rows(curve: BootstrapCurve) -> list[list[str]]:
    return [
        [str(n), fmt(m), fmt(s)] for n, m, s in zip(curve.sizes, curve.mean, curve.sd, strict=True)
    ]


def stability_csv_rows(result: StabilityResult) -> list[list[Any]]:
    c = result.curve
    return [
        [int(n), float(m), float(s), REPEATS] for n, m, s in zip(c.sizes, c.mean, c.sd, strict=True)
    ]


# -- geometry -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GeometryJSON:
    """geometry.geometry's result as JSON text: a child call hands back dataclasses of arrays,
    and the result is a nested dict whose series hold None."""

    text: str


def geometry_json(store: Store, trace: str, annotator: str | None, embedder: str) -> GeometryJSON:
    """The child's side of `geometry_job`."""
    return GeometryJSON(json.dumps(geometry(store, trace, annotator, embedder), default=float))


def geometry_job(
    store: Store,
    trace_id: int,
    scope: Scope,
    embedder: str,
    cancel: threading.Event | None = None,
) -> dict[str, Any]:
    """geometry.geometry of one trace, run in a child Python, plus step texts for the tips.

    Whose labels: the chosen annotator, else `default_annotator` within the trace. A child
    process, not this thread: t-SNE's Python loop held the GIL often enough to push the
    keystroke p99 from 6 to 19 ms while a 1,000-step trace was measured. It runs at this process's
    priority with one OpenMP thread (ONE_THREAD); setting `cancel` kills it.
    """
    loaded = store.load_trace(trace_id, [])
    annotator = (
        scope.annotator
        if scope.annotator is not None
        else default_annotator(store, scope.me, trace_id)
    )
    kwargs = {"trace": loaded.id, "annotator": annotator, "embedder": embedder}
    try:
        found = call_in_child(
            store.path, geometry_json, kwargs, GeometryJSON, cancel, nice=None, env=ONE_THREAD
        )
    except RuntimeError as error:
        raise SelectionError(f"geometry failed: {error}") from None
    result = json.loads(found.text)
    result["texts"] = [loaded.text[s.start : s.end].strip()[:TIP_CHARS] for s in loaded.steps]
    result["trace_id"] = trace_id
    return result


def geometry_rows(result: dict[str, Any]) -> list[list[str]]:
    """The summary table of one trace's geometry: quantity, value, what it rests on."""
    local, reconnect = result["deep_locality"], result["reflection_reconnection"]
    jumps, meb = result["jump_length"], result["meb"]
    compaction, entropy = result["reflection_compaction"], result["entropy"]
    rows = [
        ["embedder", result["embedder"], f"{result['steps']} steps, {result['clusters']} clusters"],
        ["D locality", fmt(local["fraction"]), f"{local['within']}/{local['steps']} D steps < 3"],
        [
            "R reconnection",
            fmt(reconnect["rate"]),
            f"{reconnect['reconnected']}/{reconnect['steps']} R steps",
        ],
    ]
    for behavior in BEHAVIORS:
        jump = jumps[behavior]
        rows.append([f"jump {behavior}", fmt(jump["mean"], 2), f"{jump['steps']} steps"])
    rows += [
        ["MEB radius", fmt(meb["radius"], 2), f"volume {fmt(meb['volume'], 1)}"],
        [
            "Δ_Reflect %",
            fmt(compaction["mean_delta_percent"], 1),
            f"{compaction['steps']} R steps",
        ],
        ["|ΔI| > 0.1", fmt(entropy["fraction_large_change"]), f"K = {entropy['clusters']}"],
    ]
    return rows


def geometry_csv_rows(result: dict[str, Any]) -> list[list[Any]]:
    """One row per step: behavior, 3-D point, cluster, I_t, ΔI_t, entropy state."""
    entropy = result["entropy"]
    return [
        [
            i,
            result["behavior"][i],
            *map(float, result["points"][i]),
            result["cluster"][i],
            float(entropy["information"][i]),
            entropy["delta"][i],
            entropy["states"][i],
        ]
        for i in range(result["steps"])
    ]


# -- agreement ------------------------------------------------------------------------------------


def agreement_job(store: Store, scope: Scope) -> dict[str, Any]:
    """agreement.agreement over every annotator of the filtered traces."""
    return agreement(store, model=scope.model, source=scope.source)


def agreement_rows(result: dict[str, Any]) -> list[list[str]]:
    return [
        [
            pair["a"],
            pair["b"],
            pair["kind"],
            str(pair["steps"]),
            fmt(pair["observed"]),
            fmt(pair["cohen_kappa"]),
            fmt(pair["gwet_ac1"]),
            fmt(pair["bonds"]["f1"]),
        ]
        for pair in result["pairs"]
    ]


def agreement_summary(result: dict[str, Any]) -> str:
    return (
        f"Krippendorff's α = {fmt(result['krippendorff_alpha'])} · AC1 (all) = "
        f"{fmt(result['gwet_ac1'])} · {result['steps_rated_twice']} steps rated twice by "
        f"{len(result['annotators'])} annotators"
    )


def agreement_csv_rows(result: dict[str, Any]) -> list[list[Any]]:
    return [
        [
            p["a"],
            p["b"],
            p["kind"],
            p["steps"],
            p["observed"],
            p["cohen_kappa"],
            p["gwet_ac1"],
            p["bonds"]["f1"],
            p["bonds"]["precision"],
            p["bonds"]["recall"],
        ]
        for p in result["pairs"]
    ]
