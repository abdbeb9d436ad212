"""The context feature groups and the head's per-group weighting (no encoder needed)."""

import os
import subprocess
import sys

import numpy as np
from bondscope.domain import BEHAVIORS
from bondscope.models.encoder import Encoding
from bondscope.models.features import (
    DEFAULT_GROUPS,
    OPENING_BUCKETS,
    column_scaling,
    group_width,
    opening_hashes,
    trace_features,
)
from bondscope.models.head import fit_head
from bondscope.models.lexicon import keyword_behavior

TRACE = [
    "First, 3 * 4 = 12 and the total of the three boxes is 36.",  # 0
    "So each box holds 12 apples.",  # 1
    "Now the new boxes: 5 boxes hold 60 apples in all.",  # 2
    "Wait, let me check: 3 * 4 = 12 and the total of the three boxes is 36. Right?",  # 3
    "Alternatively, count the apples one box at a time.",  # 4
]


def encoding(n, dim=8):
    """Stand-in encoder output: distinct unit rows, a different middle layer, 10 tokens each."""
    eye = np.eye(n, dim, dtype=np.float32)
    return Encoding(eye, 2 * eye[:, ::-1], np.full(n, 10))


def features(groups, texts=TRACE):
    return trace_features(encoding(len(texts)), texts, groups)


def test_every_group_has_the_width_it_declares_and_rows_are_finite():
    rows = features(DEFAULT_GROUPS)
    assert rows.shape == (5, sum(group_width(g, 8) for g in DEFAULT_GROUPS))
    assert rows.dtype == np.float32 and np.isfinite(rows).all()
    assert trace_features(encoding(0), [], DEFAULT_GROUPS).shape[0] == 0
    # the step and middle groups are the encoder's two outputs, as they are
    step, middle = features(["step"]), features(["middle"])
    assert (step == encoding(5).embeddings).all() and (middle == encoding(5).middle).all()


def test_overlap_sees_a_check_that_repeats_an_earlier_step():
    rows = features(["overlap"])
    seen_numbers, with_previous, _, seen_trigrams, best_trigrams, previous_trigrams, question = (
        rows.T
    )
    # step 3 repeats step 0 (before its previous step) word for word, numbers included
    assert seen_numbers[3] == 1.0 and best_trigrams[3] > 0.6 and seen_trigrams[3] > 0.6
    assert with_previous[3] == 0.0 and previous_trigrams[3] == 0.0  # nothing from step 2
    assert question.tolist() == [0, 0, 0, 1, 0]
    # step 1 repeats only its previous step's "12": it counts there, not as seen before
    assert (seen_numbers[1], with_previous[1]) == (0.0, 1.0)
    assert seen_numbers[2] == 0.0 and best_trigrams[2] == 0.0  # new numbers, new words


def test_cue_context_is_the_neighbours_keyword_labels_and_the_last_r_cue():
    rows = features(["cue_context"])
    keywords = [BEHAVIORS.index(keyword_behavior(t)) for t in TRACE]
    assert keywords[3] == BEHAVIORS.index("R") and keywords[4] == BEHAVIORS.index("E")
    for i in range(5):
        previous, following = rows[i, :4], rows[i, 4:8]
        assert previous.sum() == (i > 0) and following.sum() == (i < 4)
        if i:
            assert previous.argmax() == keywords[i - 1]
        if i < 4:
            assert following.argmax() == keywords[i + 1]
    assert rows[:, 8].tolist() == [0, 0, 0, 0, 1.0]  # one step after the "Wait" of step 3


def test_opening_hashes_read_only_the_first_words_and_do_not_depend_on_the_process():
    long = "Wait let me check " + "filler " * 40 + "alternatively"
    rows = opening_hashes([long, "Wait let me check", ""])
    assert rows.shape == (3, OPENING_BUCKETS)
    assert np.allclose(np.linalg.norm(rows[:2], axis=1), 1.0) and not rows[2].any()
    # "alternatively" is word 59: outside the opening, so it adds no bucket of its own
    assert set(np.flatnonzero(rows[1])) <= set(np.flatnonzero(rows[0]))
    script = (
        "from bondscope.models.features import opening_hashes; import numpy as np; "
        "print(np.flatnonzero(opening_hashes(['Wait, let me check that.'])[0]).tolist())"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(runs) == 1  # a saved head needs the same buckets in every process


def test_head_folds_group_weights_and_unstandardized_columns_into_its_weights():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    x = np.hstack([rng.normal(size=(200, 3)) * [1, 10, 100], rng.random((200, 2)) < 0.2])
    y = (x[:, 0] > 0).astype(int) + 2 * (x[:, 3] > 0)
    weight = np.array([1, 1, 10, 40, 40], np.float32)
    standardize = np.array([True, True, True, False, False])
    head = fit_head(x, y, c=0.1, balanced=False, column_weight=weight, standardize=standardize)
    z = x.copy()
    z[:, :3] = (x[:, :3] - x[:, :3].mean(0)) / x[:, :3].std(0)
    z *= weight
    sk = LogisticRegression(C=0.1, max_iter=2000).fit(z, y)
    assert np.abs(head.predict_proba(x) - sk.predict_proba(z)).max() < 1e-3  # solver tolerance


def test_column_scaling_follows_the_groups():
    weight, standardize = column_scaling(["step", "keyword", "opening"], 8)
    assert weight.tolist() == [1.0] * 8 + [10.0] * 4 + [40.0] * OPENING_BUCKETS
    assert standardize.tolist() == [True] * 12 + [False] * OPENING_BUCKETS
