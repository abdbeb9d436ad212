"""The step classifier across teacher families, and under cue-word paraphrases.

    .venv/bin/python benchmarks/classifier_families.py --cache /tmp/enc    # encodes once

Both seed gold sets are imported into a temporary project: Thought Anchors (42 traces, readers
a-i; DeepSeek-R1 distills and QwQ) and SkyThought (49 traces, readers l and m; Sky-T1, distilled
from QwQ-32B-Preview). Every distinct step text, of the traces as they are and with their cue
words paraphrased (`bondscope.models.perturbation`: `cue-synonyms` for scoring,
`cue-synonyms-train` for augmentation), is encoded once with the fp32 encoder and cached by its
sha256 in `--cache DIR` (about 9,000 texts; tens of minutes on 2 shared cores the first time).

Splits, for each candidate and for the keyword baseline:

- grouped 5-fold CV by trace over all 91 gold traces (`--seeds` fold seeds);
- leave-one-teacher-family-out: train on Thought Anchors, test on SkyThought, and the reverse.

Each is scored on all gold steps and "deduplicated": within each of SkyThought's three looping
traces, a step whose text already occurred earlier in that trace is left out (resources/seed/
README.md), so loops do not dominate. Training weights those repeats by 1 / (copies of the text
in the trace). The cue-synonym drop is the score on the held-out traces as they are minus the
score on the same traces with `cue-synonyms` paraphrases (same model).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from bondscope.domain import BEHAVIORS
from bondscope.models.calibration import (
    calibrated,
    choose_offsets,
    class_calibration_errors,
    fit_temperature,
)
from bondscope.models.classifier import step_texts
from bondscope.models.encoder import Encoder, Encoding
from bondscope.models.features import (
    DEFAULT_GROUPS,
    GROUP_WEIGHTS,
    GROUPS,
    SEQUENCE_GROUPS,
    column_scaling,
    group_width,
    trace_features,
)
from bondscope.models.head import fit_head
from bondscope.models.lexicon import keyword_behavior
from bondscope.models.perturbation import DRAWN, perturb_text
from bondscope.plugin_manager import Plugins
from bondscope.services.evaluation import score
from bondscope.services.importing import import_paths
from bondscope.services.training import fold_names, load_gold
from bondscope.store import Store

ROOT = Path(__file__).resolve().parents[1]
SEEDS = {
    "thought-anchors": (
        ROOT / "resources/seed/seed-gold.jsonl",
        [f"reader-{c}" for c in "abcdefghi"],
    ),
    "skythought": (ROOT / "resources/seed/seed-gold-skythought.jsonl", ["reader-l", "reader-m"]),
}
INNER_FOLDS = 3
DRAWS = tuple(f"{DRAWN}#{k}" for k in range(3))  # three copies, paraphrases drawn per occurrence
VERSIONS = ("original", "cue-synonyms", "cue-synonyms-train", "cue-removed-train", *DRAWS)
PARAPHRASED = ("cue-synonyms-train",)
PARAPHRASED_AND_REMOVED = ("cue-synonyms-train", "cue-removed-train")


def version_text(text: str, version: str) -> str:
    """A step text as it is, or under a perturbation ("name#k": draw k of a drawn one)."""
    if version == "original":
        return text
    name, _, draw = version.partition("#")
    return perturb_text(text, name, int(draw or 0))


@dataclass
class GoldTraceTexts:
    """One gold trace: its family, per-step gold, and its step texts in each version."""

    name: str
    family: str
    gold: list[str | None]
    texts: dict[str, list[str]]  # version -> step texts
    weight: np.ndarray  # per step: 1 / copies of its text in the trace
    first: np.ndarray  # per step: True when its text did not occur earlier in the trace
    looping: bool  # one of SkyThought's three long looping traces (reader-m's)


def load_traces() -> list[GoldTraceTexts]:
    out = []
    with tempfile.TemporaryDirectory() as folder, Store(Path(folder) / "seed.db") as store:
        for family, (path, readers) in SEEDS.items():
            before = set(store.trace_ids())
            import_paths(store, Plugins(load_entry_points=False), [path])
            ids = [i for i in store.trace_ids() if i not in before]
            for d in load_gold(store, readers, ids):
                texts = step_texts(d.trace)
                copies = Counter(texts)
                seen: set[str] = set()
                first = []
                for t in texts:
                    first.append(t not in seen)
                    seen.add(t)
                out.append(
                    GoldTraceTexts(
                        d.trace.id,
                        family,
                        d.gold,
                        {v: [version_text(t, v) for t in texts] for v in VERSIONS},
                        np.array([1.0 / copies[t] for t in texts]),
                        np.array(first),
                        any(label.annotator == "reader-m" for label in d.trace.labels),
                    )
                )
    return out


def _key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def encodings(
    traces: list[GoldTraceTexts], cache: Path
) -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
    """text key -> (embedding, layer-4 mean, token count), fp32, cached in `cache`/encodings.npz."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / "encodings.npz"
    known: dict[str, tuple[np.ndarray, np.ndarray, int]] = {}
    if path.is_file():
        with np.load(path) as saved:
            for k, e, m, c in zip(
                saved["keys"], saved["emb"], saved["mid"], saved["count"], strict=True
            ):
                known[str(k)] = (e, m, int(c))
    wanted = {_key(t): t for tr in traces for v in VERSIONS for t in tr.texts[v]}
    missing = [t for k, t in wanted.items() if k not in known]
    if missing:
        encoder = Encoder(provider="cpu", variant="fp32")
        began = time.perf_counter()
        for at in range(0, len(missing), 512):
            chunk = missing[at : at + 512]
            enc = encoder.encode_all(chunk)
            for t, e, m, c in zip(chunk, enc.embeddings, enc.middle, enc.token_counts, strict=True):
                known[_key(t)] = (e, m, int(c))
            print(
                f"encoded {at + len(chunk)}/{len(missing)} in {time.perf_counter() - began:.0f} s",
                flush=True,
            )
            keys = sorted(known)
            np.savez(
                path,
                keys=np.array(keys),
                emb=np.stack([known[k][0] for k in keys]),
                mid=np.stack([known[k][1] for k in keys]),
                count=np.array([known[k][2] for k in keys]),
            )
    return known


def encoding_of(texts: list[str], known: dict[str, tuple[np.ndarray, np.ndarray, int]]) -> Encoding:
    rows = [known[_key(t)] for t in texts]
    return Encoding(
        np.stack([r[0] for r in rows]).astype(np.float32),
        np.stack([r[1] for r in rows]).astype(np.float32),
        np.array([r[2] for r in rows], np.int64),
    )


PREVIOUS_GROUPS = tuple(g for g in GROUPS if g != "step")  # with the lexicon groups
GRU_GROUPS = (*SEQUENCE_GROUPS, "opening")


@dataclass(frozen=True)
class Candidate:
    """A head to compare: its kind, feature groups, and whether it trains on paraphrased copies."""

    name: str
    kind: str = "logreg"  # or "gru"
    groups: tuple[str, ...] = DEFAULT_GROUPS
    augment: tuple[str, ...] = ()  # training perturbations whose copies are trained on too
    c: float = 0.002
    epochs: int = 10
    reweight: tuple[tuple[str, float], ...] = ()  # (group, weight) in place of GROUP_WEIGHTS
    parts: tuple[Candidate, ...] = ()  # kind "ensemble": the candidates averaged
    calibrate: bool = False  # temperature and per-class offsets from an inner grouped CV
    copy_weight: float = 1.0  # sample weight of each augmented copy's rows
    seed: int = 0  # the sequence head's initialization and batch order
    consistency: float = 0.0  # logreg: penalty on logit changes under `pairs` (fit_head)
    pairs: tuple[str, ...] = PARAPHRASED_AND_REMOVED


def columns(groups: tuple[str, ...], dim: int = 384) -> np.ndarray:
    """Column indices of `groups` inside rows built with every group (GROUPS)."""
    at, keep = 0, []
    for group in GROUPS:
        width = group_width(group, dim)
        if group in groups:
            keep.extend(range(at, at + width))
        at += width
    return np.array(keep)


def all_features(
    traces: list[GoldTraceTexts], known: dict[str, tuple[np.ndarray, np.ndarray, int]]
) -> dict[tuple[str, str], np.ndarray]:
    """(trace name, version) -> rows with every feature group."""
    return {
        (t.name, v): trace_features(encoding_of(t.texts[v], known), t.texts[v], GROUPS)
        for t in traces
        for v in VERSIONS
    }


class Fitted:
    """A fitted candidate: (steps, 4) probabilities for a trace's rows (all groups)."""

    def __init__(self, candidate: Candidate, train: list[GoldTraceTexts], feats: dict) -> None:
        self.candidate = candidate
        self.calibration: tuple[float, np.ndarray] | None = None
        if candidate.calibrate:  # chosen on inner-CV predictions of the training traces only
            plain = replace(candidate, calibrate=False)
            probs, gold, weight = [], [], []
            by_name = {t.name: t for t in train}
            for held in fold_names(list(by_name), INNER_FOLDS, 1):
                inner = Fitted(plain, [t for t in train if t.name not in held], feats)
                for t, p in zip(
                    [by_name[n] for n in held],
                    inner.predict([feats[(n, "original")] for n in held]),
                    strict=True,
                ):
                    keep = [i for i, g in enumerate(t.gold) if g is not None]
                    probs.append(p[keep])
                    gold.extend(BEHAVIORS.index(t.gold[i]) for i in keep)
                    weight.append(t.weight[keep])
            stacked, y, w = np.vstack(probs), np.array(gold), np.concatenate(weight)
            temperature = fit_temperature(stacked, y, w)
            self.calibration = (temperature, choose_offsets(stacked, y, temperature, w))
        if candidate.kind == "ensemble":  # geometric mean of the parts' probabilities
            self.parts = [Fitted(part, train, feats) for part in candidate.parts]
            return
        self.keep = columns(candidate.groups)
        versions = ["original", *candidate.augment]
        in_order = [g for g in GROUPS if g in candidate.groups]  # the order of `columns`
        weight, standardize = column_scaling(
            in_order, 384, {**GROUP_WEIGHTS, **dict(candidate.reweight)}
        )
        if candidate.kind == "logreg":
            xs, ys, ws = [], [], []
            for t in train:
                labeled = [i for i, g in enumerate(t.gold) if g is not None]
                for v in versions:
                    xs.append(feats[(t.name, v)][labeled][:, self.keep])
                    ys.extend(BEHAVIORS.index(t.gold[i]) for i in labeled)
                    share = 1.0 if v == "original" else candidate.copy_weight
                    ws.append(t.weight[labeled] * share)
            pairs = None
            if candidate.consistency:
                pairs = np.vstack(
                    [
                        feats[(t.name, "original")][:, self.keep] - feats[(t.name, v)][:, self.keep]
                        for t in train
                        for v in candidate.pairs
                    ]
                )
                pairs = pairs[np.abs(pairs).max(1) > 0]
            self.head = fit_head(
                np.vstack(xs),
                np.array(ys),
                c=candidate.c,
                sample_weight=np.concatenate(ws),
                column_weight=weight,
                standardize=standardize,
                pairs=pairs,
                consistency=candidate.consistency,
            )
        else:
            from bondscope.models.sequence_training import SequenceExample, fit_sequence

            examples = [
                SequenceExample(
                    feats[(t.name, v)][:, self.keep],
                    np.array([BEHAVIORS.index(g) if g is not None else -1 for g in t.gold]),
                    (t.weight * (1.0 if v == "original" else candidate.copy_weight)).astype(
                        np.float32
                    ),
                )
                for t in train
                for v in versions
            ]
            self.model = fit_sequence(
                examples, standardize=standardize, epochs=candidate.epochs, seed=candidate.seed
            )

    def predict(self, rows: list[np.ndarray]) -> list[np.ndarray]:
        probs = self._predict(rows)
        if self.calibration is None:
            return probs
        return [calibrated(p, *self.calibration) for p in probs]

    def _predict(self, rows: list[np.ndarray]) -> list[np.ndarray]:
        if self.candidate.kind == "ensemble":
            pairs = zip(*(part.predict(rows) for part in self.parts), strict=True)
            return [np.exp(np.mean([np.log(np.clip(p, 1e-9, 1)) for p in ps], 0)) for ps in pairs]
        rows = [r[:, self.keep] for r in rows]
        if self.candidate.kind == "logreg":
            return [self.head.predict_proba(r) for r in rows]
        from bondscope.models.sequence_training import predict_logits

        out = []
        for logits in predict_logits(self.model, rows):
            z = np.exp(logits - logits.max(1, keepdims=True))
            out.append(z / z.sum(1, keepdims=True))
        return out


def scored(test: list[GoldTraceTexts], predictions: dict[str, list[list[str]]], probs=None):
    """Scores on all gold steps and on the deduplicated ones, per version."""
    out = {}
    for subset in ("all", "dedup"):
        for version, per_trace in predictions.items():
            gold, pred, rows = [], [], []
            for k, t in enumerate(test):
                for i, g in enumerate(t.gold):
                    if g is None or (subset == "dedup" and t.looping and not t.first[i]):
                        continue
                    gold.append(g)
                    pred.append(per_trace[k][i])
                    if probs is not None:
                        rows.append(probs[version][k][i])
            conf = [float(r.max()) for r in rows]
            out[(subset, version)] = score(gold, pred, conf or None)
            if rows:
                out[(subset, version)]["class_ece"] = class_calibration_errors(
                    np.vstack(rows), gold
                )
    return out


def evaluate_split(
    candidates: list[Candidate],
    train: list[GoldTraceTexts],
    test: list[GoldTraceTexts],
    feats: dict,
) -> dict[str, dict]:
    """candidate name (and "keyword baseline") -> scores (module doc)."""
    versions = ("original", "cue-synonyms")
    results = {
        "keyword baseline": scored(
            test, {v: [[keyword_behavior(x) for x in t.texts[v]] for t in test] for v in versions}
        )
    }
    for candidate in candidates:
        fitted = Fitted(candidate, train, feats)
        probs = {v: fitted.predict([feats[(t.name, v)] for t in test]) for v in versions}
        labels = {v: [[BEHAVIORS[j] for j in p.argmax(1)] for p in probs[v]] for v in versions}
        results[candidate.name] = scored(test, labels, probs)
    return results


DRAWN_GRU = Candidate(
    "BiGRU + opening words, three drawn copies at 1/3",
    kind="gru",
    groups=GRU_GROUPS,
    augment=DRAWS,
    copy_weight=1 / 3,
)
CANDIDATES = [
    Candidate("logreg, ten groups (the previous model)", groups=PREVIOUS_GROUPS),
    Candidate("logreg, no lexicon groups, augmented (v2)", augment=PARAPHRASED),
    Candidate("v2 calibrated (shipped)", augment=PARAPHRASED, calibrate=True),
    Candidate("v2 + cue-removed copies", augment=PARAPHRASED_AND_REMOVED),
    Candidate("v2, consistency 1", augment=PARAPHRASED, consistency=1.0),
    Candidate("v2, consistency 10", augment=PARAPHRASED, consistency=10.0),
    Candidate("three drawn copies at 1/3", augment=DRAWS, copy_weight=1 / 3),
    Candidate(
        "three drawn copies at 1/3, calibrated", augment=DRAWS, copy_weight=1 / 3, calibrate=True
    ),
    Candidate(
        "drawn + removed copies at 1/4", augment=(*DRAWS, "cue-removed-train"), copy_weight=0.25
    ),
    Candidate(
        "drawn + removed copies at 1/4, consistency 1 on the drawn ones",
        augment=(*DRAWS, "cue-removed-train"),
        copy_weight=0.25,
        consistency=1.0,
        pairs=DRAWS,
    ),
    Candidate(
        "BiGRU + opening words, augmented (v2)", kind="gru", groups=GRU_GROUPS, augment=PARAPHRASED
    ),
    DRAWN_GRU,
    Candidate(
        "the same BiGRU, seeds 0-2 averaged",
        kind="ensemble",
        parts=tuple(replace(DRAWN_GRU, seed=seed) for seed in range(3)),
    ),
]


def splits(traces: list[GoldTraceTexts], seeds: int) -> dict[str, list[tuple[list, list]]]:
    """Split name -> (train, test) trace lists."""
    by_name = {t.name: t for t in traces}
    cv = []
    for seed in range(seeds):
        for held in fold_names(list(by_name), 5, seed):
            cv.append(([t for t in traces if t.name not in held], [by_name[n] for n in held]))
    ta = [t for t in traces if t.family == "thought-anchors"]
    sky = [t for t in traces if t.family == "skythought"]
    return {
        "grouped 5-fold CV over all 91 traces": cv,
        "train Thought Anchors, test SkyThought": [(ta, sky)],
        "train SkyThought, test Thought Anchors": [(sky, ta)],
    }


def table(name: str, folds: list[dict[str, dict]], subset: str) -> list[str]:
    """Markdown rows: mean over folds of macro-F1 and per-class F1, and the cue-synonym drop."""
    out = []
    for label in folds[0]:

        def mean(version: str, key: str | None, label: str = label) -> float:
            got = [f[label][(subset, version)] for f in folds]
            return float(
                np.mean([g["macro_f1"] if key is None else g["per_class"][key]["f1"] for g in got])
            )

        cells = [mean("original", None)] + [mean("original", b) for b in BEHAVIORS]
        drops = [cells[0] - mean("cue-synonyms", None)] + [
            cells[1 + k] - mean("cue-synonyms", b) for k, b in enumerate(BEHAVIORS)
        ]
        got = [f[label][(subset, "original")] for f in folds]
        ece_cell = (
            f"{np.mean([g['ece'] for g in got]):.3f} ("
            + " / ".join(f"{np.mean([g['class_ece'][b] for g in got]):.3f}" for b in BEHAVIORS)
            + ")"
            if "class_ece" in got[0]
            else "—"
        )
        out.append(
            f"| {label} | **{cells[0]:.3f}** | "
            + " | ".join(f"{c:.3f}" for c in cells[1:])
            + f" | {ece_cell} | "
            + " / ".join(f"{d:+.3f}" for d in drops)
            + " |"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True, help="folder for the text encodings")
    parser.add_argument("--seeds", type=int, default=1, help="fold seeds of the grouped CV")
    parser.add_argument("--only", default=None, help="only candidates whose name has this text")
    parser.add_argument("--split", default=None, help="only splits whose name has this text")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    began = time.perf_counter()
    traces = load_traces()
    known = encodings(traces, args.cache)
    feats = all_features(traces, known)
    print(
        f"{len(traces)} traces, {sum(len(t.gold) for t in traces)} steps; "
        f"features in {time.perf_counter() - began:.0f} s"
    )
    candidates = [c for c in CANDIDATES if args.only is None or args.only in c.name]
    header = (
        "| | macro-F1 | F1 N | F1 D | F1 R | F1 E | ECE (per class N / D / R / E) "
        "| cue-synonym drop (macro / N / D / R / E) |\n"
        "|---|---|---|---|---|---|---|---|"
    )
    for split, pairs in splits(traces, args.seeds).items():
        if args.split is not None and args.split not in split:
            continue
        t = time.perf_counter()
        folds = [evaluate_split(candidates, train, test, feats) for train, test in pairs]
        for subset in ("all", "dedup"):
            print(f"\n{split}, {subset} steps ({time.perf_counter() - t:.0f} s)\n")
            print(header)
            print("\n".join(table(split, folds, subset)), flush=True)
    print(f"\ntotal {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
