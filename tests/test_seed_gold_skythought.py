"""The round-3 seed gold set (SkyThought, a QwQ-distilled teacher family) keeps its README's
promises: whole traces, every step labeled, R targets, the default segmentation, texts unchanged."""

import json
from collections import Counter
from pathlib import Path

import pytest
from bondscope.plugin_manager import Plugins
from bondscope.services.importing import import_paths
from bondscope.store import Store

from tests.helpers import SHARED_DATA

SEED = Path(__file__).resolve().parents[1] / "resources" / "seed" / "seed-gold-skythought.jsonl"
RECORDS = [json.loads(line) for line in SEED.open(encoding="utf-8")]
SKYTHOUGHT = SHARED_DATA / "skythought"
FIRST_READERS = {"reader-l", "reader-m"}
SECOND_READER = "reader-n"
BEGIN, END = "<|begin_of_thought|>", "<|end_of_thought|>"


def test_size_both_files_and_every_step_labeled_once_by_a_first_reader():
    assert len(RECORDS) >= 40
    assert sum(len(r["steps"]) for r in RECORDS) >= 4000
    assert Counter(r["meta"]["file"] for r in RECORDS).keys() == {
        "sky-t1-math-correct-5k-14b.amc23.jsonl",
        "sky-t1-math-wrong-5k-14b.amc23.jsonl",
    }
    for record in RECORDS:
        first = [label["step"] for label in record["labels"] if label["annotator"] in FIRST_READERS]
        assert sorted(first) == list(range(len(record["steps"]))), record["id"]
        assert {label["annotator"] for label in record["labels"]} <= FIRST_READERS | {SECOND_READER}


def test_a_blind_second_reader_covers_at_least_a_tenth_of_the_steps():
    second = sum(1 for r in RECORDS for label in r["labels"] if label["annotator"] == SECOND_READER)
    assert second >= 0.10 * sum(len(r["steps"]) for r in RECORDS)


def test_every_reflection_has_an_earlier_target_by_the_same_reader():
    for record in RECORDS:
        bonds = {(b["from"], b["annotator"]): b for b in record["bonds"]}
        assert len(bonds) == len(record["bonds"])
        reflections = [lb for lb in record["labels"] if lb["behavior"] == "R"]
        assert len(reflections) == len(record["bonds"])
        for label in reflections:
            bond = bonds[(label["step"], label["annotator"])]
            assert bond["type"] == "hydrogen" and 0 <= bond["to"] < label["step"]


def test_steps_are_the_default_segmentation_of_the_thinking_part():
    paragraph = Plugins(load_entry_points=False).get("segmenter", "paragraph")
    for record in RECORDS:
        text = record["text"]
        begin, end = text.find(BEGIN), text.find(END)
        region = (begin + len(BEGIN), end if end != -1 else len(text))
        spans = [(s.start, s.end) for s in paragraph.segment(text, region, None)]
        assert spans == [(s["start"], s["end"]) for s in record["steps"]], record["id"]
        assert all(BEGIN not in text[a:b] and "<|" not in text[a:b] for a, b in spans)


@pytest.mark.skipif(not SKYTHOUGHT.is_dir(), reason="needs ../shared/data")
def test_texts_and_correctness_are_the_source_files():
    sources = {}
    for path in SKYTHOUGHT.glob("*.jsonl"):
        for line in path.open(encoding="utf-8"):
            row = json.loads(line)
            sources[(path.name, row["idx"])] = row
    for record in RECORDS:
        row = sources[(record["meta"]["file"], record["meta"]["idx"])]
        assert row["code"][0] == record["text"]
        assert row["question"] == record["question"]
        assert record["meta"]["correct"] is bool(row["score"][0])


def test_imports_as_bondscope_jsonl(tmp_path):
    with Store(tmp_path / "seed.db") as store:
        report = import_paths(store, Plugins(load_entry_points=False), [SEED])
        assert report.traces == len(RECORDS)
        labels = store.count("SELECT COUNT(*) FROM current_labels")
        bonds = store.count("SELECT COUNT(*) FROM current_bonds")
    assert labels == sum(len(r["labels"]) for r in RECORDS)
    assert bonds == sum(len(r["bonds"]) for r in RECORDS)
