"""A trained step classifier: a model folder (`card.json` + `head.npz` or, for a sequence head,
`head.onnx` [+ `encoder/`]) loaded for inference with the torch-free encoder.

The card names the encoder by the sha256 of its weights; loading refuses a head whose encoder
weights or head file do not match the card, because a head over another encoder's features gives
confident nonsense. `encoder/` is present only for a fully fine-tuned model (`--full`); otherwise
the installed all-MiniLM-L6-v2 weights are used.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
from bondscope.domain import Trace
from bondscope.models.encoder import Encoder, Encoding
from bondscope.models.features import trace_features
from bondscope.models.head import Head
from bondscope.models.sequence import SequenceHead
from bondscope.models.weights import default_weights_dir, weights_sha256

CARD = "card.json"
HEAD = "head.npz"
ENCODER = "encoder"
DEFAULT_NAME = "bondscope-minilm"


def user_models_dir() -> Path:
    """Trained models: $XDG_DATA_HOME/bondscope/models (~/.local/share/bondscope/models)."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "bondscope" / "models"


def default_model_dir() -> Path | None:
    """The model shipped in the package (`bondscope.models/default`), if this build has one."""
    folder = Path(str(files("bondscope.models") / "default"))
    return folder if (folder / CARD).is_file() else None


def read_card(folder: Path) -> dict[str, Any]:
    return json.loads((folder / CARD).read_text("utf-8"))


def weights_for(folder: Path) -> Path:
    """The encoder weights a model folder was trained with."""
    return folder / ENCODER if (folder / ENCODER).is_dir() else default_weights_dir()


def step_texts(trace: Trace) -> list[str]:
    return [trace.text[s.start : s.end] for s in trace.steps]


class Featurizer:
    """Feature rows for whole traces: one encoder pass over all their steps, then context."""

    def __init__(self, encoder: Encoder, groups: Sequence[str]) -> None:
        self.encoder = encoder
        self.groups = list(groups)

    def __call__(self, traces: Sequence[Trace]) -> list[np.ndarray]:
        texts = [text for trace in traces for text in step_texts(trace)]
        encoded = self.encoder.encode_all(texts)
        out, at = [], 0
        for trace in traces:
            span = slice(at, at + len(trace.steps))
            part = Encoding(*(array[span] for array in encoded))
            out.append(trace_features(part, texts[span], self.groups))
            at = span.stop
        return out


class StepClassifier:
    """P(N, D, R, E) for every step of whole traces (steps are classified in context)."""

    def __init__(
        self,
        folder: Path,
        *,
        provider: str = "auto",
        variant: str | None = None,
        threads: int | None = None,
        batch_size: int | None = None,
        sort_by_length: bool = True,
    ) -> None:
        self.folder = Path(folder)
        self.card = read_card(self.folder)
        head_path = self.folder / self.card["head"]["file"]
        if hashlib.sha256(head_path.read_bytes()).hexdigest() != self.card["head"]["sha256"]:
            raise ValueError(f"{head_path}: does not match the sha256 in {self.folder / CARD}")
        weights = weights_for(self.folder)
        if weights_sha256(weights) != self.card["encoder"]["weights_sha256"]:
            expected = self.card["encoder"]["weights_sha256"]
            raise ValueError(
                f"{self.folder}: trained on encoder weights {expected} but {weights} holds "
                "different ones; retrain the head (`bondscope train`)"
            )
        self.head: Head | SequenceHead
        if self.card["head"]["kind"] == "gru":
            head = self.card["head"]
            self.head = SequenceHead(head_path, head["temperature"], head["offsets"])
        else:
            self.head = Head.load(head_path)
        encoder = Encoder(
            weights,
            provider=provider,
            variant=variant,
            threads=threads,
            batch_size=batch_size,
            sort_by_length=sort_by_length,
        )
        self.featurize = Featurizer(encoder, self.card["features"])

    @property
    def provider(self) -> str:
        return self.featurize.encoder.provider

    def predict_proba(self, traces: Sequence[Trace]) -> list[np.ndarray]:
        """(steps, 4) probabilities per trace, columns in BEHAVIORS order (N, D, R, E)."""
        return self.head.predict_traces(self.featurize(traces))
