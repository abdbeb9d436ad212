"""Geometry and entropy dynamics (services/geometry.py) on hand-computed cases and a real trace."""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from bondscope.cli import cli
from bondscope.plugin_manager import Plugins
from bondscope.services.geometry import (
    circumball,
    cluster,
    entropy_dynamics,
    geometry,
    jump_lengths,
    locality,
    make_embedder,
    minimum_enclosing_ball,
    reconnection,
    reflection_compaction,
    step_distributions,
    tfidf_embedder,
)
from bondscope.services.importing import import_paths
from bondscope.services.structure import SelectionError
from bondscope.store import Store
from click.testing import CliRunner
from scipy.optimize import brentq

from tests.helpers import write_jsonl

N, D, R, E = range(4)


def brute_force_radius(points: np.ndarray) -> float:
    """The smallest circumball of 1-4 points that encloses all: the MEB by exhaustion."""
    best = np.inf
    for size in range(1, 5):
        for subset in combinations(points, size):
            ball = circumball(list(subset))
            if ball is not None and all(ball.contains(p) for p in points):
                best = min(best, ball.radius)
    return best


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 9])
@pytest.mark.parametrize("seed", range(6))
def test_welzl_matches_brute_force(n, seed):
    points = np.random.default_rng(seed).normal(size=(n, 3)) * 4
    ball = minimum_enclosing_ball(points, seed=seed)
    assert ball.radius == pytest.approx(brute_force_radius(points), rel=1e-7, abs=1e-9)
    assert all(ball.contains(p) for p in points)


def test_welzl_on_degenerate_and_known_sets():
    cube = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float)
    assert minimum_enclosing_ball(cube).radius == pytest.approx(np.sqrt(3))
    line = np.array([[0, 0, 0], [1, 0, 0], [4, 0, 0], [2, 0, 0], [4, 0, 0]], float)
    assert minimum_enclosing_ball(line).radius == pytest.approx(2.0)  # collinear, a duplicate
    plane = np.random.default_rng(3).normal(size=(8, 3)) * [1, 1, 0]  # coplanar points
    assert minimum_enclosing_ball(plane).radius == pytest.approx(brute_force_radius(plane))
    assert minimum_enclosing_ball(np.ones((3, 3))).radius == 0.0
    ball = minimum_enclosing_ball(np.array([[0, 0, 0], [2, 0, 0]], float))
    assert ball.volume == pytest.approx(4 / 3 * np.pi)  # r = 1


# Points on a line: x = 0 1 2 10 11 1.5 20, labeled N D D E D R E.
XS = [0, 1, 2, 10, 11, 1.5, 20]
POINTS = np.array([[x, 0, 0] for x in XS], float)
LABELS = np.array([N, D, D, E, D, R, E])


def test_clusters_are_cut_at_three_and_numbered_in_trace_order():
    assert cluster(POINTS).tolist() == [0, 0, 0, 1, 1, 0, 2]
    assert cluster(POINTS[::-1]).tolist() == [0, 1, 2, 2, 1, 1, 1]
    assert cluster(POINTS[:1]).tolist() == [0]


def test_jump_lengths_and_deep_locality():
    # moves t-1 -> t: 1, 1, 8, 1, 9.5, 18.5
    jumps = jump_lengths(POINTS, LABELS)
    assert jumps["E"] == {"steps": 2, "mean": pytest.approx((8 + 18.5) / 2)}
    assert jumps["D"] == {"steps": 3, "mean": 1.0}
    assert jumps["R"] == {"steps": 1, "mean": 9.5}
    assert jumps["N"] == {"steps": 0, "mean": None}  # N only at t = 0, which has no move
    assert locality(POINTS, LABELS) == {"steps": 3, "within": 3, "fraction": 1.0}
    assert locality(POINTS, LABELS, threshold=1.0)["within"] == 0  # strictly below


def test_reflection_reconnection_with_and_without_bond_targets():
    clusters = cluster(POINTS)  # 0 0 0 1 1 0 2
    # R at t=5 falls in cluster 0, formed by steps <= 3 and not the cluster of step 4 (1)
    assert reconnection(clusters, LABELS, {}) == {
        "steps": 1,
        "reconnected": 1,
        "rate": 1.0,
        "from_bond_targets": 0,
    }
    # a hydrogen bond to step 4 points at the cluster of t-1: no reconnection
    assert reconnection(clusters, LABELS, {5: [4]})["reconnected"] == 0
    assert reconnection(clusters, LABELS, {5: [4, 1]})["reconnected"] == 1
    early = np.array([N, R, D, D, D, D, D])  # an R at t = 1 has no earlier cluster to reach
    assert reconnection(clusters, early, {})["steps"] == 0


def test_reflection_compaction_over_windows():
    points = np.array([[0, 0, 0], [4, 0, 0], [0, 0, 0], [1, 0, 0], [9, 0, 0]], float)
    labels = np.array([N, N, R, N, N])
    # window 2: before = steps 0-1 (r = 2), after = steps 2-3 (r = 0.5): (8 - 0.125) / 8
    result = reflection_compaction(points, labels, window=2)
    assert result == {"window": 2, "steps": 1, "mean_delta_percent": pytest.approx(98.4375)}
    assert reflection_compaction(points, labels, window=3)["steps"] == 0  # no full window


def binary_with_entropy(bits: float) -> list[float]:
    q = brentq(lambda x: -x * np.log2(x) - (1 - x) * np.log2(1 - x) - bits, 1e-12, 0.5)
    return [q, 1 - q]


def test_entropy_dynamics_by_hand():
    # I = 0, 1, 1, 0, 0: dI = -, 1, 0, -1, 0; m_2 = 0 (guard), m_3 = (-1 - 0)/-1 = 1, m_4 = 0
    p = np.array([[1, 0], [0.5, 0.5], [0.5, 0.5], [1, 0], [1, 0]])
    result = entropy_dynamics(p)
    assert result["information"] == pytest.approx([0, 1, 1, 0, 0])
    assert result["delta"] == [None, pytest.approx(1), 0, pytest.approx(-1), 0]
    assert result["slope"] == [None, None, 0, pytest.approx(1), 0]
    assert result["states"] == ["neutral", "neutral", "validation", "neutral", "validation"]
    assert result["fraction_large_change"] == 0.5  # |dI| > 0.1 at t = 1 and 3 of 4
    # I = 0, 0.1, 0.5: m_2 = (0.4 - 0.1) / 0.4 = 0.75 > 0.6 and dI = 0.4 > 0.05: exploration
    rising = np.array([[1, 0], binary_with_entropy(0.1), binary_with_entropy(0.5)])
    result = entropy_dynamics(rising)
    assert result["slope"][2] == pytest.approx(0.75)
    assert result["states"][2] == "exploration"
    assert entropy_dynamics(np.ones((3, 1)))["information"] == [0, 0, 0]  # one cluster: I = 0


def test_step_distributions_softmax_over_centroids():
    embeddings = np.array([[1, 0], [0, 1], [0, 2]], float)
    p = step_distributions(embeddings, np.array([0, 1, 1]), beta=10)
    top = np.exp(10) / (np.exp(10) + 1)  # cos 1 to its own centroid, 0 to the other
    np.testing.assert_allclose(p, [[top, 1 - top], [1 - top, top], [1 - top, top]])


TOPICS = [
    "We set up the prime modulus p and the quadratic residue condition.",
    "Deep reasoning: the quadratic residue of p modulo four decides the case.",
    "Deep reasoning continues: residue modulo four gives p equal one mod four.",
    "Explore a different idea entirely: generating functions and coin partitions.",
    "Partitions of coins with generating functions give a polynomial product.",
    "Wait, check the quadratic residue step again for p modulo four.",
    "Explore geometry instead: triangle inscribed circle radius and area.",
    "Triangle area with the inscribed circle radius and semiperimeter.",
    "So the residue argument holds and the answer is p equal one mod four.",
    "Therefore the final answer is 5.",
]
LETTERS = ["N", "D", "D", "E", "D", "R", "E", "D", "N", "N"]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    text = "\n\n".join(TOPICS)
    steps, start = [], 0
    for paragraph in TOPICS:
        steps.append({"start": start, "end": start + len(paragraph)})
        start += len(paragraph) + 2
    record = {
        "format": "bondscope-jsonl/1",
        "id": "geo",
        "source": "unit",
        "model": "m",
        "text": text,
        "steps": steps,
        "labels": [
            {"step": i, "behavior": b, "annotator": "alice", "confidence": None}
            for i, b in enumerate(LETTERS)
        ],
        "bonds": [{"from": 5, "to": 1, "type": "hydrogen", "annotator": "alice"}],
    }
    db = tmp_path / "p.db"
    with Store(db) as store:
        import_paths(
            store, Plugins(load_entry_points=False), [write_jsonl(tmp_path / "g.jsonl", [record])]
        )
    return db


def test_tfidf_embedder_is_deterministic_unit_vectors():
    first, again = tfidf_embedder(TOPICS), tfidf_embedder(TOPICS)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0)
    assert first.shape == (10, 9)  # SVD to n - 1 dimensions
    assert make_embedder("tfidf")[0] == "tfidf"
    with pytest.raises(SelectionError, match="unknown embedder"):
        make_embedder("word2vec")


def test_geometry_of_a_real_trace(project):
    with Store(project) as store:
        result = geometry(store, "geo", embedder="tfidf")
        again = geometry(store, "geo", embedder="tfidf")
    assert result == again  # seeded t-SNE, seeded SVD: reproducible
    assert (result["embedder"], result["annotator"], result["steps"]) == ("tfidf", "alice", 10)
    assert result["perplexity"] == 9  # 30 capped by n - 1
    assert len(result["points"]) == 10 and len(result["points"][0]) == 3
    assert result["behavior"] == LETTERS
    assert result["deep_locality"]["steps"] == 4
    reconnect = result["reflection_reconnection"]
    assert (reconnect["steps"], reconnect["from_bond_targets"]) == (1, 1)
    assert result["jump_length"]["E"]["steps"] == 2
    points = np.array(result["points"])
    assert result["meb"]["radius"] == pytest.approx(minimum_enclosing_ball(points).radius, rel=1e-4)
    assert max(np.linalg.norm(points - result["meb"]["center"], axis=1)) <= (
        result["meb"]["radius"] + 1e-3
    )
    entropy = result["entropy"]
    assert entropy["clusters"] == result["clusters"] == max(result["cluster"]) + 1
    assert len(entropy["information"]) == 10


def test_geometry_command_and_errors(project):
    runner = CliRunner()
    args = ["metrics", "geometry", "--db", str(project), "--trace", "geo", "--embedder", "tfidf"]
    result = runner.invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["steps"] == 10
    text = runner.invoke(cli, args)
    assert text.exit_code == 0 and "reflection reconnection" in text.output
    missing = runner.invoke(cli, ["metrics", "geometry", "--db", str(project), "--trace", "nope"])
    assert missing.exit_code == 1 and "no trace named 'nope'" in missing.output
