"""Geometry and entropy dynamics of one trace (paper.md §3.5, §3.7, §8 C1-C8), headless.

Steps are embedded (a pluggable `Embedder`), projected to 3-D with t-SNE and clustered; the bond
roles the paper reports (D stays local, R folds back to an earlier cluster, E jumps far) and the
compactness of the trace (Welzl's minimum enclosing ball) are measured there. The paper leaves
the embedder, perplexity, clustering and most definitions open; every choice is in
docs/metrics.md ("Geometry").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
from bondscope.domain import BEHAVIORS
from bondscope.services.structure import SelectionError
from bondscope.store import Store

Embedder = Callable[[Sequence[str]], np.ndarray]

PERPLEXITY = 30.0
SEED = 0
THRESHOLD = 3.0  # §8 C3/C4: "group distance < 3"
WINDOW = 5  # steps before / after an R step for the pre/post-reflection ball (§8 C7)
BETA = 10.0  # inverse temperature of p_t = softmax(BETA * cos(e_t, centroid_k)) (§8 C8)
SVD_DIMENSIONS = 64
EPS = 1e-9


# -- embedders (§8 C1) ----------------------------------------------------------------------------


def tfidf_embedder(texts: Sequence[str]) -> np.ndarray:
    """TF-IDF (sublinear tf, fit on these texts) reduced by a seeded TruncatedSVD, unit rows.

    The fallback when no sentence encoder runs: deterministic, CPU-only and fast, but it sees
    shared words, not meaning.
    """
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    matrix = TfidfVectorizer(sublinear_tf=True, token_pattern=r"(?u)\b\w+\b").fit_transform(texts)
    k = min(SVD_DIMENSIONS, matrix.shape[0] - 1, matrix.shape[1] - 1)
    dense = TruncatedSVD(k, random_state=SEED).fit_transform(matrix) if k >= 1 else matrix.toarray()
    return normalize(dense)


def make_embedder(name: str) -> tuple[str, Embedder]:
    """'minilm' (the ONNX MiniLM runtime of bondscope.models), 'tfidf', or 'auto' (MiniLM when it
    loads, else TF-IDF). Returns the name of the one used, so results say what they rest on."""
    if name not in ("auto", "minilm", "tfidf"):
        raise SelectionError(f"unknown embedder {name!r} (auto, minilm or tfidf)")
    if name == "tfidf":
        return "tfidf", tfidf_embedder
    try:
        from bondscope.models.encoder import Encoder

        return "minilm", Encoder(provider="cpu").encode  # one trace: CPU is enough, same everywhere
    except (ImportError, OSError, RuntimeError, ValueError):
        if name == "minilm":
            raise
        return "tfidf", tfidf_embedder


# -- projection and clustering (§8 C2, C3) -------------------------------------------------------


def project_3d(
    embeddings: np.ndarray, perplexity: float = PERPLEXITY, seed: int = SEED
) -> np.ndarray:
    """3-D t-SNE with perplexity min(perplexity, n - 1) and a fixed seed; one step sits at 0.

    Raw t-SNE coordinates have no unit (their spread grows with n: about ±150 for 100 steps), so
    the map is centred and rescaled to make the mean nearest-neighbour distance 1: the paper's
    thresholds (group < 3, clusters > 5.6) then mean "within a few neighbours" at any length.
    """
    from sklearn.manifold import TSNE

    n = len(embeddings)
    if n < 2:
        return np.zeros((n, 3))
    init = "pca" if min(embeddings.shape) >= 3 else "random"  # PCA needs 3 components
    tsne = TSNE(3, perplexity=min(perplexity, n - 1), init=init, random_state=seed)
    points = tsne.fit_transform(np.asarray(embeddings, dtype=np.float64))
    centred = points - points.mean(axis=0)
    return centred / max(mean_nearest_neighbour(centred), 1e-12)


def mean_nearest_neighbour(points: np.ndarray) -> float:
    distances = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=-1)
    np.fill_diagonal(distances, np.inf)
    return float(distances.min(axis=1).mean())


def cluster(points: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """Average-linkage agglomerative clusters cut at `threshold`, numbered by first appearance.

    Numbering in trace order makes "a cluster formed earlier" a comparison of ids.
    """
    from sklearn.cluster import AgglomerativeClustering

    if len(points) < 2:
        return np.zeros(len(points), dtype=np.int64)
    raw = AgglomerativeClustering(
        n_clusters=None, distance_threshold=threshold, linkage="average"
    ).fit_predict(points)
    _, first = np.unique(raw, return_index=True)
    order = np.argsort(np.argsort(first))  # raw label -> rank of its first step
    return order[np.unique(raw, return_inverse=True)[1]]


# -- minimum enclosing ball (§8 C7): Welzl's algorithm -------------------------------------------


@dataclass(frozen=True)
class Ball:
    center: np.ndarray
    radius: float

    def contains(self, point: np.ndarray) -> bool:
        return float(np.linalg.norm(point - self.center)) <= self.radius + EPS * (1 + self.radius)

    @property
    def volume(self) -> float:
        """(4/3) pi r^3, the d = 3 ball of paper.md §3.5."""
        return 4 / 3 * np.pi * self.radius**3


def circumball(points: Sequence[np.ndarray]) -> Ball | None:
    """The smallest ball with every point on its surface (its center in their affine hull).

    None when the points are affinely dependent (collinear three, coplanar four): no such ball.
    """
    base = points[0]
    if len(points) == 1:
        return Ball(base.copy(), 0.0)
    A = np.array([p - base for p in points[1:]])
    gram = A @ A.T
    if abs(np.linalg.det(gram)) <= EPS * max(1.0, float(np.trace(gram))) ** len(A):
        return None
    weights = np.linalg.solve(gram, 0.5 * np.diag(gram))
    center = base + weights @ A
    return Ball(center, float(np.linalg.norm(center - base)))


def _boundary_ball(boundary: list[np.ndarray]) -> Ball | None:
    """The smallest ball with the boundary points on its surface; None for no points.

    Affinely dependent boundaries (duplicates, collinear points) fall back to the smallest
    circumball of a subset that still encloses them all.
    """
    if not boundary:
        return None
    ball = circumball(boundary)
    if ball is not None:
        return ball
    candidates = [
        b
        for size in range(1, len(boundary))
        for subset in combinations(boundary, size)
        if (b := circumball(list(subset))) is not None and all(b.contains(p) for p in boundary)
    ]
    return min(candidates, key=lambda b: b.radius)


def _welzl(points: np.ndarray, count: int, boundary: list[np.ndarray]) -> Ball | None:
    """Smallest ball enclosing points[:count] with `boundary` on its surface.

    Welzl's recursion in its incremental form: a point outside the ball so far must lie on the
    boundary of the answer. The depth is at most 4 (at most 4 points fix a ball in 3-D).
    """
    ball = _boundary_ball(boundary)
    if len(boundary) == 4:
        return ball
    for i in range(count):
        if ball is None or not ball.contains(points[i]):
            ball = _welzl(points, i, [*boundary, points[i]])
    return ball


def minimum_enclosing_ball(points: np.ndarray, seed: int = SEED) -> Ball:
    """Welzl's algorithm on the points in a seeded random order (expected linear time)."""
    points = np.asarray(points, dtype=float)
    if len(points) == 0:
        raise ValueError("no points to enclose")
    shuffled = points[np.random.default_rng(seed).permutation(len(points))]
    ball = _welzl(shuffled, len(shuffled), [])
    assert ball is not None  # at least one point was given
    return ball


# -- bond roles in the projected space (§8 C4-C7) ------------------------------------------------


def step_distances(points: np.ndarray) -> np.ndarray:
    """distance[t] = |x_t - x_{t-1}|; NaN for the first step."""
    moves = np.full(len(points), np.nan)
    moves[1:] = np.linalg.norm(np.diff(points, axis=0), axis=1)
    return moves


def jump_lengths(points: np.ndarray, behaviors: np.ndarray) -> dict[str, dict[str, Any]]:
    """Mean 3-D distance t-1 -> t over the steps labeled with each behavior (§8 C6)."""
    moves = step_distances(points)
    result = {}
    for k, behavior in enumerate(BEHAVIORS):
        chosen = moves[(behaviors == k) & ~np.isnan(moves)]
        result[behavior] = {
            "steps": len(chosen),
            "mean": float(chosen.mean()) if len(chosen) else None,
        }
    return result


def locality(
    points: np.ndarray, behaviors: np.ndarray, threshold: float = THRESHOLD
) -> dict[str, Any]:
    """Share of D steps that stay within `threshold` of the previous step (§8 C4)."""
    moves = step_distances(points)
    chosen = moves[(behaviors == BEHAVIORS.index("D")) & ~np.isnan(moves)]
    within = int((chosen < threshold).sum())
    return {
        "steps": len(chosen),
        "within": within,
        "fraction": within / len(chosen) if len(chosen) else None,
    }


def reconnection(
    clusters: np.ndarray, behaviors: np.ndarray, targets: dict[int, list[int]]
) -> dict[str, Any]:
    """Share of R steps that fold back to a previously formed cluster (§8 C5).

    R step t (t >= 2) reconnects when a cluster it points at holds a step <= t-2 and is not the
    cluster of step t-1. It points at the clusters of its hydrogen-bond targets when it has any,
    else at its own cluster (the one it falls in, so the nearest group of steps).
    """
    steps = reconnected = by_bond = 0
    for t in np.flatnonzero(behaviors == BEHAVIORS.index("R")):
        if t < 2:
            continue
        steps += 1
        pointed = {int(clusters[j]) for j in targets.get(int(t), [])}
        by_bond += bool(pointed)
        earlier = set(clusters[: t - 1].tolist()) - {int(clusters[t - 1])}
        reconnected += bool((pointed or {int(clusters[t])}) & earlier)
    return {
        "steps": steps,
        "reconnected": reconnected,
        "rate": reconnected / steps if steps else None,
        "from_bond_targets": by_bond,
    }


def reflection_compaction(
    points: np.ndarray, behaviors: np.ndarray, window: int = WINDOW
) -> dict[str, Any]:
    """Mean Δ_Reflect = (V_pre - V_post) / V_pre * 100 over R steps (§3.5, §8 C7).

    V_pre is the ball of the `window` steps before the R step, V_post of the R step and the
    `window - 1` after it; an R step needs `window` steps on each side (and V_pre > 0).
    """
    deltas = []
    for t in np.flatnonzero(behaviors == BEHAVIORS.index("R")):
        if t < window or t + window > len(points):
            continue
        before = minimum_enclosing_ball(points[t - window : t]).volume
        after = minimum_enclosing_ball(points[t : t + window]).volume
        if before > 0:
            deltas.append((before - after) / before * 100)
    return {
        "window": window,
        "steps": len(deltas),
        "mean_delta_percent": float(np.mean(deltas)) if deltas else None,
    }


# -- entropy dynamics (§3.7, §8 C8) --------------------------------------------------------------


def step_distributions(
    embeddings: np.ndarray, clusters: np.ndarray, beta: float = BETA
) -> np.ndarray:
    """p_t = softmax(beta * cos(e_t, c_k)) over the K cluster centroids in embedding space."""
    unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), EPS)
    centroids = np.array([unit[clusters == k].mean(axis=0) for k in range(clusters.max() + 1)])
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), EPS)
    logits = beta * unit @ centroids.T
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def entropy_dynamics(p: np.ndarray) -> dict[str, Any]:
    """I_t = H(p_t) / log K, dI_t = I_t - I_{t-1}, m_t = (dI_t - dI_{t-1}) / dI_t, states.

    m_t is 0 when |dI_t| < 1e-9 (no change: no acceleration either). States from t = 2:
    exploration when m_t > 0.6 and dI_t > 0.05, validation when |m_t| < 0.05 and
    |dI_t| < 0.05, else neutral; steps 0 and 1 have no m_t and are neutral.
    """
    k = p.shape[1]
    logp = np.log(np.where(p > 0, p, 1.0))
    information = -(p * logp).sum(axis=1) / np.log(k) if k > 1 else np.zeros(len(p))
    delta = np.full(len(p), np.nan)
    delta[1:] = np.diff(information)
    slope = np.full(len(p), np.nan)
    previous, current = delta[1:-1], delta[2:]
    safe = np.abs(current) >= EPS
    slope[2:] = np.divide(current - previous, current, out=np.zeros_like(current), where=safe)
    states = np.full(len(p), "neutral", dtype=object)
    defined = ~np.isnan(slope)
    states[defined & (slope > 0.6) & (delta > 0.05)] = "exploration"
    states[defined & (np.abs(slope) < 0.05) & (np.abs(delta) < 0.05)] = "validation"
    moved = np.abs(delta[1:])
    return {
        "clusters": k,
        "information": information.tolist(),
        "delta": [None if np.isnan(d) else float(d) for d in delta],
        "slope": [None if np.isnan(m) else float(m) for m in slope],
        "states": states.tolist(),
        "state_counts": {s: int((states == s).sum()) for s in ("exploration", "validation")},
        "fraction_large_change": float((moved > 0.1).mean()) if len(moved) else None,
    }


# -- one trace from the store ---------------------------------------------------------------------


def find_trace(store: Store, trace: str) -> int:
    """A trace id from its name (or its numeric id)."""
    row = store.conn.execute("SELECT id FROM traces WHERE name = ?", (trace,)).fetchone()
    if row is None and trace.isdigit():
        row = store.conn.execute("SELECT id FROM traces WHERE id = ?", (int(trace),)).fetchone()
    if row is None:
        raise SelectionError(f"no trace named {trace!r}")
    return int(row[0])


def trace_annotator(store: Store, trace_id: int, annotator: str | None) -> str | None:
    """The annotator whose labels are measured: the given one, else the trace's only one."""
    if annotator is not None:
        return annotator
    names = [
        r[0]
        for r in store.conn.execute(
            "SELECT DISTINCT annotator FROM current_labels WHERE trace_id = ? ORDER BY 1",
            (trace_id,),
        )
    ]
    if len(names) > 1:
        raise SelectionError(
            f"several annotators labeled this trace: {', '.join(names)}; pass --annotator NAME"
        )
    return names[0] if names else None


def geometry(
    store: Store,
    trace: str,
    annotator: str | None = None,
    embedder: str = "auto",
    embed: Embedder | None = None,
) -> dict[str, Any]:
    """Every §8 C1-C8 measure of one trace; `embed` overrides the named embedder."""
    trace_id = find_trace(store, trace)
    annotator = trace_annotator(store, trace_id, annotator)
    loaded = store.load_trace(trace_id, [annotator] if annotator else [])
    texts = [loaded.text[s.start : s.end] for s in loaded.steps]
    if len(texts) < 2:
        raise SelectionError(f"trace {trace!r} has {len(texts)} step(s); geometry needs 2")
    if embed is None:
        embedder, embed = make_embedder(embedder)
    behaviors = np.full(len(texts), -1)
    for label in loaded.labels:
        behaviors[label.step] = BEHAVIORS.index(label.behavior)
    targets: dict[int, list[int]] = {}
    for bond in loaded.bonds:
        if bond.type == "hydrogen":
            targets.setdefault(bond.source, []).append(bond.target)
    embeddings = np.asarray(embed(texts), dtype=np.float64)
    points = project_3d(embeddings)
    clusters = cluster(points)
    ball = minimum_enclosing_ball(points)
    return {
        "trace": loaded.id,
        "annotator": annotator,
        "embedder": embedder,
        "steps": len(texts),
        "perplexity": min(PERPLEXITY, len(texts) - 1),
        "seed": SEED,
        "threshold": THRESHOLD,
        "clusters": int(clusters.max()) + 1,
        "deep_locality": locality(points, behaviors),
        "reflection_reconnection": reconnection(clusters, behaviors, targets),
        "jump_length": jump_lengths(points, behaviors),
        "meb": {"radius": ball.radius, "volume": ball.volume, "center": ball.center.tolist()},
        "reflection_compaction": reflection_compaction(points, behaviors),
        "entropy": entropy_dynamics(step_distributions(embeddings, clusters)),
        "points": points.round(4).tolist(),
        "cluster": clusters.tolist(),
        "behavior": [BEHAVIORS[b] if b >= 0 else None for b in behaviors],
    }
