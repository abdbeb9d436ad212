"""The cached ONNX encoder is checked against the sha256 recorded when it was built (reliability
issue, finding 11): a modified but valid model changed 37 % of labels under the same
`model:bondscope-minilm@...` name, and a corrupt cache was never rebuilt."""

import json
import shutil

import numpy as np
import pytest
from bondscope.models.encoder import Encoder
from bondscope.models.weights import VARIANT_FILES, default_weights_dir, encoder_dir, file_sha256

from tests.test_classifier import encoder_cache  # noqa: F401 - the session's exported encoder

TEXTS = ["Wait, let me check that again.", "So x = 4.", "Alternatively, factor it."]


@pytest.fixture
def private_cache(encoder_cache, tmp_path, monkeypatch):  # noqa: F811 - the fixture above
    """A copy of the session's cache that this test may damage."""
    built = encoder_dir(default_weights_dir())
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = encoder_dir(default_weights_dir())
    shutil.copytree(built, folder)
    return folder


def test_a_replaced_or_corrupt_cached_model_is_rebuilt(private_cache):
    folder = private_cache
    int8 = folder / VARIANT_FILES["int8"]
    recorded = json.loads((folder / "meta.json").read_text())["sha256"]
    assert recorded[int8.name] == file_sha256(int8)
    expected = Encoder(provider="cpu", variant="int8").encode(TEXTS)

    # A valid ONNX model with other weights, under the cached name: detected, rebuilt.
    shutil.copyfile(folder / VARIANT_FILES["fp32"], int8)
    assert file_sha256(int8) != recorded[int8.name]
    again = Encoder(provider="cpu", variant="int8").encode(TEXTS)
    assert file_sha256(int8) == json.loads((folder / "meta.json").read_text())["sha256"][int8.name]
    np.testing.assert_allclose(again, expected, atol=1e-6)

    # A truncated file (a disk error, a killed copy): rebuilt instead of failing to load.
    int8.write_bytes(int8.read_bytes()[:1000])
    np.testing.assert_allclose(
        Encoder(provider="cpu", variant="int8").encode(TEXTS), expected, atol=1e-6
    )
