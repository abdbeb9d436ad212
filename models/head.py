"""The classifier head: a softmax layer (or a small MLP) over the features, run with numpy.

Training uses scikit-learn (seconds on a CPU); the saved head is just the weight matrices in an
`.npz`, with feature standardization folded into the first layer, so inference needs neither
scikit-learn nor a scaler.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

KINDS = ("logreg", "mlp")


@dataclass
class Head:
    """Dense layers; ReLU between them, softmax at the end. `temperature` divides the logits and
    `offsets` (per class, chosen in CV: `bondscope.models.calibration`) are added after it."""

    weights: list[np.ndarray]  # (in, out) per layer
    biases: list[np.ndarray]
    temperature: float = 1.0
    offsets: np.ndarray | None = None

    def logits(self, x: np.ndarray) -> np.ndarray:
        h = x.astype(np.float32, copy=False)
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = h @ w + b
            if i < len(self.weights) - 1:
                h = np.maximum(h, 0.0)
        return h

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        z = self.logits(x) / self.temperature
        if self.offsets is not None:
            z = z + self.offsets.astype(np.float32)
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def predict_traces(self, rows: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Per trace; each step is classified from its own row (its context is in the row)."""
        return [self.predict_proba(x) for x in rows]

    def save(self, path: Path) -> str:
        """Write the npz and return its sha256 (recorded in the model card)."""
        arrays = {f"w{i}": w for i, w in enumerate(self.weights)}
        arrays.update({f"b{i}": b for i, b in enumerate(self.biases)})
        arrays["temperature"] = np.array(self.temperature, np.float32)
        if self.offsets is not None:
            arrays["offsets"] = np.asarray(self.offsets, np.float32)
        with path.open("wb") as handle:
            np.savez_compressed(handle, **arrays)
        return hashlib.sha256(path.read_bytes()).hexdigest()

    @classmethod
    def load(cls, path: Path) -> Head:
        with np.load(path) as data:
            layers = sum(1 for k in data.files if k.startswith("w"))
            return cls(
                [data[f"w{i}"].astype(np.float32) for i in range(layers)],
                [data[f"b{i}"].astype(np.float32) for i in range(layers)],
                float(data["temperature"]),
                data["offsets"].astype(np.float32) if "offsets" in data.files else None,
            )


def fit_head(
    x: np.ndarray,
    y: np.ndarray,
    *,
    kind: str = "logreg",
    c: float = 0.002,
    balanced: bool = True,
    seed: int = 0,
    sample_weight: np.ndarray | None = None,
    column_weight: np.ndarray | None = None,
    standardize: np.ndarray | None = None,
    pairs: np.ndarray | None = None,
    consistency: float = 0.0,
) -> Head:
    """Fit on standardized features; `y` holds class indices 0..3 (N, D, R, E).

    Classes missing from `y` get a large negative bias, so the head still outputs four columns.
    `balanced` weights classes by inverse frequency: R, E and D are rare, and macro-F1 counts them.
    `c` = 0.002 (strong L2) was chosen by grouped CV on the seed set (docs/classifier.md).
    `sample_weight` lets weak labels count less than gold ones (for the logistic regression it
    multiplies the class weights; the MLP has no class weights).
    `column_weight` multiplies each standardized column (a weaker penalty on small groups of
    strong features) and `standardize` (a boolean per column) leaves sparse columns as they are;
    both are folded into the saved weights (`bondscope.models.features.column_scaling`).
    `pairs` (logreg only): rows of differences between a step's features as it is and as
    paraphrased or with its cue words deleted; `consistency` weighs a penalty on the logit
    differences they make (`fit_consistent_logreg`).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    if kind not in KINDS:
        raise ValueError(f"unknown head kind {kind!r} (one of {', '.join(KINDS)})")
    if sample_weight is not None and len(sample_weight) and np.allclose(sample_weight, 1.0):
        sample_weight = None
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std < 1e-6] = 1.0
    if standardize is not None:
        mean[~standardize] = 0.0
        std[~standardize] = 1.0
    if column_weight is not None:  # z = (x - m) / s * k, i.e. (x - m) / (s / k)
        std = std / column_weight
    z = (x - mean) / std
    if standardize is not None and not standardize.all():
        from scipy import sparse

        z = sparse.csr_matrix(z)  # the unstandardized groups are sparse: solvers run ~4x faster
    present = np.unique(y)
    if len(present) == 1:  # nothing to separate: always the one class seen
        bias = np.full(4, -30.0, np.float32)
        bias[present] = 30.0
        return Head([np.zeros((x.shape[1], 4), np.float32)], [bias])
    if kind == "logreg" and pairs is not None and len(pairs) and consistency > 0:
        coef, intercept = fit_consistent_logreg(
            z, y, c, balanced, sample_weight, pairs / std, consistency
        )
        weights, biases = [coef[:, present]], [intercept[present]]
    elif kind == "logreg":
        model = LogisticRegression(
            C=c, max_iter=2000, class_weight="balanced" if balanced else None, random_state=seed
        )
        model.fit(z, y, sample_weight=sample_weight)
        weights = [model.coef_.T.astype(np.float32)]
        biases = [model.intercept_.astype(np.float32)]
        if len(present) == 2:  # sklearn stores one column for a binary problem
            weights = [np.hstack([-weights[0] / 2, weights[0] / 2])]
            biases = [np.array([-biases[0][0] / 2, biases[0][0] / 2], np.float32)]
    else:
        model = MLPClassifier(
            hidden_layer_sizes=(128,),
            alpha=1e-2,
            max_iter=300,
            early_stopping=len(y) > 200,
            random_state=seed,
        )
        model.fit(z, y, sample_weight=sample_weight)
        weights = [w.astype(np.float32) for w in model.coefs_]
        biases = [b.astype(np.float32) for b in model.intercepts_]
        if len(present) == 2:
            weights[-1] = np.hstack([-weights[-1] / 2, weights[-1] / 2])
            biases[-1] = np.array([-biases[-1][0] / 2, biases[-1][0] / 2], np.float32)
    # Fold the standardization into the first layer: (x - m) / s @ W + b = x @ (W / s) + b'.
    first = weights[0] / std[:, None].astype(np.float32)
    biases[0] = biases[0] - (mean / std).astype(np.float32) @ weights[0]
    weights[0] = first
    full_w = np.zeros((weights[-1].shape[0], 4), np.float32)
    full_b = np.full(4, -30.0, np.float32)
    full_w[:, present] = weights[-1]
    full_b[present] = biases[-1]
    weights[-1], biases[-1] = full_w, full_b
    return Head(weights, biases)


def fit_consistent_logreg(
    z: np.ndarray,
    y: np.ndarray,
    c: float,
    balanced: bool,
    sample_weight: np.ndarray | None,
    differences: np.ndarray,
    consistency: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression with a consistency penalty, by L-BFGS: (coef (d, 4),
    intercept (4,)) over the classes present in `y`, in class-index order, padded to 4.

    The objective is scikit-learn's (C x the class- and sample-weighted cross-entropy + half the
    squared weights) plus `consistency` x C x half the squared logit differences that the rows
    of `differences` make (each row: a step as it is minus the same step paraphrased, or with
    its cue words deleted). A linear head that gives a step the same logits with and without
    its cue words cannot read the cue words: consistency training, in closed form for a linear
    model (a generalized ridge penalty).
    """
    from scipy import sparse
    from scipy.optimize import minimize

    present = np.unique(y)
    k = len(present)
    index = np.searchsorted(present, y)
    weight = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
    if balanced:  # scikit-learn's "balanced": total / (classes x class total), sample-weighted
        totals = np.bincount(index, weights=weight, minlength=k)
        weight = weight * (weight.sum() / (k * totals))[index]
    d = z.shape[1]
    onehot = np.zeros((len(y), k))
    onehot[np.arange(len(y)), index] = 1.0
    diff = sparse.csr_matrix(differences) if sparse.issparse(z) else differences
    scale = 1.0 / (c * weight.sum())  # keeps the objective near 1 for the solver's tolerances

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[: d * k].reshape(d, k), theta[d * k :]
        logits = z @ w + b
        logits -= logits.max(axis=1, keepdims=True)
        log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        moved = diff @ w
        loss = c * -(weight * (onehot * log_p).sum(1)).sum()
        loss += 0.5 * (w * w).sum() + 0.5 * consistency * c * (moved * moved).sum()
        g = (np.exp(log_p) - onehot) * weight[:, None] * c
        grad_w = z.T @ g + w + consistency * c * (diff.T @ moved)
        return loss * scale, np.concatenate([np.asarray(grad_w).ravel(), g.sum(0)]) * scale

    found = minimize(
        objective,
        np.zeros(d * k + k),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 2000, "gtol": 1e-6},
    )
    coef = np.zeros((d, 4), np.float32)
    intercept = np.zeros(4, np.float32)
    coef[:, present] = found.x[: d * k].reshape(d, k)
    intercept[present] = found.x[d * k :]
    return coef, intercept
