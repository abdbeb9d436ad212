"""The cue-word baseline pre-labeler: R, E or D when a step opens with a cue word, else N.

It exists to be beaten: docs/classifier.md compares the ONNX classifier with it on held-out gold
traces. The lexicon (`bondscope.models.lexicon`) is searched in each step's first 120 characters;
the earliest cue wins (ties: R before E before D). Confidences are fixed, honest guesses from how
often such a cue marks its behavior, not calibrated probabilities: 0.6 for a cue, 0.5 for N.
"""

from __future__ import annotations

from collections.abc import Sequence

from bondscope import Trace, hookimpl
from bondscope.hookspecs import StepPrediction
from bondscope.models.lexicon import keyword_behavior

CUE_CONFIDENCE = 0.6
DEFAULT_CONFIDENCE = 0.5


class KeywordPrelabeler:
    name = "keywords"
    description = "cue-word baseline: 'wait', 'let me check' -> R; 'alternatively' -> E; else N"
    version = "1"

    def predict(self, traces: Sequence[Trace]) -> list[list[StepPrediction]]:
        return [[self._one(trace.text[s.start : s.end]) for s in trace.steps] for trace in traces]

    @staticmethod
    def _one(text: str) -> StepPrediction:
        behavior = keyword_behavior(text)
        return StepPrediction(behavior, DEFAULT_CONFIDENCE if behavior == "N" else CUE_CONFIDENCE)


@hookimpl
def register_prelabelers(register) -> None:  # noqa: ANN001 - the host's register callback
    register(KeywordPrelabeler())
