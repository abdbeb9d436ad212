"""Cue-word paraphrases (`bondscope eval --perturb cue-synonyms`): the tables stay apart from the
lexicon, a trace's steps keep their places, and the keyword baseline loses what it read."""

import json
import re

from bondscope.cli import cli
from bondscope.domain import Step, Trace
from bondscope.models.lexicon import CUES, first_cue
from bondscope.models.perturbation import (
    DRAWN,
    EVAL_SYNONYMS,
    TRAIN_PARAPHRASES,
    TRAIN_SYNONYMS,
    perturb_text,
    perturb_trace,
)
from bondscope.plugin_manager import Plugins
from bondscope.services.importing import import_paths
from bondscope.store import Store
from click.testing import CliRunner

from tests.helpers import dump, record, write_jsonl


def test_every_lexicon_cue_has_two_different_paraphrases_outside_the_lexicon():
    for cues in CUES.values():
        for cue in cues:
            assert cue in EVAL_SYNONYMS and cue in TRAIN_SYNONYMS, cue
    for cue in EVAL_SYNONYMS:
        assert EVAL_SYNONYMS[cue] != TRAIN_SYNONYMS[cue], cue
        for paraphrase in (EVAL_SYNONYMS[cue], TRAIN_SYNONYMS[cue]):
            for text in (paraphrase, paraphrase.capitalize() + ", so x = 2."):
                assert first_cue(text) is None, (cue, paraphrase)
    # evaluation paraphrases are never training ones, so augmentation cannot learn them
    assert not set(EVAL_SYNONYMS.values()) & set(TRAIN_SYNONYMS.values())


FUNCTION_WORDS = frozenset(
    {"a", "an", "the", "on", "of", "to", "in", "it", "it's", "is", "be", "we", "i", "me", "us"}
    | {"let", "let's", "that", "this", "so", "but", "or", "and", "as", "at", "with", "for"}
    | {"which", "there", "some", "if", "are", "may", "about"}
)


def words(phrase):
    return set(re.findall(r"[\w'-]+", phrase.lower())) - FUNCTION_WORDS


def test_drawn_training_paraphrases_share_no_word_with_any_evaluation_paraphrase():
    """The training paraphrases beyond the first (`cue-paraphrases-train`) are held apart from
    the whole evaluation table, word by word, so no draw can teach an evaluation phrase."""
    evaluation_words = set().union(*(words(p) for p in EVAL_SYNONYMS.values()))
    for cue, choices in TRAIN_PARAPHRASES.items():
        assert choices[0] == TRAIN_SYNONYMS[cue]
        for paraphrase in choices[1:]:
            assert not words(paraphrase) & evaluation_words, (cue, paraphrase)
            for text in (paraphrase, paraphrase.capitalize() + ", so x = 2."):
                assert first_cue(text) is None, (cue, paraphrase)


def test_cue_words_deleted_or_drawn_among_training_paraphrases():
    text = "Hmm, wait. Maybe x = 2 because y = 3."
    assert perturb_text(text, "cue-removed-train") == "X = 2 y = 3."
    draws = {perturb_text(text, DRAWN, draw) for draw in range(6)}
    assert len(draws) > 1  # different draws, different copies
    assert perturb_text(text, DRAWN, 3) == perturb_text(text, DRAWN, 3)  # and reproducible
    for copy in draws:
        assert first_cue(copy) is None and copy.endswith(" y = 3.")


def test_perturbed_text_keeps_case_words_and_everything_else():
    text = "Wait, let me check. Maybe a MISTAKE? Checking again; therefore x=2 (no, 3)."
    assert perturb_text(text) == (
        "One moment, let me look again. Possibly a SLIP? Inspecting again; "
        "as a result x=2 (nope, 3)."
    )
    assert perturb_text(text, "cue-synonyms-train").startswith("Hang on a sec, let me go over it.")
    assert perturb_text("awaited checkpoints") == "awaited checkpoints"  # whole words only


def test_perturbed_trace_keeps_its_steps_and_the_text_between_them():
    text = "<think>\nWait, x = 2.\n\nSo x = 2.\n\nAlternatively, y.</think> tail"
    steps = [Step(8, 20), Step(22, 31), Step(33, 50)]
    trace = Trace("t", text, steps=steps)
    out = perturb_trace(trace)
    bodies = [out.text[s.start : s.end] for s in out.steps]
    assert bodies == ["One moment, x = 2.", "So x = 2.", "On another track, y."]
    assert out.text.startswith("<think>\n") and out.text.endswith("</think> tail")
    assert trace.text == text  # the original is untouched


def project(tmp_path):
    """Gold is what the keyword baseline says, so as is it scores 1.0 on every class."""
    text = "Wait, let me check: 2 + 2 = 4.\n\nAlternatively, count.\n\nTherefore 4.\n\nSo 4."
    spans, at = [], 0
    for part in text.split("\n\n"):
        spans.append({"start": at, "end": at + len(part)})
        at += len(part) + 2
    gold = [
        {"step": i, "behavior": b, "annotator": "alice", "confidence": None}
        for i, b in enumerate("REDN")
    ]
    path = write_jsonl(
        tmp_path / "t.jsonl", [record(text=text, steps=spans, labels=gold, bonds=[])]
    )
    db = tmp_path / "p.db"
    with Store(db) as store:
        import_paths(store, Plugins(load_entry_points=False), [path])
    return db


def test_eval_perturb_reports_the_drop_per_class_and_writes_nothing(tmp_path):
    db = project(tmp_path)
    before = dump(db)
    args = ["eval", "--db", str(db), "--gold", "alice", "--pred", "model:keywords@1"]
    result = CliRunner().invoke(cli, [*args, "--perturb", "cue-synonyms", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["steps"], data["changed_steps"], data["flipped"]) == (4, 3, 3)
    assert data["original"]["macro_f1"] == 1.0
    assert data["drop"] == {
        "macro": data["original"]["macro_f1"] - data["perturbed"]["macro_f1"],
        "N": 1.0 - data["perturbed"]["per_class"]["N"]["f1"],
        "D": 1.0,
        "R": 1.0,
        "E": 1.0,
    }
    text = CliRunner().invoke(cli, [*args[:-1], "keywords", "--perturb", "cue-synonyms"])
    assert text.exit_code == 0 and "F1 R\t1\t0\t1" in text.output
    assert dump(db) == before


def test_eval_perturb_refuses_an_unknown_or_other_version_of_a_prelabeler(tmp_path):
    db = project(tmp_path)
    base = ["eval", "--db", str(db), "--gold", "alice", "--perturb", "cue-synonyms", "--pred"]
    wrong = CliRunner().invoke(cli, [*base, "model:keywords@7"])
    assert wrong.exit_code == 2 and "version 1, not 7" in wrong.output
    unknown = CliRunner().invoke(cli, [*base, "model:nope@1"])
    assert unknown.exit_code == 2 and "unknown prelabeler 'nope'" in unknown.output
    nobody = CliRunner().invoke(cli, [*base[:4], "bob", *base[5:], "keywords"])
    assert nobody.exit_code == 2 and "no labels by bob" in nobody.output
