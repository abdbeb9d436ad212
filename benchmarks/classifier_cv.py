"""Grouped k-fold cross-validation of the step classifier's head on the seed gold set.

    .venv/bin/python benchmarks/classifier_cv.py                  # every configuration, 1 fold seed
    .venv/bin/python benchmarks/classifier_cv.py --quick --seeds 3  # shipped + previous, 3 seeds

The seed gold set (42 traces, readers a-i) is imported into a temporary project, exactly as
`bondscope import` would. It now covers every Thought Anchors trace, so no trace is left with only
weak (GPT-4o) labels; the weak-label runs of the 30-trace set are recorded in docs/classifier.md.

Features are computed once with the fp32 encoder (about 2 minutes on 2 cores; `--cache FILE.npz`
reuses them). Every configuration is scored by 5-fold CV over the gold traces (each held out once
per fold seed), repeated over `--seeds` fold seeds; the table gives the mean and sd over all fold
scores, with the keyword baseline on the same steps. How the shipped configuration was chosen is
in docs/classifier.md; the other rows are the ablation. The last block trains on the round-1
traces and scores the round-2 traces; it is not a clean held-out figure (docs/classifier.md).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from bondscope.domain import BEHAVIORS
from bondscope.models.classifier import step_texts
from bondscope.models.encoder import Encoder
from bondscope.models.features import (
    GROUP_WEIGHTS,
    GROUPS,
    column_scaling,
    group_width,
)
from bondscope.models.head import Head, fit_head
from bondscope.models.lexicon import keyword_behavior
from bondscope.plugin_manager import Plugins
from bondscope.progress import NullProgress
from bondscope.services.evaluation import score
from bondscope.services.importing import import_paths
from bondscope.services.training import (
    Example,
    Featurizer,
    featurize_examples,
    fold_names,
    gold_rows,
    load_gold,
    training_rows,
)
from bondscope.store import Store

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "resources" / "seed" / "seed-gold.jsonl"
READERS = [f"reader-{c}" for c in "abcdefghi"]
SHIPPED = "`middle` for `step`, group weights, C=0.002 (shipped)"


# The third round's groups (with the lexicon groups); the default since version 2 drops those
# (benchmarks/classifier_families.py), and this ablation stays as it was run.
ROUND_THREE = tuple(g for g in GROUPS if g != "step")


@dataclass(frozen=True)
class Config:
    name: str
    kind: str = "logreg"
    c: float = 0.002
    balanced: bool = True
    groups: tuple[str, ...] = ROUND_THREE
    weighted: bool = True  # GROUP_WEIGHTS; False: every column plainly standardized
    reweight: tuple[tuple[str, float], ...] = ()  # (group, weight) in place of GROUP_WEIGHTS

    def fit(self, x: np.ndarray, y: np.ndarray, w: np.ndarray) -> Head:
        weights = {**GROUP_WEIGHTS, **dict(self.reweight)}
        weight, standardize = column_scaling(self.groups, 384, weights)
        return fit_head(
            x,
            y,
            kind=self.kind,
            c=self.c,
            balanced=self.balanced,
            sample_weight=w,
            column_weight=weight if self.weighted else None,
            standardize=standardize,
        )


SEVEN = ("step", "neighbors", "similarity", "position", "length", "cues", "keyword")
TEN = tuple(g for g in GROUPS if g != "middle")
PREVIOUS = "ten groups (no `middle`), C=0.003 (the previous model)"
CONFIGS = [
    Config(
        "seven groups, C=0.01, unweighted (the first model)",
        c=0.01,
        groups=SEVEN,
        weighted=False,
    ),
    Config(PREVIOUS, c=0.003, groups=TEN),
    Config("eleven groups (`step` and `middle`), C=0.003", c=0.003, groups=GROUPS),
    Config("eleven groups (`step` and `middle`), C=0.002", groups=GROUPS),
    Config(SHIPPED),
    Config("`middle` for `step`, `middle` weighted 1", reweight=(("middle", 1.0),)),
    Config("`middle` for `step`, C=0.003", c=0.003),
    Config("`middle` for `step`, unbalanced", balanced=False),
]


def columns(groups: tuple[str, ...], dim: int = 384) -> np.ndarray:
    """Column indices of `groups` inside rows built with every group (GROUPS)."""
    at, keep = 0, []
    for group in GROUPS:
        width = group_width(group, dim)
        if group in groups:
            keep.extend(range(at, at + width))
        at += width
    return np.array(keep)


def restrict(examples: list[Example], config: Config) -> list[Example]:
    if config.groups == GROUPS:
        return examples
    keep = columns(config.groups)
    return [replace(e, x=e.x[:, keep]) for e in examples]


def load(cache: Path | None) -> list[Example]:
    """Gold examples with every feature group, encoded once."""
    with tempfile.TemporaryDirectory() as folder, Store(Path(folder) / "seed.db") as store:
        import_paths(store, Plugins(load_entry_points=False), [SEED])
        data = load_gold(store, READERS)
    saved = np.load(cache) if cache is not None and cache.is_file() else None
    width = sum(group_width(g, 384) for g in GROUPS)
    if (
        saved is not None
        and set(saved.files) == {d.trace.id for d in data}
        and saved[data[0].trace.id].shape[1] == width
    ):
        examples = [
            Example(
                d.trace.id, saved[d.trace.id], d.gold, [None] * len(d.gold), step_texts(d.trace)
            )
            for d in data
        ]
    else:
        featurize = Featurizer(Encoder(provider="cpu", variant="fp32"), GROUPS)
        examples = featurize_examples(featurize, data, NullProgress(), "encoding")
        if cache is not None:
            np.savez(cache, **{e.name: e.x for e in examples})
    return examples


def round_two() -> list[str]:
    """The traces labeled in round 2 (readers d-i; resources/seed/README.md)."""
    readers = {f"reader-{c}" for c in "defghi"}
    names = []
    with SEED.open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            if {label["annotator"] for label in record["labels"]} & readers:
                names.append(record["id"])
    return names


def row(name: str, fold_scores: list[dict]) -> str:
    def stat(values: list[float]) -> str:
        return f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"

    f1 = [stat([s["per_class"][b]["f1"] for s in fold_scores]) for b in BEHAVIORS]
    ece = [s["ece"] for s in fold_scores if s["ece"] is not None]
    return (
        f"| {name} | **{stat([s['macro_f1'] for s in fold_scores])}** | "
        f"{stat([s['accuracy'] for s in fold_scores])} | {' | '.join(f1)} | "
        f"{stat(ece) if ece else '—'} |"
    )


def fold_scores(config: Config, gold: list[Example], seeds: list[int]):
    """Per-fold scores (model, keyword baseline) over repeated grouped k-fold CV."""
    model, baseline = [], []
    for seed in seeds:
        for held in fold_names([e.name for e in gold], 5, seed):
            m, b = score_fold(config, gold, held)
            model.append(m)
            baseline.append(b)
    return model, baseline


def score_fold(config: Config, gold: list[Example], held: list[str]) -> tuple[dict, dict]:
    gold_c = restrict(gold, config)
    train = [e for e in gold_c if e.name not in held]
    test = [e for e in gold_c if e.name in held]
    head = config.fit(*training_rows(train, 0.0))
    x, labels, texts = gold_rows(test)
    probs = head.predict_proba(x)
    predicted = [BEHAVIORS[i] for i in probs.argmax(1)]
    return (
        score(labels, predicted, probs.max(1).tolist()),
        score(labels, [keyword_behavior(t) for t in texts]),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the shipped configuration")
    parser.add_argument("--seeds", type=int, default=1, help="fold seeds to repeat the CV over")
    parser.add_argument("--cache", type=Path, default=None, help="npz of features to reuse")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    began = time.perf_counter()
    gold = load(args.cache)
    print(
        f"{len(gold)} gold traces ({sum(g is not None for e in gold for g in e.gold)} steps); "
        f"features in {time.perf_counter() - began:.0f} s"
    )
    configs = [c for c in CONFIGS if c.name in (PREVIOUS, SHIPPED)] if args.quick else CONFIGS
    seeds = list(range(args.seeds))
    header = (
        "| configuration | macro-F1 | accuracy | F1 N | F1 D | F1 R | F1 E | ECE |\n"
        "|---|---|---|---|---|---|---|---|"
    )
    print(f"\n5-fold grouped CV over traces x {len(seeds)} fold seeds (mean ± sd over folds)\n")
    print(header)
    baseline = None
    for config in configs:
        t = time.perf_counter()
        model, baseline = fold_scores(config, gold, seeds)
        print(row(config.name, model), f"<!-- {time.perf_counter() - t:.0f} s -->", flush=True)
    print(row("keyword baseline", baseline))
    held = round_two()
    print(
        f"\nround 2 held out: trained on the {len(gold) - len(held)} round-1 traces, scored on "
        f"the {len(held)} round-2 traces (readers d-i)"
    )
    print(header)
    for config in [c for c in CONFIGS if c.name in (CONFIGS[0].name, PREVIOUS, SHIPPED)]:
        m, b = score_fold(config, gold, held)
        f1 = " | ".join(f"{m['per_class'][c]['f1']:.3f}" for c in BEHAVIORS)
        print(
            f"| {config.name} | **{m['macro_f1']:.3f}** | {m['accuracy']:.3f} | {f1} | "
            f"{m['ece']:.3f} |"
        )
        print(f"<!-- confusion (gold rows, predicted columns N D R E): {m['confusion']} -->")
    f1 = " | ".join(f"{b['per_class'][c]['f1']:.3f}" for c in BEHAVIORS)
    print(f"| keyword baseline | **{b['macro_f1']:.3f}** | {b['accuracy']:.3f} | {f1} | — |")
    print(f"\ntotal {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
