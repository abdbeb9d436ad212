"""The MiniLM + context-head classifier as pre-labelers: the shipped model, and each trained one.

`bondscope-minilm` is the model shipped in `bondscope.models/default` (when the build has one);
every folder under the user models dir (`bondscope train --out NAME` writes there) with a
`card.json` is registered under its own name. The version comes from the model card, so labels
are stored as `model:NAME@VERSION`. Nothing is loaded until the first `predict`: listing plugins
stays instant, and the encoder (exported on first use into the user cache) is built only when
needed. The pre-label services call `set_provider(provider, threads)` before predicting.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bondscope import BEHAVIORS, Trace, hookimpl
from bondscope.hookspecs import StepPrediction
from bondscope.models.classifier import (
    CARD,
    DEFAULT_NAME,
    StepClassifier,
    default_model_dir,
    read_card,
    user_models_dir,
)


class OnnxPrelabeler:
    def __init__(self, name: str, folder: Path) -> None:
        card = read_card(folder)
        self.name = name
        self.folder = folder
        self.card = card
        self.version = str(card["version"])
        metrics = card.get("metrics", {}).get("test", {})
        score = f", held-out macro-F1 {metrics['macro_f1']:.2f}" if "macro_f1" in metrics else ""
        self.description = f"MiniLM encoder (ONNX) + {card['head']['kind']} head{score}"
        self.provider = "auto"
        self.threads: int | None = None
        self._classifier: StepClassifier | None = None

    def set_provider(self, provider: str = "auto", threads: int | None = None) -> None:
        """Choose the ONNX provider (auto, cuda, cpu) and, for the CPU, how many encoder batches
        run at once, one core each (None: all cores; Ray actors sharing a node take one share
        each) before `predict`."""
        if (provider, threads) != (self.provider, self.threads):
            self.provider, self.threads = provider, threads
            self._classifier = None

    @property
    def active_provider(self) -> str | None:
        return self._classifier.provider if self._classifier is not None else None

    def predict(self, traces: Sequence[Trace]) -> list[list[StepPrediction]]:
        if self._classifier is None:
            self._classifier = StepClassifier(
                self.folder, provider=self.provider, threads=self.threads
            )
        out = []
        for probabilities in self._classifier.predict_proba(traces):
            out.append(
                [
                    StepPrediction(
                        BEHAVIORS[int(row.argmax())],
                        float(row.max()),
                        {b: float(p) for b, p in zip(BEHAVIORS, row, strict=True)},
                    )
                    for row in probabilities
                ]
            )
        return out


def available() -> list[OnnxPrelabeler]:
    """The shipped model and every trained model folder, by name (a trained one may not reuse
    the shipped model's name; the plugin manager reports the duplicate)."""
    found = []
    shipped = default_model_dir()
    if shipped is not None:
        found.append(OnnxPrelabeler(DEFAULT_NAME, shipped))
    root = user_models_dir()
    if root.is_dir():
        for folder in sorted(root.iterdir()):
            if (folder / CARD).is_file():
                found.append(OnnxPrelabeler(folder.name, folder))
    return found


@hookimpl
def register_prelabelers(register) -> None:  # noqa: ANN001 - the host's register callback
    for prelabeler in available():
        register(prelabeler)
