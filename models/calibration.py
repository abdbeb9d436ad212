"""Per-class calibration of a head's probabilities, chosen on held-out (out-of-fold) predictions.

Two parts, applied as softmax(log p / T + offsets):

- a temperature T (one number) that minimizes the negative log-likelihood of the held-out gold
  labels: it fixes over- or under-confidence without changing any label;
- per-class logit offsets that maximize held-out macro-F1 (N stays at 0): a class the head
  under-predicts (D) gets a positive offset, which is a per-class decision threshold.

Both must come from predictions on traces the head did not train on (grouped CV), or they fit
the training rows' overconfidence. `class_calibration_errors` is the per-class reliability
figure: for each class, 10 equal-width bins of P(class) and |observed share - mean P| per bin.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from bondscope.domain import BEHAVIORS

TEMPERATURES = np.round(np.arange(0.5, 3.01, 0.05), 2)
OFFSETS = np.round(np.arange(-1.5, 3.01, 0.25), 2)
ECE_BINS = 10


def calibrated(probs: np.ndarray, temperature: float, offsets: np.ndarray) -> np.ndarray:
    z = np.log(np.clip(probs, 1e-12, 1.0)) / temperature + offsets
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(probs: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None) -> float:
    """The grid temperature with the lowest weighted NLL of the gold classes."""
    weight = np.ones(len(y)) if weight is None else weight
    best, best_nll = 1.0, np.inf
    for t in TEMPERATURES:
        p = calibrated(probs, float(t), np.zeros(4))
        nll = -(weight * np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1.0))).sum()
        if nll < best_nll:
            best, best_nll = float(t), nll
    return best


def macro_f1(y: np.ndarray, pred: np.ndarray, weight: np.ndarray) -> float:
    f1s = []
    for k in range(4):
        tp = weight[(y == k) & (pred == k)].sum()
        predicted, actual = weight[pred == k].sum(), weight[y == k].sum()
        if predicted or actual:
            f1s.append(2 * tp / (predicted + actual) if predicted + actual else 0.0)
    return float(np.mean(f1s)) if f1s else 0.0


def choose_offsets(
    probs: np.ndarray,
    y: np.ndarray,
    temperature: float = 1.0,
    weight: np.ndarray | None = None,
    rounds: int = 2,
) -> np.ndarray:
    """Per-class logit offsets (N fixed at 0) by coordinate ascent on weighted macro-F1."""
    weight = np.ones(len(y)) if weight is None else weight
    offsets = np.zeros(4)
    base = np.log(np.clip(probs, 1e-12, 1.0)) / temperature
    best = macro_f1(y, (base + offsets).argmax(1), weight)
    for _ in range(rounds):
        for k in range(1, 4):
            for value in OFFSETS:
                trial = offsets.copy()
                trial[k] = value
                got = macro_f1(y, (base + trial).argmax(1), weight)
                if got > best + 1e-9:
                    best, offsets = got, trial
    return offsets


def class_calibration_errors(
    probs: np.ndarray, gold: Sequence[str], weight: np.ndarray | None = None
) -> dict[str, float]:
    """Per class, the ECE of P(class) against whether the gold label is that class."""
    weight = np.ones(len(gold)) if weight is None else np.asarray(weight, np.float64)
    y = np.array([BEHAVIORS.index(g) for g in gold])
    out = {}
    for k, behavior in enumerate(BEHAVIORS):
        p = probs[:, k]
        bins = np.minimum((p * ECE_BINS).astype(int), ECE_BINS - 1)
        total, error = weight.sum(), 0.0
        for b in range(ECE_BINS):
            members = bins == b
            w = weight[members]
            if w.sum() > 0:
                observed = (w * (y[members] == k)).sum() / w.sum()
                expected = (w * p[members]).sum() / w.sum()
                error += w.sum() / total * abs(observed - expected)
        out[behavior] = float(error)
    return out
