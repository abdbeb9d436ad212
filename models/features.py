"""Turns one trace's step embeddings and texts into per-step feature rows for the head.

A behavior is the move *into* a step, so a step's own text is not enough: R revisits an earlier
step (high similarity to a distant earlier step, numbers it already derived), E branches away
(low similarity to its neighbors), D continues the backbone. The groups, chosen by measurement
(docs/classifier.md):

- `step`: the step embedding (384). Not among `DEFAULT_GROUPS`: beside `middle` it lowers the
  score; the neighbors' and similarity groups still use the last layer.
- `middle`: the masked mean of the encoder's layer 4 (of 6) over the step's tokens (384), from
  the same encoder pass. Linear probes read behavior better from a middle layer than from the
  last one, which sentence-transformers trained for topic similarity.
- `neighbors`: the previous and next step embeddings (768; zeros past either end).
- `similarity`: cosine to the previous and to the next step, max and mean cosine to the steps
  before the previous one, and how far back (relative) the most similar one is (5).
- `position`: relative position in the trace, first step, last step (3).
- `length`: log token count (truncated at 256) and log character count, scaled (2).
- `cues`: cue-word flags for R, E, D from `bondscope.models.lexicon` (3).
- `keyword`: the keyword baseline's own label, one-hot N, D, R, E (4). The flags say which cues
  occur; this says which one the baseline acts on (the earliest), which the linear head cannot
  rebuild from the flags.
- `overlap`: what the step repeats (7): the share of its numbers seen before the previous step,
  the share shared with the previous step, its count of numbers, the share of its word trigrams
  seen before, its best trigram overlap with one step before the previous, its trigram overlap
  with the previous step, and whether it asks a question. A check recomputes values the trace
  already has, which the mean-pooled embedding cannot see.
- `cue_context`: the keyword baseline's label of the previous and next steps, one-hot (8), and
  1 / (steps since the last R cue) (1). Re-checking loops run over several steps after one "wait".
- `opening`: the first 20 words' lowercase unigrams and bigrams, hashed into 4,096 buckets
  (binary, L2-normalized). The head learns its own cue words from gold here; the embedding
  blurs a paragraph's opening into its body.

`GROUP_WEIGHTS` scales each group after standardization when the head is fit, which is the same
as a weaker L2 penalty on it: 1,152 embedding columns would otherwise drown the few columns of
hand-made features. `opening` is not standardized (sparse, already unit length).
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
from bondscope.domain import BEHAVIORS
from bondscope.models.encoder import Encoding
from bondscope.models.lexicon import cue_flags, keyword_behavior

GROUPS = (
    "step",
    "middle",
    "neighbors",
    "similarity",
    "position",
    "length",
    "cues",
    "keyword",
    "overlap",
    "cue_context",
    "opening",
)
# `step` (the last layer's embedding of the step itself) scores lower beside `middle` than
# without it; it stays available for heads trained with it. The lexicon groups (`cues`,
# `keyword`, `cue_context`) made the head read cue words: with them, a paraphrase of the cues
# cost 0.13 macro-F1 across teacher families, without them (and trained on paraphrased copies)
# 0.04-0.05 (docs/classifier.md, "Version 2"). They stay available for heads trained with them.
LEXICON_GROUPS = ("cues", "keyword", "cue_context")
DEFAULT_GROUPS = tuple(g for g in GROUPS if g != "step" and g not in LEXICON_GROUPS)
# The sequence head (models/sequence_training.py) reads the neighbors itself, and is meant to read
# moves rather than cue words: no neighbor, lexicon or opening-word groups.
SEQUENCE_GROUPS = ("step", "middle", "similarity", "position", "length", "overlap")
OPENING_WORDS = 20
OPENING_BUCKETS = 4096
# Chosen by grouped CV on the seed set (docs/classifier.md); 1.0 is plain standardization.
GROUP_WEIGHTS = {
    "step": 1.0,
    "middle": 2.0,
    "neighbors": 1.0,
    "similarity": 10.0,
    "position": 10.0,
    "length": 10.0,
    "cues": 10.0,
    "keyword": 10.0,
    "overlap": 10.0,
    "cue_context": 10.0,
    "opening": 40.0,
}
UNSTANDARDIZED = frozenset({"opening"})
_WORD = re.compile(r"\b\w\w+\b")
_TOKEN = re.compile(r"[a-z]+|\d+(?:\.\d+)?")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def group_width(group: str, dim: int) -> int:
    return {
        "step": dim,
        "middle": dim,
        "neighbors": 2 * dim,
        "similarity": 5,
        "position": 3,
        "length": 2,
        "cues": 3,
        "keyword": 4,
        "overlap": 7,
        "cue_context": 9,
        "opening": OPENING_BUCKETS,
    }[group]


def column_scaling(
    groups: Sequence[str], dim: int, weights: Mapping[str, float] = GROUP_WEIGHTS
) -> tuple[np.ndarray, np.ndarray]:
    """Per column: the weight applied after standardization, and whether to standardize."""
    weight = np.concatenate([np.full(group_width(g, dim), weights[g]) for g in groups])
    standardize = np.concatenate(
        [np.full(group_width(g, dim), g not in UNSTANDARDIZED) for g in groups]
    )
    return weight.astype(np.float32), standardize


def trace_features(
    encoded: Encoding,
    texts: Sequence[str],
    groups: Sequence[str] = DEFAULT_GROUPS,
) -> np.ndarray:
    """(steps, width) float32 rows for one trace whose steps are in order."""
    embeddings, token_counts = encoded.embeddings, encoded.token_counts
    n, dim = embeddings.shape
    unknown = set(groups) - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown feature groups {sorted(unknown)} (known: {', '.join(GROUPS)})")
    zero = np.zeros((1, dim), np.float32)
    previous = np.vstack([zero, embeddings[:-1]]) if n else embeddings
    following = np.vstack([embeddings[1:], zero]) if n else embeddings
    needs_keywords = {"keyword", "cue_context"} & set(groups)
    keywords = [BEHAVIORS.index(keyword_behavior(t)) for t in texts] if needs_keywords else []
    parts: list[np.ndarray] = []
    for group in groups:
        if group == "step":
            parts.append(embeddings)
        elif group == "middle":
            parts.append(encoded.middle)
        elif group == "neighbors":
            parts.extend([previous, following])
        elif group == "similarity":
            parts.append(_similarity(embeddings, previous, following))
        elif group == "position":
            index = np.arange(n, dtype=np.float32)
            relative = index / max(n - 1, 1)
            parts.append(np.stack([relative, index == 0, index == n - 1], axis=1))
        elif group == "length":
            chars = np.array([len(t) for t in texts], np.float32)
            parts.append(
                np.stack([np.log1p(token_counts) / np.log(257.0), np.log1p(chars) / 10.0], axis=1)
            )
        elif group == "cues":
            parts.append(np.array([cue_flags(t) for t in texts], np.float32).reshape(n, 3))
        elif group == "keyword":
            parts.append(_one_hot(keywords))
        elif group == "overlap":
            parts.append(_overlap(texts))
        elif group == "cue_context":
            parts.append(_cue_context(keywords))
        elif group == "opening":
            parts.append(opening_hashes(texts))
    return np.hstack([p.astype(np.float32, copy=False) for p in parts])


def _one_hot(indices: Sequence[int]) -> np.ndarray:
    out = np.zeros((len(indices), len(BEHAVIORS)), np.float32)
    out[np.arange(len(indices)), list(indices)] = 1.0
    return out


def _similarity(emb: np.ndarray, previous: np.ndarray, following: np.ndarray) -> np.ndarray:
    """Cosines (unit rows) to the neighbors and to the earlier steps a reflection revisits."""
    n = len(emb)
    to_previous = (emb * previous).sum(1)
    to_next = (emb * following).sum(1)
    gram = emb @ emb.T
    earlier_max = np.zeros(n, np.float32)
    earlier_mean = np.zeros(n, np.float32)
    back = np.zeros(n, np.float32)
    for i in range(2, n):
        row = gram[i, : i - 1]  # steps before the previous one
        j = int(row.argmax())
        earlier_max[i] = row[j]
        earlier_mean[i] = row.mean()
        back[i] = (i - j) / i
    return np.stack([to_previous, to_next, earlier_max, earlier_mean, back], axis=1)


def _overlap(texts: Sequence[str]) -> np.ndarray:
    """Repetition of numbers and word trigrams; an inverted index keeps long traces linear-ish."""
    n = len(texts)
    out = np.zeros((n, 7), np.float32)
    numbers = [set(_NUMBER.findall(t)) for t in texts]
    trigrams = [_trigrams(t) for t in texts]
    seen_numbers: set[str] = set()
    steps_with: dict[tuple[str, ...], list[int]] = {}  # trigram -> steps before the previous
    for i, text in enumerate(texts):
        if i >= 2:
            seen_numbers |= numbers[i - 2]
            for gram in trigrams[i - 2]:
                steps_with.setdefault(gram, []).append(i - 2)
        mine, grams = numbers[i], trigrams[i]
        if mine:
            out[i, 0] = len(mine & seen_numbers) / len(mine)
            out[i, 1] = len(mine & numbers[i - 1]) / len(mine) if i else 0.0
        out[i, 2] = np.log1p(len(mine)) / 3.0
        if grams:
            shared = Counter(j for gram in grams for j in steps_with.get(gram, ()))
            seen = sum(1 for gram in grams if gram in steps_with)
            out[i, 3] = seen / len(grams)
            out[i, 4] = max(shared.values(), default=0) / len(grams)
            out[i, 5] = len(grams & trigrams[i - 1]) / len(grams) if i else 0.0
        out[i, 6] = "?" in text
    return out


def _trigrams(text: str) -> set[tuple[str, ...]]:
    words = _TOKEN.findall(text.lower())
    return {tuple(words[k : k + 3]) for k in range(len(words) - 2)}


def _cue_context(keywords: Sequence[int]) -> np.ndarray:
    n = len(keywords)
    out = np.zeros((n, 9), np.float32)
    r = BEHAVIORS.index("R")
    last_r: int | None = None
    for i in range(n):
        if i:
            out[i, keywords[i - 1]] = 1.0
        if i + 1 < n:
            out[i, 4 + keywords[i + 1]] = 1.0
        if last_r is not None:
            out[i, 8] = 1.0 / (i - last_r)
        if keywords[i] == r:
            last_r = i
    return out


def opening_hashes(texts: Sequence[str]) -> np.ndarray:
    """Binary hashed unigrams + bigrams of each text's first words, rows L2-normalized.

    crc32 rather than `hash()`, which is salted per process and would scramble a saved head.
    """
    out = np.zeros((len(texts), OPENING_BUCKETS), np.float32)
    for row, text in enumerate(texts):
        words = _WORD.findall(" ".join(text.split()[:OPENING_WORDS]).lower())
        terms = words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]
        for term in terms:
            out[row, zlib.crc32(term.encode()) % OPENING_BUCKETS] = 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-12)
