"""What compressing or summarizing a trace does to its structure (paper.md §6), headless.

The paper's claim: compressed or summarized thinking carries ~45% fewer tokens, shifts the
behavior distribution and cuts the long-range (R and E) links. Given original traces and their
compressed versions, both in the store, this measures the token reduction and the shift of the
behavior distribution and of the transition graph. Choices are in docs/metrics.md ("Compression").
"""

from __future__ import annotations

from typing import Any

import numpy as np
from bondscope.domain import BEHAVIORS
from bondscope.services.structure import (
    Selection,
    SelectionError,
    js_rows,
    label_sequences,
    never_left,
    pearson,
    resolve_annotator,
    transition_matrix,
    verdict,
)
from bondscope.store import Store

LONG_RANGE = [BEHAVIORS.index("R"), BEHAVIORS.index("E")]


def whitespace_tokens(store: Store, trace_id: int) -> int:
    """Whitespace-separated tokens of the trace's current steps (its segmented thinking part).

    Whitespace tokens need no tokenizer, so the figure does not depend on a model's vocabulary;
    the answer and the question are not counted.
    """
    text = store.conn.execute("SELECT text FROM traces WHERE id = ?", (trace_id,)).fetchone()[0]
    return sum(len(text[span.start : span.end].split()) for _, span in store.active_steps(trace_id))


def pair_by_question(
    store: Store, compressed_source: str, source: str | None = None
) -> tuple[list[tuple[int, int]], list[str]]:
    """(original id, compressed id) pairs: traces of `compressed_source` matched on question.

    Originals are the traces of any other source (or of `source`). A compressed trace with no
    original of the same question, or with several, is left out and named in the second list.
    """
    originals: dict[str, list[int]] = {}
    rows = store.conn.execute(
        "SELECT id, question FROM traces WHERE source != ? AND (? IS NULL OR source = ?) "
        "AND question != '' ORDER BY id",
        (compressed_source, source, source),
    )
    for trace_id, question in rows:
        originals.setdefault(question, []).append(trace_id)
    pairs, unpaired = [], []
    for trace_id, name, question in store.conn.execute(
        "SELECT id, name, question FROM traces WHERE source = ? ORDER BY id", (compressed_source,)
    ):
        found = originals.get(question, [])
        if len(found) == 1:
            pairs.append((found[0], trace_id))
        else:
            unpaired.append(f"{name} ({len(found)} originals with its question)")
    if not pairs:
        raise SelectionError(
            f"no trace of source {compressed_source!r} has exactly one original with its question"
        )
    return pairs, unpaired


def compression(
    store: Store,
    pairs: list[tuple[int, int]],
    annotator: str | None = None,
    alpha: float = 0.001,
) -> dict[str, Any]:
    """Token reduction per pair and pooled; shift of pi-hat and of P-hat, originals -> compressed.

    Graph shift: Pearson r of the two P-hats, JS row divergences weighted by the originals'
    marginal pi-hat, and L1 between the marginals (not stationary pis: a compressed corpus is
    small and often leaves some behavior, so its P-hat may not be row-stochastic). For the same
    reason alpha defaults to 0.001 (paper.md §8 B1); alpha = 0 is refused when a row is empty.
    """
    selection = resolve_annotator(store, Selection(annotator=annotator))
    labels = label_sequences(store, selection)
    names = dict(store.conn.execute("SELECT id, name FROM traces"))
    sides = []
    for ids in ([o for o, _ in pairs], [c for _, c in pairs]):
        chosen = np.isin(labels.trace, ids)
        pair_codes = labels.pair_codes()[chosen[:-1][labels.adjacent]]
        counts = np.bincount(pair_codes, minlength=16).reshape(4, 4)
        behaviors = np.bincount(labels.behavior[chosen], minlength=4)
        sides.append((counts, behaviors))
    per_pair = []
    for original, compressed in pairs:
        before, after = whitespace_tokens(store, original), whitespace_tokens(store, compressed)
        per_pair.append(
            {
                "original": names[original],
                "compressed": names[compressed],
                "tokens": [before, after],
                "steps": [len(store.active_steps(original)), len(store.active_steps(compressed))],
                "token_reduction": 1 - after / before if before else None,
            }
        )
    (counts_o, behaviors_o), (counts_c, behaviors_c) = sides
    if behaviors_o.sum() == 0 or behaviors_c.sum() == 0:
        raise SelectionError(f"{selection.annotator} labeled no original or no compressed trace")
    stuck = [
        f"{side} {b}"
        for side, counts in (("original", counts_o), ("compressed", counts_c))
        for b in never_left(counts)
    ]
    if stuck and alpha == 0:
        raise SelectionError(
            f"no transition out of {', '.join(stuck)}: P-hat has zero rows; "
            "smooth with alpha (e.g. 0.001)"
        )
    pi_o, pi_c = behaviors_o / behaviors_o.sum(), behaviors_c / behaviors_c.sum()
    P_o, P_c = transition_matrix(counts_o, alpha), transition_matrix(counts_c, alpha)
    r = pearson(P_o, P_c)
    total_before = sum(p["tokens"][0] for p in per_pair)
    total_after = sum(p["tokens"][1] for p in per_pair)
    reductions = [p["token_reduction"] for p in per_pair if p["token_reduction"] is not None]
    return {
        "annotator": selection.annotator,
        "pairs": per_pair,
        "token_reduction": 1 - total_after / total_before if total_before else None,
        "mean_pair_token_reduction": float(np.mean(reductions)) if reductions else None,
        "behaviors": list(BEHAVIORS),
        "distribution": [pi_o.tolist(), pi_c.tolist()],
        "long_range_share": [float(pi_o[LONG_RANGE].sum()), float(pi_c[LONG_RANGE].sum())],
        "distribution_l1": float(np.abs(pi_o - pi_c).sum()),
        "distribution_js_bits": float(js_rows(pi_o, pi_c)),
        "transitions": [int(counts_o.sum()), int(counts_c.sum())],
        "pearson_r": None if np.isnan(r) else r,
        "verdict": None if np.isnan(r) else verdict(r),
        "weighted_js_bits": float(pi_o @ js_rows(P_o, P_c)),
        "percent": [(P_o * 100).round(4).tolist(), (P_c * 100).round(4).tolist()],
    }
