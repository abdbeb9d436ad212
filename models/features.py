"""Turns one trace's step embeddings into per-step feature rows for the head.

A behavior is the move *into* a step, so a step's own text is not enough: R revisits an earlier
step (high similarity to a distant earlier step), E branches away (low similarity to its
neighbors), D continues the backbone. The groups, chosen by measurement (docs/classifier.md):

- `step`: the step embedding (384).
- `neighbors`: the previous and next step embeddings (768; zeros past either end).
- `similarity`: cosine to the previous and to the next step, max and mean cosine to the steps
  before the previous one, and how far back (relative) the most similar one is (5).
- `position`: relative position in the trace, first step, last step (3).
- `length`: log token count (truncated at 256) and log character count, scaled (2).
- `cues`: cue-word flags for R, E, D from `bondscope.models.lexicon` (3).
- `keyword`: the keyword baseline's own label, one-hot N, D, R, E (4). The flags say which cues
  occur; this says which one the baseline acts on (the earliest), which the linear head cannot
  rebuild from the flags.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from bondscope.domain import BEHAVIORS
from bondscope.models.lexicon import cue_flags, keyword_behavior

GROUPS = ("step", "neighbors", "similarity", "position", "length", "cues", "keyword")
DEFAULT_GROUPS = GROUPS


def group_width(group: str, dim: int) -> int:
    return {
        "step": dim,
        "neighbors": 2 * dim,
        "similarity": 5,
        "position": 3,
        "length": 2,
        "cues": 3,
        "keyword": 4,
    }[group]


def trace_features(
    embeddings: np.ndarray,
    texts: Sequence[str],
    token_counts: np.ndarray,
    groups: Sequence[str] = DEFAULT_GROUPS,
) -> np.ndarray:
    """(steps, width) float32 rows for one trace whose steps are in order."""
    n, dim = embeddings.shape
    unknown = set(groups) - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown feature groups {sorted(unknown)} (known: {', '.join(GROUPS)})")
    zero = np.zeros((1, dim), np.float32)
    previous = np.vstack([zero, embeddings[:-1]]) if n else embeddings
    following = np.vstack([embeddings[1:], zero]) if n else embeddings
    parts: list[np.ndarray] = []
    for group in groups:
        if group == "step":
            parts.append(embeddings)
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
            one_hot = np.zeros((n, len(BEHAVIORS)), np.float32)
            one_hot[np.arange(n), [BEHAVIORS.index(keyword_behavior(t)) for t in texts]] = 1.0
            parts.append(one_hot)
    return np.hstack([p.astype(np.float32, copy=False) for p in parts])


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
