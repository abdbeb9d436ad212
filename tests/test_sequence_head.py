"""The sequence head (a bidirectional GRU over a trace's step features): the ONNX export against
its PyTorch source on padded batches of traces of mixed lengths, padding that changes nothing,
and the torch-free runtime."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from bondscope.models.sequence import SequenceHead
from bondscope.models.sequence_training import (
    SequenceExample,
    export_onnx,
    fit_sequence,
    pad,
    predict_logits,
)

WIDTH = 12
LENGTHS = [7, 1, 12, 4, 9]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tagger fit for a few epochs on random traces (so its weights are not the init), and its
    ONNX export."""
    rng = np.random.default_rng(0)
    examples = []
    for n in (5, 8, 3, 11, 6, 2):
        x = rng.normal(size=(n, WIDTH)).astype(np.float32)
        y = (x[:, 0] > 0).astype(np.int64) * 2  # N or R, from one column
        y[0] = -1  # a step without gold: context only
        examples.append(SequenceExample(x, y, np.ones(n, np.float32)))
    standardize = np.ones(WIDTH, bool)
    standardize[-2:] = False  # like the hashed opening words
    model = fit_sequence(examples, standardize=standardize, epochs=3, batch_traces=2)
    path = tmp_path_factory.mktemp("sequence") / "head.onnx"
    export_onnx(model, path)
    traces = [rng.normal(size=(n, WIDTH)).astype(np.float32) for n in LENGTHS]
    return model, path, traces


def test_onnx_matches_pytorch_on_padded_batches_of_mixed_lengths(exported):
    model, path, traces = exported
    head = SequenceHead(path)
    x, lengths = pad(traces)
    assert x.shape == (len(LENGTHS), max(LENGTHS), WIDTH)
    with torch.no_grad():
        reference = model(torch.from_numpy(x), torch.from_numpy(lengths)).numpy()
    onnx = head.logits_padded(x, lengths)
    for i, n in enumerate(LENGTHS):
        np.testing.assert_allclose(onnx[i, :n], reference[i, :n], atol=1e-5, rtol=1e-4)


def test_padding_and_batch_company_change_nothing(exported):
    """A trace gets the same logits alone, in any padded batch, from PyTorch and from ONNX."""
    model, path, traces = exported
    head = SequenceHead(path)
    alone = [predict_logits(model, [t])[0] for t in traces]
    batched = predict_logits(model, traces)
    reordered = predict_logits(model, traces[::-1])[::-1]
    one_by_one = head.logits(traces)
    x, lengths = pad(traces)
    padded = head.logits_padded(x, lengths)
    for i, n in enumerate(LENGTHS):
        assert alone[i].shape == (n, 4)
        np.testing.assert_allclose(batched[i], alone[i], atol=1e-5)
        np.testing.assert_allclose(reordered[i], alone[i], atol=1e-5)
        np.testing.assert_allclose(one_by_one[i], alone[i], atol=1e-5)
        np.testing.assert_allclose(padded[i, :n], alone[i], atol=1e-5)
    # the backward direction is real: the first step's logits depend on later steps
    changed = [traces[2].copy()]
    changed[0][-1] += 5.0
    assert not np.allclose(head.logits(changed)[0][0], one_by_one[2][0], atol=1e-4)


def test_probabilities_apply_temperature_and_offsets(exported):
    _, path, traces = exported
    plain = SequenceHead(path).predict_traces(traces[:2])
    shifted = SequenceHead(path, temperature=2.0, offsets=[0, 3, 0, 0]).predict_traces(traces[:2])
    for p, q in zip(plain, shifted, strict=True):
        np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)
        assert (q[:, 1] > p[:, 1]).all()  # the D offset raises P(D) everywhere


def test_sequence_runtime_does_not_import_torch(exported):
    _, path, traces = exported
    np.save(path.with_suffix(".npy"), traces[0])
    script = (
        "import sys\n"
        "import numpy as np\n"
        "from bondscope.models.sequence import SequenceHead\n"
        f"x = np.load({str(path.with_suffix('.npy'))!r})\n"
        f"p = SequenceHead({str(path)!r}).predict_traces([x])[0]\n"
        f"assert p.shape == ({LENGTHS[0]}, 4)\n"
        "print(sorted({'torch', 'transformers', 'sentence_transformers'} & set(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
