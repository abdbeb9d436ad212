"""Cue words swapped for paraphrases: a test of whether a model reads behavior or keywords.

The labeling guide says to judge a step's function, not its keywords; a model that labels
"Wait, ..." R only because of "wait" will fail on a teacher that says "One moment, ...". So
every cue phrase of the lexicon (`bondscope.models.lexicon`), with its inflections, is replaced
by a paraphrase that no lexicon pattern matches, and the model is scored again
(`bondscope eval --perturb cue-synonyms`).

Two disjoint paraphrase tables, both kept here and apart from the lexicon the features use:

- `EVAL_SYNONYMS` (`cue-synonyms`): what evaluation uses. No model may train on it.
- `TRAIN_SYNONYMS` (`cue-synonyms-train`): what training augmentation uses (paraphrased copies
  of the gold traces), so that a model scored under `cue-synonyms` has never seen its
  replacement words.

A third training perturbation, `cue-removed-train`, deletes every cue phrase (with the comma or
colon after it) instead of paraphrasing it: "Alternatively, we could factor it" -> "We could
factor it". A paraphrase teaches the model other cue words; a deletion teaches it that the
behavior is there without any.

Matching is case-insensitive on whole words, longest phrase first, anywhere in the step (not
only the lexicon's first 120 characters); the replacement keeps a leading capital ("Wait," ->
"One moment,"). Whitespace and all other text are unchanged.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from dataclasses import replace

from bondscope.domain import Step, Trace

# cue (lower case) -> (evaluation paraphrase, training paraphrase)
_TABLE: dict[str, tuple[str, str]] = {
    # self-reflection
    "but wait": ("but one moment", "but hang on a sec"),
    "wait": ("one moment", "hang on a sec"),
    "hmm": ("uh", "er"),
    "hmmm": ("uh", "er"),
    "let me check": ("let me look again", "let me go over it"),
    "let me verify": ("let me test that", "let me validate"),
    "let me double-check": ("let me look twice", "let me go over it twice"),
    "let me double check": ("let me look twice", "let me go over it twice"),
    "double-check": ("re-inspect", "cross-examine"),
    "double check": ("re-inspect", "cross-examine"),
    "double-checking": ("re-inspecting", "cross-examining"),
    "verify": ("validate", "test"),
    "verifies": ("validates", "tests"),
    "verified": ("validated", "tested"),
    "verifying": ("validating", "testing"),
    "check": ("inspect", "examine"),
    "checks": ("inspects", "examines"),
    "checked": ("inspected", "examined"),
    "checking": ("inspecting", "examining"),
    "recheck": ("re-inspect", "reexamine"),
    "rechecking": ("re-inspecting", "reexamining"),
    "make sure": ("be certain", "ensure"),
    "re-read": ("read again", "go back over"),
    "reread": ("read again", "go back over"),
    "rereading": ("reading again", "going back over"),
    "mistake": ("slip", "blunder"),
    "mistakes": ("slips", "blunders"),
    "i made an error": ("i slipped up", "i got that wrong"),
    "that's not right": ("that's off", "that's wrong"),
    "that doesn't": ("that does not", "this does not"),
    "is that correct": ("is that so", "does that hold"),
    "is this correct": ("is this so", "does this hold"),
    "hold on": ("one second", "just a sec"),
    "actually": ("in fact", "really"),
    "no,": ("nope,", "nah,"),
    "oops": ("argh", "yikes"),
    "let me recompute": ("let me redo the arithmetic", "let me compute again"),
    "let me re-examine": ("let me look back at", "let me go back to"),
    "confirm": ("corroborate", "establish"),
    "confirms": ("corroborates", "establishes"),
    "confirmed": ("corroborated", "established"),
    "confirming": ("corroborating", "establishing"),
    # self-exploration
    "alternatively": ("on another track", "from a different angle"),
    "alternative": ("different", "other"),
    "another approach": ("a different route", "a second method"),
    "another way": ("a different path", "a second method"),
    "maybe": ("possibly", "it could be that"),
    "perhaps": ("possibly", "conceivably"),
    "what if": ("imagine that", "in the case that"),
    "suppose": ("assume", "posit"),
    "supposing": ("assuming", "positing"),
    "let's try": ("let's attempt", "let's give it a go with"),
    "let me try": ("let me attempt", "let me give it a go with"),
    "let's consider": ("let's look at", "let's examine"),
    "let me consider": ("let me look at", "let me examine"),
    "could we": ("can we", "is it possible to"),
    "might be": ("could be", "may be"),
    "instead": ("in its place", "rather"),
    "or maybe": ("or possibly", "or conceivably"),
    "i wonder": ("i'm curious", "it's worth asking"),
    "one idea": ("a thought", "a notion"),
    "how about": ("what about", "try"),
    # deep reasoning
    "therefore": ("as a result", "for that reason"),
    "thus": ("accordingly", "so then"),
    "hence": ("for this reason", "as such"),
    "which means": ("which tells us", "meaning"),
    "this means": ("this tells us", "this shows"),
    "so we get": ("so we obtain", "giving us"),
    "it follows": ("it results", "we then have"),
    "this implies": ("this gives", "this entails"),
    "which implies": ("which gives", "which entails"),
    "implies": ("entails", "yields"),
    "consequently": ("as a consequence", "in consequence"),
    "we can conclude": ("we can infer", "we may state"),
    "we deduce": ("we infer", "we derive"),
    "so the key": ("so the crux", "so the heart of it"),
    "the key insight": ("the crux", "the central observation"),
    "because": ("since", "as"),
}
# More training paraphrases for the frequent cues, drawn per occurrence by `cue-paraphrases-train`
# (a model that saw one paraphrase per cue learns that phrase; many teach what they share). None
# shares a word other than a function word with any evaluation paraphrase (a test checks it).
_MORE_TRAINING: dict[str, tuple[str, ...]] = {
    # self-reflection
    "but wait": ("but hold it", "but pause", "but stop there", "but hang about"),
    "wait": ("hold it", "pause", "stop there", "hang about", "just a sec"),
    "hmm": ("um", "huh", "mm", "well"),
    "hmmm": ("umm", "hm", "mmm"),
    "let me check": ("let me review it", "let me audit that", "let me scrutinize it"),
    "let me verify": ("let me audit it", "let me scrutinize that", "let me review that"),
    "let me double-check": ("let me review it once more", "let me rerun it"),
    "let me double check": ("let me review it once more", "let me rerun it"),
    "double-check": ("review once more", "rerun"),
    "double check": ("review once more", "rerun"),
    "double-checking": ("reviewing once more", "rerunning"),
    "verify": ("audit", "scrutinize", "review"),
    "verifies": ("audits", "scrutinizes"),
    "verified": ("audited", "scrutinized"),
    "verifying": ("auditing", "scrutinizing"),
    "check": ("review", "audit", "scrutinize"),
    "checks": ("reviews", "audits"),
    "checked": ("reviewed", "audited"),
    "checking": ("reviewing", "auditing"),
    "make sure": ("guarantee", "be sure"),
    "actually": ("truly", "as it turns out", "in reality"),
    "hold on": ("hang about", "stop a sec"),
    "no,": ("nay,", "wrong,"),
    "mistake": ("error", "goof", "misstep"),
    "mistakes": ("errors", "goofs", "missteps"),
    "oops": ("whoops", "dang"),
    "confirm": ("ascertain", "substantiate"),
    "confirms": ("ascertains", "substantiates"),
    "confirmed": ("ascertained", "substantiated"),
    "confirming": ("ascertaining", "substantiating"),
    # self-exploration
    "alternatively": (
        "as an option",
        "otherwise",
        "switching methods",
        "on the other hand",
        "conversely",
        "as a substitute",
    ),
    "alternative": ("substitute", "rival", "competing"),
    "another approach": ("a new method", "a fresh strategy", "some other technique"),
    "another way": ("a new method", "a fresh strategy", "some other technique"),
    "maybe": ("conceivably", "it's plausible that", "potentially", "probably"),
    "perhaps": ("potentially", "it may be that", "plausibly"),
    "what if": ("consider the case where", "picture the case that", "hypothetically, if"),
    "suppose": ("hypothesize", "presume", "stipulate"),
    "supposing": ("hypothesizing", "presuming"),
    "let's try": ("let's experiment with", "let's explore", "let's play with"),
    "let me try": ("let me experiment with", "let me explore", "let me play with"),
    "let's consider": ("let's weigh", "let's think about", "let's study"),
    "let me consider": ("let me weigh", "let me think about", "let me study"),
    "could we": ("would it work to", "are we able to"),
    "might be": ("may well be", "is plausibly"),
    "instead": ("as a replacement", "in lieu of that"),
    "or maybe": ("or potentially", "or plausibly"),
    "i wonder": ("i ask myself", "it makes me ask"),
    "one idea": ("a proposal", "a suggestion"),
    "how about": ("shall we use", "let us use"),
    # deep reasoning
    "therefore": ("ergo", "from this", "in turn"),
    "thus": ("in this way", "that way"),
    "hence": ("whence", "from which"),
    "which means": ("which shows", "which indicates"),
    "this means": ("this indicates", "this establishes"),
    "so we get": ("and we find", "we arrive at"),
    "it follows": ("we find", "we arrive at"),
    "this implies": ("this indicates", "this forces"),
    "which implies": ("which forces", "which indicates"),
    "implies": ("forces", "indicates"),
    "consequently": ("in turn", "ergo"),
    "because": ("given that", "seeing that", "inasmuch as"),
}
EVAL_SYNONYMS: dict[str, str] = {cue: pair[0] for cue, pair in _TABLE.items()}
TRAIN_SYNONYMS: dict[str, str] = {cue: pair[1] for cue, pair in _TABLE.items()}
TRAIN_PARAPHRASES: dict[str, tuple[str, ...]] = {
    cue: (pair[1], *_MORE_TRAINING.get(cue, ())) for cue, pair in _TABLE.items()
}
REMOVED: dict[str, str] = dict.fromkeys(_TABLE, "")
PERTURBATIONS: dict[str, dict[str, str]] = {
    "cue-synonyms": EVAL_SYNONYMS,
    "cue-synonyms-train": TRAIN_SYNONYMS,
    "cue-removed-train": REMOVED,
    # one of TRAIN_PARAPHRASES per occurrence, drawn by a hash of (draw, text, place)
    "cue-paraphrases-train": TRAIN_SYNONYMS,
}
DRAWN = "cue-paraphrases-train"
TRAINING_PERTURBATIONS = ("cue-synonyms-train", "cue-removed-train", DRAWN)


def _pattern(table: Mapping[str, str]) -> re.Pattern[str]:
    cues = sorted(table, key=len, reverse=True)
    # "no," ends in punctuation, so the trailing boundary is "not followed by a word character".
    # A deleted cue takes the punctuation and spaces after it along ("Wait, so" -> "So").
    after = r"[,;:.!]?\s*" if not any(table.values()) else ""
    return re.compile(
        r"(?<![\w-])(" + "|".join(re.escape(c) for c in cues) + r")(?!\w)" + after, re.I
    )


_PATTERNS = {name: _pattern(table) for name, table in PERTURBATIONS.items()}


def perturb_text(text: str, perturbation: str = "cue-synonyms", draw: int = 0) -> str:
    """The text with every cue phrase replaced by its paraphrase, or deleted (module doc).

    `cue-paraphrases-train` picks each occurrence's paraphrase among TRAIN_PARAPHRASES by a
    crc32 of (`draw`, the text, the place): the same for the same arguments in every process,
    and different draws give different copies of a trace.
    """
    if perturbation not in PERTURBATIONS:
        known = ", ".join(PERTURBATIONS)
        raise ValueError(f"unknown perturbation {perturbation!r} (one of {known})")
    table = PERTURBATIONS[perturbation]
    parts: list[str] = []
    at = 0
    capitalize = False  # a deleted cue opened a sentence: so does what follows it
    for match in _PATTERNS[perturbation].finditer(text):
        parts.append(_capitalized(text[at : match.start()], capitalize))
        found = match.group(1)
        out = table[found.lower()]
        if perturbation == DRAWN:
            choices = TRAIN_PARAPHRASES[found.lower()]
            key = f"{draw}\x00{match.start()}\x00{text}".encode()
            out = choices[zlib.crc32(key) % len(choices)]
        capitalize = capitalize and not text[at : match.start()].strip()
        if not out:
            capitalize = capitalize or found[0].isupper()
        elif found.isupper() and len(found) > 1:
            parts.append(out.upper())
        else:
            parts.append(out[0].upper() + out[1:] if found[0].isupper() else out)
        at = match.end()
    parts.append(_capitalized(text[at:], capitalize))
    return "".join(parts)


def _capitalized(text: str, capitalize: bool) -> str:
    return text[:1].upper() + text[1:] if capitalize else text


def perturb_trace(trace: Trace, perturbation: str = "cue-synonyms", draw: int = 0) -> Trace:
    """A copy of the trace whose steps' texts are perturbed; the step spans follow the new text.

    Text between and around steps is kept as it is; labels and bonds refer to step indices, so
    they stay valid.
    """
    parts: list[str] = []
    steps: list[Step] = []
    at = 0
    for step in trace.steps or []:
        parts.append(trace.text[at : step.start])
        begin = sum(len(p) for p in parts)
        body = perturb_text(trace.text[step.start : step.end], perturbation, draw)
        parts.append(body)
        steps.append(replace(step, start=begin, end=begin + len(body)))
        at = step.end
    parts.append(trace.text[at:])
    return replace(trace, text="".join(parts), steps=steps)
