"""The evaluation service on hand-built projects, including gold and predictions on different
segmentations; the expected figures are worked out by hand in each test."""

import json

import pytest
from bondscope import hookimpl
from bondscope.cli import cli
from bondscope.hookspecs import StepPrediction
from bondscope.plugin_manager import Plugins
from bondscope.services.evaluation import evaluate, expected_calibration_error, score
from bondscope.services.importing import import_paths
from bondscope.services.prelabeling import prelabel
from bondscope.services.segmenting import resegment
from bondscope.store import Store
from click.testing import CliRunner

from tests.helpers import record, write_jsonl


def labels(annotator, behaviors, confidences=None):
    return [
        {
            "step": i,
            "behavior": b,
            "annotator": annotator,
            "confidence": None if confidences is None else confidences[i],
        }
        for i, b in enumerate(behaviors)
    ]


def five_step_project(tmp_path):
    """Gold N N D R E; predictions N D D R N with confidences .9 .6 .8 .7 .4."""
    text = "aaaa\n\nbbbb\n\ncccc\n\ndddd\n\neeee"
    steps = [{"start": 6 * i, "end": 6 * i + 4} for i in range(5)]
    rec = record(
        text=text,
        steps=steps,
        labels=labels("gold", "NNDRE") + labels("model:p@1", "NDDRN", [0.9, 0.6, 0.8, 0.7, 0.4]),
        bonds=[],
    )
    db = tmp_path / "p.db"
    with Store(db) as store:
        import_paths(
            store, Plugins(load_entry_points=False), [write_jsonl(tmp_path / "a.jsonl", [rec])]
        )
    return db


def test_scores_on_one_segmentation(tmp_path):
    with Store(five_step_project(tmp_path)) as store:
        report = evaluate(store, "gold", "model:p@1")
    assert (report.traces, report.matched, report.unmatched) == (1, 5, 0)
    assert report.accuracy == pytest.approx(3 / 5)
    assert report.confusion == [[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0]]
    assert report.support == {"N": 2, "D": 1, "R": 1, "E": 1}
    n, d, r, e = (report.per_class[b] for b in "NDRE")
    assert (n["precision"], n["recall"]) == (0.5, 0.5)
    assert (d["precision"], d["recall"], d["f1"]) == (0.5, 1.0, pytest.approx(2 / 3))
    assert r["f1"] == 1.0 and e["f1"] == 0.0
    assert report.macro_f1 == pytest.approx((0.5 + 2 / 3 + 1.0 + 0.0) / 4)
    # bins: .4 -> wrong (|0-.4|), .6 -> wrong (.6), .7 right (.3), .8 right (.2), .9 right (.1)
    assert report.ece == pytest.approx((0.4 + 0.6 + 0.3 + 0.2 + 0.1) / 5)


def test_ece_bins_average_within_a_bin():
    # both in bin [0.8, 0.9): accuracy 0.5, mean confidence 0.85 -> 0.35
    assert expected_calibration_error("NN", "ND", [0.8, 0.9 - 1e-9]) == pytest.approx(0.35)
    assert expected_calibration_error("N", "N", [None]) is None
    assert expected_calibration_error("N", "N", [1.0]) == 0.0  # 1.0 falls in the last bin


def test_macro_f1_skips_classes_absent_from_gold_and_predictions():
    result = score("NNR", "NNR")
    assert result["macro_f1"] == 1.0 and result["accuracy"] == 1.0 and result["ece"] is None
    assert score([], [])["macro_f1"] is None


class Fixed:
    """A pre-labeler that answers fixed behaviors and confidences, step by step."""

    name = "fixed"
    description = "test"
    version = "1"

    def __init__(self, behaviors, confidences):
        self.behaviors, self.confidences = behaviors, confidences

    def predict(self, traces):
        return [
            [
                StepPrediction(self.behaviors[i], self.confidences[i])
                for i in range(len(trace.steps))
            ]
            for trace in traces
        ]


class FixedPlugin:
    __name__ = "fixed_plugin"

    def __init__(self, prelabeler):
        self.prelabeler = prelabeler

    @hookimpl
    def register_prelabelers(self, register):
        register(self.prelabeler)


def test_gold_and_predictions_on_different_segmentations(tmp_path):
    # Gold labels two paragraphs; the predictions come after re-segmenting into sentences.
    text = "First we add the numbers. Then a short one.\n\nWait, is that right? Yes it is."
    rec = record(
        text=text,
        steps=[{"start": 0, "end": 43}, {"start": 45, "end": 76}],
        labels=labels("gold", "NR"),
        bonds=[],
    )
    db = tmp_path / "p.db"
    plugins = Plugins(load_entry_points=False)
    plugins.register(FixedPlugin(Fixed("NDRN", [0.9, 0.5, 0.8, 0.6])))
    with Store(db) as store:
        import_paths(store, plugins, [write_jsonl(tmp_path / "a.jsonl", [rec])])
        resegment(store, plugins, "sentence")
        spans = [(s.start, s.end) for _, s in store.active_steps(store.trace_ids()[0])]
        assert spans == [(0, 25), (26, 43), (45, 65), (66, 76)]
        prelabel(store, plugins, "fixed", provider="cpu")
        report = evaluate(store, "gold", "model:fixed@1")
    # paragraph 0 overlaps sentences 0 (25 chars) and 1 (17): N vs N; paragraph 1 overlaps
    # sentences 2 (20) and 3 (10): R vs R.
    assert (report.matched, report.unmatched, report.accuracy) == (2, 0, 1.0)
    assert report.confusion[0][0] == 1 and report.confusion[2][2] == 1
    assert report.ece == pytest.approx((0.1 + 0.2) / 2)


def test_gold_step_without_any_overlap_is_unmatched(tmp_path):
    text = "aaaa\n\nbbbb"
    rec = record(
        text=text,
        steps=[{"start": 0, "end": 4}, {"start": 6, "end": 10}],
        labels=[
            {"step": 0, "behavior": "N", "annotator": "gold", "confidence": None},
            {"step": 1, "behavior": "R", "annotator": "gold", "confidence": None},
            {"step": 0, "behavior": "N", "annotator": "model:p@1", "confidence": 0.5},
        ],
        bonds=[],
    )
    db = tmp_path / "p.db"
    with Store(db) as store:
        import_paths(
            store, Plugins(load_entry_points=False), [write_jsonl(tmp_path / "a.jsonl", [rec])]
        )
        report = evaluate(store, "gold", "model:p@1")
    assert (report.matched, report.unmatched, report.accuracy) == (1, 1, 1.0)


def test_eval_command_json(tmp_path):
    db = five_step_project(tmp_path)
    result = CliRunner().invoke(
        cli, ["eval", "--db", str(db), "--gold", "gold", "--pred", "model:p@1", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["matched"] == 5 and data["accuracy"] == pytest.approx(0.6)
    text = CliRunner().invoke(
        cli, ["eval", "--db", str(db), "--gold", "gold", "--pred", "model:p@1"]
    )
    assert "macro-F1" in text.output and "confusion" in text.output
