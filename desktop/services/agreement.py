"""Agreement between annotators, people and models alike, on behaviors and on bonds.

The paper's quality gate for a labeller is agreement with people (paper.md §8 A2), and a
structure built on labels nobody agrees on says little. Labels are compared step by step, matched
by step id (so only the current segmentation counts); bonds are matched with a ±1 step tolerance.
Formulas and choices are in docs/metrics.md ("Agreement").
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
from bondscope.domain import BEHAVIORS, BOND_TYPES
from bondscope.services.structure import ALPHABET, SelectionError, require_annotators
from bondscope.store import Store

MISSING = -1  # a step the annotator did not label
TOLERANCE = 1  # bond ends may differ by this many steps and still match


def nan_to_none(value: float) -> float | None:
    """JSON has no NaN: an undefined coefficient is reported as null."""
    return None if np.isnan(value) else float(value)


def confusion(a: np.ndarray, b: np.ndarray, categories: int = len(BEHAVIORS)) -> np.ndarray:
    """counts[i, j] of units rated i by the first rater and j by the second (both rated)."""
    both = (a != MISSING) & (b != MISSING)
    cells = a[both] * categories + b[both]
    return np.bincount(cells, minlength=categories**2).reshape(categories, categories)


def cohen_kappa(counts: np.ndarray) -> float:
    """(p_o - p_e) / (1 - p_e), p_e from each rater's own marginals; NaN when p_e = 1."""
    counts = np.asarray(counts, dtype=float)
    n = counts.sum()
    if n == 0:
        return float("nan")
    observed = np.trace(counts) / n
    expected = float(counts.sum(axis=1) @ counts.sum(axis=0)) / n**2
    return float("nan") if expected == 1 else (observed - expected) / (1 - expected)


def gwet_ac1(counts: np.ndarray) -> float:
    """Gwet's AC1 for two raters: p_e = sum_k pi_k (1 - pi_k) / (Q - 1), pi_k the mean marginal.

    Unlike kappa it stays meaningful when one category dominates (kappa's paradox), which is the
    normal case here: most steps are N.
    """
    counts = np.asarray(counts, dtype=float)
    n, q = counts.sum(), len(counts)
    if n == 0:
        return float("nan")
    pi = (counts.sum(axis=0) + counts.sum(axis=1)) / (2 * n)
    expected = float(pi @ (1 - pi)) / (q - 1)
    return (np.trace(counts) / n - expected) / (1 - expected)


def _unit_counts(ratings: np.ndarray, categories: int) -> np.ndarray:
    """r[u, k]: how many raters put unit u in category k (ratings: units x raters, -1 missing)."""
    units = np.repeat(np.arange(len(ratings)), ratings.shape[1])
    flat = ratings.ravel()
    rated = flat != MISSING
    cells = units[rated] * categories + flat[rated]
    return np.bincount(cells, minlength=len(ratings) * categories).reshape(-1, categories)


def krippendorff_alpha(ratings: np.ndarray, categories: int = len(BEHAVIORS)) -> float:
    """Nominal alpha over any number of raters with missing ratings (units x raters, -1 missing).

    alpha = 1 - (n - 1) * sum_{c != k} o_ck / sum_{c != k} n_c n_k, from the coincidence matrix
    o_ck = sum_u r_uc (r_uk - [c = k]) / (m_u - 1) over units with m_u >= 2 ratings.
    NaN when fewer than two values were paired or only one category occurs.
    """
    r = _unit_counts(np.asarray(ratings), categories).astype(float)
    m = r.sum(axis=1)
    paired = m >= 2
    r, m = r[paired], m[paired]
    coincidence = (r.T / (m - 1)) @ r - np.diag((r.T / (m - 1)).sum(axis=1))
    n_c = coincidence.sum(axis=1)
    n = n_c.sum()
    disagreement_expected = n**2 - float(n_c @ n_c)
    if n < 2 or disagreement_expected == 0:
        return float("nan")
    return 1 - (n - 1) * (n - np.trace(coincidence)) / disagreement_expected


def gwet_ac1_multi(ratings: np.ndarray, categories: int = len(BEHAVIORS)) -> float:
    """Gwet's AC1 for any number of raters with missing ratings (Gwet 2014, ch. 4).

    p_a: mean over units with >= 2 ratings of sum_k r_uk (r_uk - 1) / (r_u (r_u - 1));
    pi_k: mean over units with >= 1 rating of r_uk / r_u; p_e = sum_k pi_k (1 - pi_k) / (Q - 1).
    """
    r = _unit_counts(np.asarray(ratings), categories).astype(float)
    m = r.sum(axis=1)
    paired = m >= 2
    if not paired.any():
        return float("nan")
    rp, mp = r[paired], m[paired]
    observed = float(np.mean((rp * (rp - 1)).sum(axis=1) / (mp * (mp - 1))))
    pi = (r[m > 0] / m[m > 0, None]).mean(axis=0)
    expected = float(pi @ (1 - pi)) / (categories - 1)
    return (observed - expected) / (1 - expected)


@dataclass(frozen=True)
class BondMatch:
    """Greedy one-to-one matching of two annotators' bonds (trace, from, to, type)."""

    a: int
    b: int
    matched: int

    @property
    def precision(self) -> float:
        """Share of a's bonds that b also drew (b as the reference)."""
        return self.matched / self.a if self.a else float("nan")

    @property
    def recall(self) -> float:
        return self.matched / self.b if self.b else float("nan")

    @property
    def f1(self) -> float:
        """2 matched / (|a| + |b|): symmetric in a and b; NaN when neither drew a bond."""
        total = self.a + self.b
        return 2 * self.matched / total if total else float("nan")


Bond = tuple[int, int, int, str]  # trace id, from step idx, to step idx, type


def match_bonds(a: list[Bond], b: list[Bond], tolerance: int = TOLERANCE) -> BondMatch:
    """Pairs bonds of the same trace and type whose ends both differ by <= tolerance steps.

    Greedy one-to-one: candidate pairs are taken by increasing |d from| + |d to| (exact matches
    first), ties in the order of a's then b's bonds as sorted; a bond is used at most once.
    """
    a, b = sorted(a), sorted(b)
    by_key: dict[tuple[int, str], list[int]] = defaultdict(list)
    for j, (trace, _, _, kind) in enumerate(b):
        by_key[(trace, kind)].append(j)
    candidates = []
    for i, (trace, start, end, kind) in enumerate(a):
        for j in by_key[(trace, kind)]:
            d_from, d_to = abs(b[j][1] - start), abs(b[j][2] - end)
            if d_from <= tolerance and d_to <= tolerance:
                candidates.append((d_from + d_to, i, j))
    used_a, used_b = set(), set()
    for _, i, j in sorted(candidates):
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
    return BondMatch(len(a), len(b), len(used_a))


@dataclass(frozen=True)
class Annotations:
    """Current labels of the chosen annotators as a steps x annotators matrix, and their bonds."""

    names: list[str]
    kinds: list[str]
    step_ids: np.ndarray
    ratings: np.ndarray  # behavior index 0-3, or MISSING
    bonds: dict[str, list[Bond]]
    traces: dict[str, set[int]]  # the traces each annotator labeled or drew a bond in


def load_annotations(
    store: Store,
    annotators: list[str] | None = None,
    model: str | None = None,
    source: str | None = None,
) -> Annotations:
    """Every current label and bond of the annotators (default: all who labeled or bonded)."""
    clauses, params = [], []
    for column, value in (("model", model), ("source", source)):
        if value is not None:
            clauses.append(f"trace_id IN (SELECT id FROM traces WHERE {column} = ?)")
            params.append(value)
    where = "".join(f" AND {c}" for c in clauses)
    if annotators is None:
        annotators = [
            row[0]
            for row in store.conn.execute(
                f"SELECT annotator FROM current_labels WHERE 1{where} UNION "
                f"SELECT annotator FROM current_bonds WHERE 1{where} ORDER BY 1",
                params * 2,
            )
        ]
    require_annotators(store, annotators)
    kinds = dict(store.conn.execute("SELECT name, kind FROM annotators"))
    if len(set(annotators)) < 2:
        raise SelectionError(
            f"agreement needs at least two annotators; found {', '.join(annotators) or 'none'}"
        )
    marks = ", ".join("?" * len(annotators))
    rows = store.conn.execute(
        f"SELECT step_id, annotator, instr(?, behavior) - 1, trace_id FROM current_labels "
        f"WHERE annotator IN ({marks}){where}",
        [ALPHABET, *annotators, *params],
    ).fetchall()
    column = {name: k for k, name in enumerate(annotators)}
    step_ids, row_of = np.unique([r[0] for r in rows], return_inverse=True)
    ratings = np.full((len(step_ids), len(annotators)), MISSING, dtype=np.int64)
    ratings[row_of, [column[r[1]] for r in rows]] = [r[2] for r in rows]
    traces: dict[str, set[int]] = {name: set() for name in annotators}
    for row in rows:
        traces[row[1]].add(row[3])
    bonds: dict[str, list[Bond]] = {name: [] for name in annotators}
    for trace, start, end, kind, name in store.conn.execute(
        f'SELECT trace_id, "from", "to", type, annotator FROM current_bonds '
        f"WHERE annotator IN ({marks}){where}",
        [*annotators, *params],
    ):
        bonds[name].append((trace, start, end, kind))
        traces[name].add(trace)
    return Annotations(
        annotators, [kinds[name] for name in annotators], step_ids, ratings, bonds, traces
    )


def pair_kind(kind_a: str, kind_b: str) -> str:
    """'person-person', 'model-person' or 'model-model': the comparison a pair stands for."""
    return "-".join(sorted((kind_a, kind_b)))


def agreement(
    store: Store,
    annotators: list[str] | None = None,
    model: str | None = None,
    source: str | None = None,
    tolerance: int = TOLERANCE,
) -> dict[str, Any]:
    """Label agreement (kappa, AC1, confusion per pair; alpha and AC1 over all) and bond F1."""
    found = load_annotations(store, annotators, model, source)
    pairs = []
    for i, j in combinations(range(len(found.names)), 2):
        a, b = found.names[i], found.names[j]
        counts = confusion(found.ratings[:, i], found.ratings[:, j])
        shared = found.traces[a] & found.traces[b]
        match = match_bonds(
            [x for x in found.bonds[a] if x[0] in shared],
            [x for x in found.bonds[b] if x[0] in shared],
            tolerance,
        )
        by_type = {
            kind: match_bonds(
                [x for x in found.bonds[a] if x[0] in shared and x[3] == kind],
                [x for x in found.bonds[b] if x[0] in shared and x[3] == kind],
                tolerance,
            )
            for kind in BOND_TYPES
        }
        steps = int(counts.sum())
        pairs.append(
            {
                "a": a,
                "b": b,
                "kind": pair_kind(found.kinds[i], found.kinds[j]),
                "steps": steps,
                "observed": nan_to_none(np.trace(counts) / steps if steps else float("nan")),
                "cohen_kappa": nan_to_none(cohen_kappa(counts)),
                "gwet_ac1": nan_to_none(gwet_ac1(counts)),
                "confusion": counts.tolist(),
                "bonds": {
                    "traces": len(shared),
                    **_bond_summary(match),
                    "by_type": {kind: _bond_summary(m) for kind, m in by_type.items()},
                },
            }
        )
    return {
        "annotators": [
            {"name": name, "kind": kind, "labels": int((found.ratings[:, k] != MISSING).sum())}
            for k, (name, kind) in enumerate(zip(found.names, found.kinds, strict=True))
        ],
        "behaviors": list(BEHAVIORS),
        "tolerance": tolerance,
        "steps_rated_twice": int(((found.ratings != MISSING).sum(axis=1) >= 2).sum()),
        "krippendorff_alpha": nan_to_none(krippendorff_alpha(found.ratings)),
        "gwet_ac1": nan_to_none(gwet_ac1_multi(found.ratings)),
        "pairs": pairs,
        "by_kind": _by_kind(pairs),
    }


def _bond_summary(match: BondMatch) -> dict[str, Any]:
    return {
        "a_bonds": match.a,
        "b_bonds": match.b,
        "matched": match.matched,
        "precision": nan_to_none(match.precision),
        "recall": nan_to_none(match.recall),
        "f1": nan_to_none(match.f1),
    }


def _by_kind(pairs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Mean of each measure over the pairs of one kind (model-vs-person apart from people)."""
    summary = {}
    for kind in sorted({p["kind"] for p in pairs}):
        chosen = [p for p in pairs if p["kind"] == kind]
        values = {
            "cohen_kappa": [p["cohen_kappa"] for p in chosen],
            "gwet_ac1": [p["gwet_ac1"] for p in chosen],
            "bond_f1": [p["bonds"]["f1"] for p in chosen],
        }
        summary[kind] = {"pairs": len(chosen)} | {name: _mean(vs) for name, vs in values.items()}
    return summary


def _mean(values: list[float | None]) -> float | None:
    """Mean of the defined values; None when none is."""
    defined = [v for v in values if v is not None]
    return float(np.mean(defined)) if defined else None
