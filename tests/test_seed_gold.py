"""The shipped seed gold set keeps the promises its README makes."""

import json
from collections import Counter
from pathlib import Path

import pytest
from bondscope.plugin_manager import Plugins
from bondscope.services.importing import import_paths, segment_trace
from bondscope.store import Store

from tests.helpers import THOUGHT_ANCHORS

SEED = Path(__file__).resolve().parents[1] / "resources" / "seed"
RECORDS = [json.loads(line) for line in (SEED / "seed-gold.jsonl").open(encoding="utf-8")]


def test_size_spread_over_every_model_and_readers_only():
    steps = sum(len(r["steps"]) for r in RECORDS)
    labeled = {(r["id"], label["step"]) for r in RECORDS for label in r["labels"]}
    assert steps == len(labeled) >= 1500  # every step has a behavior
    per_model = Counter(r["model"] for r in RECORDS)
    assert per_model["deepseek-r1-distill-llama-8b"] >= 3
    assert per_model["deepseek-r1-distill-qwen-14b"] >= 3
    assert per_model["deepseek-r1"] >= 1 and per_model["qwq-32b"] >= 1
    assert {label["annotator"] for r in RECORDS for label in r["labels"]} <= {
        f"reader-{c}" for c in "abcdefghijk"
    }
    assert (SEED / "LICENSE.md").is_file() and "MIT" in (SEED / "LICENSE.md").read_text("utf-8")


def test_every_reflection_has_an_earlier_target_by_the_same_reader():
    for record in RECORDS:
        bonds = {(b["from"], b["annotator"]): b for b in record["bonds"]}
        for label in record["labels"]:
            if label["behavior"] == "R":
                bond = bonds[(label["step"], label["annotator"])]
                assert bond["type"] == "hydrogen" and 0 <= bond["to"] < label["step"]


def test_steps_are_the_default_segmentation_of_the_unchanged_text():
    plugins = Plugins(load_entry_points=False)
    paragraph = plugins.get("segmenter", "paragraph")
    for record in RECORDS:
        spans = [(s.start, s.end) for s in segment_trace(plugins, paragraph, record["text"], None)]
        assert spans == [(s["start"], s["end"]) for s in record["steps"]], record["id"]
        source = THOUGHT_ANCHORS / record["id"] / "base_solution.json"
        if source.is_file():  # the shared data is beside the checkout
            assert json.loads(source.read_text("utf-8"))["solution"] == record["text"]


def test_imports_as_bondscope_jsonl(tmp_path):
    with Store(tmp_path / "seed.db") as store:
        report = import_paths(store, Plugins(load_entry_points=False), [SEED / "seed-gold.jsonl"])
        assert report.traces == len(RECORDS)
        labels = store.count("SELECT COUNT(*) FROM current_labels")
    assert labels == sum(len(r["labels"]) for r in RECORDS)


@pytest.mark.skipif(not THOUGHT_ANCHORS.is_dir(), reason="needs ../shared/data")
def test_covers_every_thought_anchors_trace():
    folders = {
        str(p.parent.relative_to(THOUGHT_ANCHORS))
        for p in THOUGHT_ANCHORS.rglob("base_solution.json")
    }
    assert {r["id"] for r in RECORDS} == folders
