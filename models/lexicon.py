"""Cue words for R, E and D: the keyword baseline, and three cheap features for the classifier.

The cues are the surface markers the labeling guide warns about ("judge the function, not the
keyword"), so a lexicon alone is a baseline to beat, not a labeler. Matching is on the step's
first 120 characters, lower-cased, on word boundaries: a cue opening a step says more about the
move *into* the step than the same word buried in a derivation.
"""

from __future__ import annotations

import re

OPENING = 120  # characters of the step that are searched

# Self-reflection: checking, doubting, correcting, re-reading (traces back to earlier nodes).
REFLECTION_CUES = (
    "wait",
    "but wait",
    "hmm",
    "let me check",
    "let me verify",
    "let me double-check",
    "double-check",
    "double check",
    "verify",
    "check",
    "make sure",
    "re-read",
    "reread",
    "recheck",
    "mistake",
    "i made an error",
    "that's not right",
    "that doesn't",
    "is that correct",
    "is this correct",
    "hold on",
    "actually",
    "no,",
    "oops",
    "let me recompute",
    "let me re-examine",
    "confirm",
)
# Self-exploration: proposing another path, a hypothesis or an open question.
EXPLORATION_CUES = (
    "alternatively",
    "another approach",
    "another way",
    "maybe",
    "perhaps",
    "what if",
    "suppose",
    "let's try",
    "let me try",
    "let's consider",
    "let me consider",
    "could we",
    "might be",
    "instead",
    "or maybe",
    "i wonder",
    "one idea",
    "how about",
)
# Deep reasoning: deriving a new node from what came before.
DERIVATION_CUES = (
    "therefore",
    "thus",
    "hence",
    "which means",
    "this means",
    "so we get",
    "it follows",
    "this implies",
    "which implies",
    "implies",
    "consequently",
    "we can conclude",
    "we deduce",
    "so the key",
    "the key insight",
    "because",
)
CUES: dict[str, tuple[str, ...]] = {
    "R": REFLECTION_CUES,
    "E": EXPLORATION_CUES,
    "D": DERIVATION_CUES,
}
PATTERNS: dict[str, re.Pattern[str]] = {
    behavior: re.compile(
        r"(?<![\w-])(" + "|".join(re.escape(c) for c in sorted(cues, key=len, reverse=True)) + ")"
    )
    for behavior, cues in CUES.items()
}
PRECEDENCE = ("R", "E", "D")  # when a step opens with several kinds of cue


def first_cue(text: str) -> tuple[str, int] | None:
    """The behavior whose cue occurs earliest in the step's opening, and where (ties: R, E, D)."""
    opening = text[:OPENING].lower()
    best: tuple[str, int] | None = None
    for behavior in PRECEDENCE:
        match = PATTERNS[behavior].search(opening)
        if match and (best is None or match.start() < best[1]):
            best = (behavior, match.start())
    return best


def keyword_behavior(text: str) -> str:
    """The keyword baseline's label: the first cue's behavior, else N."""
    found = first_cue(text)
    return found[0] if found else "N"


def cue_flags(text: str) -> tuple[float, float, float]:
    """1.0 for each of R, E, D with a cue in the step's opening (features for the classifier)."""
    opening = text[:OPENING].lower()
    return tuple(1.0 if PATTERNS[b].search(opening) else 0.0 for b in PRECEDENCE)  # type: ignore[return-value]
