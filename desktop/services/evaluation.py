"""Compare one annotator's labels with another's (a model's with gold), even across segmentations.

Steps are matched by character overlap, not by index: each gold step is paired with the
predicted step of the same trace that overlaps it most (ties: the earlier step), so a model run
on a sentence segmentation can be scored against gold labeled on paragraphs. Gold steps that no
predicted step overlaps are counted as `unmatched` and left out of the scores.

Labels are read from the event history, not only from the current view: an annotator's labels on
steps retired by a later re-segmentation still count, unless they overlap a step of the current
segmentation that the same annotator has labeled (then the current one wins).

Scores: accuracy; per-class precision, recall, F1 and support (gold counts); macro-F1 averages
the classes that occur in gold or in the predictions (a class absent from both has no F1);
confusion matrix with gold rows and predicted columns in N, D, R, E order; expected calibration
error over the predictions that carry a confidence: 10 equal-width confidence bins on [0, 1],
ECE = sum over bins of (bin size / n) * |accuracy in bin - mean confidence in bin|; None when no
prediction has a confidence (e.g. a person's labels).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from bondscope.domain import BEHAVIORS
from bondscope.services.structure import require_annotators
from bondscope.store import Store

ECE_BINS = 10


@dataclass
class EvalReport:
    gold: str
    pred: str
    traces: int = 0
    matched: int = 0
    unmatched: int = 0
    accuracy: float | None = None
    macro_f1: float | None = None
    per_class: dict[str, dict[str, float | int]] = field(default_factory=dict)
    confusion: list[list[int]] = field(default_factory=list)
    ece: float | None = None
    support: dict[str, int] = field(default_factory=dict)


def score(
    gold: Sequence[str], pred: Sequence[str], confidence: Sequence[float | None] | None = None
) -> dict[str, Any]:
    """The scores for aligned label lists (used by `evaluate` and by training's model card)."""
    index = {b: i for i, b in enumerate(BEHAVIORS)}
    confusion = np.zeros((4, 4), np.int64)
    for g, p in zip(gold, pred, strict=True):
        confusion[index[g], index[p]] += 1
    n = int(confusion.sum())
    per_class: dict[str, dict[str, float | int]] = {}
    f1s = []
    for i, b in enumerate(BEHAVIORS):
        tp = int(confusion[i, i])
        predicted = int(confusion[:, i].sum())
        actual = int(confusion[i, :].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[b] = {"precision": precision, "recall": recall, "f1": f1, "support": actual}
        if predicted or actual:
            f1s.append(f1)
    return {
        "accuracy": float(np.trace(confusion) / n) if n else None,
        "macro_f1": float(np.mean(f1s)) if f1s else None,
        "per_class": per_class,
        "confusion": confusion.tolist(),
        "ece": expected_calibration_error(gold, pred, confidence) if confidence else None,
        "support": {b: int(confusion[i, :].sum()) for i, b in enumerate(BEHAVIORS)},
    }


def expected_calibration_error(
    gold: Sequence[str], pred: Sequence[str], confidence: Sequence[float | None]
) -> float | None:
    """10 equal-width bins of the predicted label's confidence (see the module docstring)."""
    rows = [(g == p, c) for g, p, c in zip(gold, pred, confidence, strict=True) if c is not None]
    if not rows:
        return None
    correct = np.array([r[0] for r in rows], np.float64)
    conf = np.array([r[1] for r in rows], np.float64)
    bins = np.minimum((conf * ECE_BINS).astype(int), ECE_BINS - 1)
    ece = 0.0
    for b in range(ECE_BINS):
        members = bins == b
        if members.any():
            ece += members.mean() * abs(correct[members].mean() - conf[members].mean())
    return float(ece)


def _labels(
    store: Store, trace_id: int, annotator: str
) -> list[tuple[int, int, str, float | None]]:
    """(start, end, behavior, confidence) of the annotator's latest label per step, including
    retired steps whose span no labeled current step overlaps."""
    rows = store.conn.execute(
        """
        SELECT s.start, s."end", e.behavior, e.confidence, s.retired_run_id IS NULL
        FROM (SELECT MAX(le.id) AS id FROM label_events le
              JOIN steps st ON st.id = le.step_id
              JOIN annotators a ON a.id = le.annotator_id
              WHERE st.trace_id = ? AND a.name = ?
              GROUP BY le.step_id) latest
        JOIN label_events e ON e.id = latest.id
        JOIN steps s ON s.id = e.step_id
        WHERE e.behavior IS NOT NULL
        ORDER BY s.start, s.id
        """,
        (trace_id, annotator),
    ).fetchall()
    current = [r for r in rows if r[4]]
    kept = [r for r in rows if r[4] or not any(c[0] < r[1] and r[0] < c[1] for c in current)]
    return [(r[0], r[1], r[2], r[3]) for r in kept]


def evaluate(
    store: Store, gold_annotator: str, pred_annotator: str, trace_ids: list[int] | None = None
) -> EvalReport:
    """Score `pred_annotator` against `gold_annotator` on the traces both labeled."""
    require_annotators(store, [gold_annotator, pred_annotator])
    trace_ids = trace_ids if trace_ids is not None else store.trace_ids()
    report = EvalReport(gold_annotator, pred_annotator)
    gold_all: list[str] = []
    pred_all: list[str] = []
    conf_all: list[float | None] = []
    for trace_id in trace_ids:
        gold = _labels(store, trace_id, gold_annotator)
        pred = _labels(store, trace_id, pred_annotator)
        if not gold or not pred:
            continue
        report.traces += 1
        starts = np.array([p[0] for p in pred])
        ends = np.array([p[1] for p in pred])
        for start, end, behavior, _ in gold:
            overlap = np.minimum(end, ends) - np.maximum(start, starts)
            best = int(overlap.argmax())  # the first of equal overlaps: the earlier step
            if overlap[best] <= 0:
                report.unmatched += 1
                continue
            gold_all.append(behavior)
            pred_all.append(pred[best][2])
            conf_all.append(pred[best][3])
    report.matched = len(gold_all)
    scores = score(gold_all, pred_all, conf_all)
    for key, value in scores.items():
        setattr(report, key, value)
    return report
