"""The exported encoder against sentence-transformers, the torch-free runtime, the head, and the
full fine-tune path (a couple of CPU steps). The encoder is exported once per test session into a
temporary cache folder (`encoder_cache`), which every classifier test module shares."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from bondscope.domain import BEHAVIORS
from bondscope.models import weights as weights_module
from bondscope.models.encoder import Encoder, available_cores
from bondscope.models.head import Head, fit_head
from bondscope.models.weights import default_weights_dir, encoder_dir, weights_sha256

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TEXTS = [
    "Hi.",
    "Wait, let me check that again: 3 * 4 = 12, so the answer is 12.",
    "So x = 4.",
    "Alternatively, we could factor the polynomial as (x - 1)(x + 2) and read off the roots.",
    "We have a long derivation here " * 60,  # > 256 tokens: truncated like sentence-transformers
    "Therefore the sum of the roots is -b/a.",
]


@pytest.fixture(scope="session")
def encoder_cache(tmp_path_factory):
    """One exported encoder for the whole session (same folder for every module that asks)."""
    folder = tmp_path_factory.getbasetemp() / "bondscope-cache"
    previous = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(folder)
    Encoder(provider="cpu", variant="int8")  # builds fp32 and int8 on first use
    yield folder
    if previous is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = previous


@pytest.fixture(scope="module")
def reference():
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(default_weights_dir()), device="cpu", local_files_only=True)


def middle_layer_means(reference, texts):
    """The masked mean of MIDDLE_LAYER's output, one text at a time (so nothing is padded)."""
    import torch

    transformer = reference[0]
    rows = []
    for text in texts:
        batch = transformer.tokenize([text])
        with torch.no_grad():
            hidden = transformer.auto_model(**batch, output_hidden_states=True).hidden_states
        rows.append(hidden[weights_module.MIDDLE_LAYER][0].mean(0).numpy())
    return np.vstack(rows)


def test_onnx_matches_pytorch_on_padded_batches_of_mixed_lengths(encoder_cache, reference):
    onnx = Encoder(provider="cpu", variant="fp32", batch_size=4)
    expected = reference.encode(TEXTS, normalize_embeddings=True)
    got, middle, lengths = onnx.encode_all(TEXTS)
    assert lengths.max() == 256 and lengths.min() < 10  # really mixed, really truncated
    assert np.abs(got - expected).max() < 1e-5
    assert (got * expected).sum(1).min() > 0.99999
    # The middle layer's mean, from the same padded batches, against unpadded PyTorch.
    assert np.abs(middle - middle_layer_means(reference, TEXTS)).max() < 1e-4
    # A text's embedding does not depend on what it was padded with.
    alone = np.vstack([onnx.encode([t]) for t in TEXTS])
    assert np.abs(alone - got).max() < 1e-5


def cosines(a, b):
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_int8_and_fp16_stay_close_to_fp32(encoder_cache):
    fp32 = Encoder(provider="cpu", variant="fp32").encode_all(TEXTS)
    int8 = Encoder(provider="cpu", variant="int8")
    assert int8.variant == "int8" and int8.provider == "CPUExecutionProvider"
    fp16 = Encoder(provider="cpu", variant="fp16")  # the CUDA default; runs on CPU too
    for variant, floor in ((int8, 0.95), (fp16, 0.999)):
        got = variant.encode_all(TEXTS)
        assert cosines(got.embeddings, fp32.embeddings).min() > floor
        assert cosines(got.middle, fp32.middle).min() > floor


def test_cache_folder_is_keyed_by_weights_and_export_version(encoder_cache, monkeypatch):
    weights = default_weights_dir()
    folder = encoder_dir(weights)
    assert folder.parent == encoder_cache / "bondscope" / "encoders"
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["weights_sha256"] == weights_sha256(weights)
    assert {"model.onnx", "model.int8.onnx", "tokenizer.json"} <= {p.name for p in folder.iterdir()}
    monkeypatch.setattr(weights_module, "EXPORT_VERSION", "changed")
    assert encoder_dir(weights) != folder


def test_cuda_request_fails_loudly_without_a_usable_gpu(encoder_cache):
    auto = Encoder(provider="auto")
    if auto.provider == "CUDAExecutionProvider":
        pytest.skip("a GPU is usable here")
    assert auto.variant == "int8"  # the CPU default
    with pytest.raises(RuntimeError, match="CUDA provider was requested"):
        Encoder(provider="cuda")


def test_runtime_does_not_import_torch(encoder_cache, tmp_path):
    script = (
        "import sys\n"
        "from bondscope.models.encoder import Encoder\n"
        "import bondscope.plugins.onnx_prelabeler\n"
        "e = Encoder(provider='cpu')\n"
        "assert e.encode(['Wait, let me check.', 'So x = 4.']).shape == (2, 384)\n"
        "heavy = {'torch', 'transformers', 'sentence_transformers'} & set(sys.modules)\n"
        "print(sorted(heavy))\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(encoder_cache)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_head_folds_standardization_and_round_trips(tmp_path):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6)) * [1, 10, 100, 1, 1, 1] + [0, 5, -50, 0, 0, 0]
    y = (x[:, 0] > 0).astype(int) + 2 * (x[:, 1] > 5)  # classes 0..3
    head = fit_head(x, y, c=1.0, balanced=False)
    z = (x - x.mean(0)) / x.std(0)
    sk = LogisticRegression(C=1.0, max_iter=2000).fit(z, y)
    assert np.abs(head.predict_proba(x) - sk.predict_proba(z)).max() < 1e-4
    sha = head.save(tmp_path / "head.npz")
    assert len(sha) == 64
    again = Head.load(tmp_path / "head.npz")
    assert np.array_equal(again.predict_proba(x), head.predict_proba(x))


def test_consistency_penalty_stops_the_head_reading_a_cue_column():
    """Column 3 is a "cue word" that gives class 3 (E) away; the pairs are each row minus the
    same row without its cue. Without the penalty the head leans on the cue; with it, removing
    the cue barely moves the logits and the head reads the content columns. At a negligible
    penalty the fit is scikit-learn's balanced, sample-weighted logistic regression."""
    rng = np.random.default_rng(0)
    content = rng.normal(size=(400, 3))
    y = content.argmax(1)
    y[rng.random(400) < 0.25] = 3
    cue = (y == 3).astype(float)
    x = np.column_stack([content, cue])
    pairs = x - np.column_stack([content, np.zeros(400)])  # as it is minus cue removed
    weight = rng.uniform(0.5, 1.5, 400)

    def moved(head):
        return np.abs(head.logits(x) - head.logits(x - pairs)).max()

    plain = fit_head(x, y, c=1.0, sample_weight=weight)
    consistent = fit_head(x, y, c=1.0, sample_weight=weight, pairs=pairs, consistency=100.0)
    assert moved(plain) > 3.0 and moved(consistent) < 0.1
    assert (consistent.predict_proba(x)[:, :3].argmax(1) == content.argmax(1)).mean() > 0.9
    nearly_plain = fit_head(x, y, c=1.0, sample_weight=weight, pairs=pairs, consistency=1e-9)
    assert np.abs(nearly_plain.predict_proba(x) - plain.predict_proba(x)).max() < 5e-3


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_head_keeps_four_columns_when_classes_are_missing():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 3))
    two = fit_head(x, (x[:, 0] > 0).astype(int) * 2, kind="logreg")  # only N and R
    probs = two.predict_proba(x)
    assert probs.shape == (40, 4) and probs[:, [1, 3]].max() < 1e-6
    mlp = fit_head(x, (x[:, 0] > 0).astype(int) * 3, kind="mlp")  # only N and E
    assert mlp.predict_proba(x).shape == (40, 4)
    one = fit_head(x, np.zeros(40, int))
    assert (one.predict_proba(x).argmax(1) == 0).all()


def test_full_finetune_takes_real_steps_and_saves_an_exportable_encoder(encoder_cache, tmp_path):
    from bondscope.models.finetune import finetune

    texts = [t[:200] for t in TEXTS] * 2
    labels = list("NRNEDD") * 2
    info = finetune(
        default_weights_dir(),
        texts,
        labels,
        tmp_path / "enc",
        batch_size=4,
        max_steps=2,
        max_seq_length=32,
    )
    assert info["optimizer_steps"] == 2 and np.isfinite(info["last_loss"])
    saved = tmp_path / "enc"
    assert (saved / "model.safetensors").is_file() and (saved / "tokenizer.json").is_file()
    assert weights_sha256(saved) != weights_sha256(default_weights_dir())


def test_grouped_cross_validation_holds_each_trace_out_once_and_never_trains_on_it():
    from bondscope.services.training import (
        Example,
        cross_validate,
        fold_names,
        rows_fit,
        training_rows,
    )

    rng = np.random.default_rng(2)
    names = [f"t{i:02d}" for i in range(11)]
    folds = fold_names(names, 5, seed=0)
    assert sorted(n for fold in folds for n in fold) == names  # each trace in exactly one fold
    assert fold_names(list(reversed(names)), 5, seed=0) == folds
    examples = []
    for i, name in enumerate(names):
        x = rng.normal(size=(6, 3)).astype(np.float32)
        x[:, 0] = i  # column 0 names the trace, so the fit can see where its rows came from
        gold = ["N", "R", None, "E", "D", None]
        weak = ["D", None, "R", None, None, "E"]  # gold wins on step 0; steps 2 and 5 are weak rows
        examples.append(Example(name, x, gold, weak, ["So x = 4."] * 6))
    extra = [Example("weak-only", np.full((3, 3), 99, np.float32), [None] * 3, ["R"] * 3, [""] * 3)]
    x, y, w = training_rows(examples[:1], weak_weight=0.25)
    assert list(y) == [0, 2, 2, 3, 1, 3] and list(w) == [1, 1, 0.25, 1, 1, 0.25]
    assert len(training_rows(examples[:1], weak_weight=0.0)[1]) == 4  # gold only

    seen: list[set[int]] = []

    def fit(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> Head:
        seen.append(set(x[:, 0].astype(int)))
        return fit_head(x, y, c=1.0)

    result = cross_validate(examples, rows_fit(fit), folds=5, seed=0, weak_weight=0.25, extra=extra)
    for held, trained in zip(result["fold_traces"], seen, strict=True):
        held_ids = {names.index(n) for n in held}
        assert not held_ids & trained and 99 in trained  # no held-out row, weak or gold
        assert trained - {99} == set(range(11)) - held_ids
    assert result["traces"] == 11 and sum(result["pooled"]["support"].values()) == 11 * 4
    assert len(result["model_per_fold_macro_f1"]) == 5 and result["model"]["macro_f1"]["sd"] >= 0


def test_keyword_group_is_the_baselines_label_one_hot():
    from bondscope.models.encoder import Encoding
    from bondscope.models.features import trace_features
    from bondscope.models.lexicon import keyword_behavior

    texts = ["Wait, that is wrong.", "Alternatively, factor it.", "Therefore x = 2.", "x = 2."]
    eye = np.eye(4, 8, dtype=np.float32)
    rows = trace_features(Encoding(eye, eye, np.ones(4)), texts, ["keyword"])
    assert rows.shape == (4, 4) and (rows.sum(1) == 1).all()
    assert [BEHAVIORS[i] for i in rows.argmax(1)] == [keyword_behavior(t) for t in texts]


@pytest.mark.parametrize("threads", [1, 2, None])
def test_int8_embedding_of_a_text_does_not_depend_on_its_batch(encoder_cache, threads):
    """int8 quantizes activations with one range per batch tensor: batched with longer texts (and
    their padding), a text got another embedding. One text per batch makes it exact, also when
    several batches run at once on the CPU (`threads`; None: one per core, the default)."""
    int8 = Encoder(provider="cpu", variant="int8", threads=threads)
    assert int8.batch_size == 1 and int8.workers == (threads or available_cores())
    together = int8.encode_all(TEXTS)
    for i, text in enumerate(TEXTS):
        alone = int8.encode_all([text])
        assert np.array_equal(alone.embeddings[0], together.embeddings[i])
        assert np.array_equal(alone.middle[0], together.middle[i])
    one_at_a_time = Encoder(provider="cpu", variant="int8", threads=1).encode_all(TEXTS)
    assert np.array_equal(one_at_a_time.embeddings, together.embeddings)


@pytest.mark.parametrize("variant", ["fp32", None])
def test_shipped_model_labels_a_trace_the_same_alone_or_with_others(encoder_cache, variant):
    """The shipped head reads only its own trace's features, so a trace gets the same
    probabilities alone or beside others: with the fp32 encoder (batches of 16, padded), and on
    the default CPU path (int8, one text per batch, batches run at once on every core)."""
    from bondscope.domain import Step, Trace
    from bondscope.models.classifier import StepClassifier, default_model_dir

    def trace(name, texts):
        text = "\n\n".join(texts)
        steps, at = [], 0
        for t in texts:
            steps.append(Step(at, at + len(t)))
            at += len(t) + 2
        return Trace(name, text, steps=steps)

    first = trace("a", TEXTS[:4])
    second = trace("b", [TEXTS[5], TEXTS[1], "Hmm, 12 again.", TEXTS[4]])
    classifier = StepClassifier(default_model_dir(), provider="cpu", variant=variant, threads=2)
    assert classifier.featurize.encoder.variant == (variant or "int8")
    assert classifier.card["features"] and classifier.card["head"]["sha256"]
    alone = classifier.predict_proba([first])[0]
    together = classifier.predict_proba([second, first])
    assert alone.shape == (4, 4) and together[1].shape == (4, 4)
    if variant is None:
        assert np.array_equal(together[1], alone)  # exact: no row ever shares a batch
    np.testing.assert_allclose(together[1], alone, atol=1e-4)
    np.testing.assert_allclose(alone.sum(1), 1.0, atol=1e-5)
