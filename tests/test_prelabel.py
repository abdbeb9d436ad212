"""Pre-labeling into a real project, and training on real (weakly) labeled traces: the Thought
Anchors data with its mapped `thought-anchors-gpt4o` labels."""

import json

import pytest
from bondscope import hookimpl
from bondscope.cli import cli
from bondscope.hookspecs import StepPrediction
from bondscope.models.classifier import read_card
from bondscope.models.features import SEQUENCE_GROUPS
from bondscope.plugin_manager import PluginError, Plugins
from bondscope.plugins.thought_anchors import ANNOTATOR
from bondscope.services.evaluation import evaluate
from bondscope.services.importing import import_paths
from bondscope.services.prelabeling import prelabel
from bondscope.services.training import split_traces
from bondscope.store import Store
from click.testing import CliRunner

from tests.helpers import THOUGHT_ANCHORS, record, write_jsonl
from tests.test_classifier import encoder_cache  # noqa: F401 - the session's exported encoder

# The ten shortest Thought Anchors traces (24-101 chunks each).
TA_FOLDERS = [
    "deepseek-r1-distill-llama-8b/incorrect_base_solution/problem_2189",
    "deepseek-r1-distill-llama-8b/incorrect_base_solution/problem_2236",
    "deepseek-r1-distill-llama-8b/incorrect_base_solution/problem_330",
    "deepseek-r1/no_base_solution/scenario_0",
    "deepseek-r1-distill-qwen-14b/correct_base_solution/problem_2238",
    "deepseek-r1-distill-qwen-14b/incorrect_base_solution/problem_2189",
    "deepseek-r1-distill-llama-8b/correct_base_solution/problem_6998",
    "deepseek-r1-distill-qwen-14b/correct_base_solution/problem_3448",
    "deepseek-r1-distill-qwen-14b/correct_base_solution/problem_2236",
    "deepseek-r1-distill-llama-8b/correct_base_solution/problem_1591",
]
needs_data = pytest.mark.skipif(not THOUGHT_ANCHORS.exists(), reason="shared data not present")


def small_project(tmp_path, traces=3):
    text = "We set up the sum.\n\nWait, let me check that again.\n\nAlternatively, try x = 2."
    records = [
        record(
            id=f"t{i}",
            text=text + " " * i,  # distinct content, same steps
            steps=[{"start": 0, "end": 18}, {"start": 20, "end": 50}, {"start": 52, "end": 76}],
            labels=[],
            bonds=[],
        )
        for i in range(traces)
    ]
    db = tmp_path / "p.db"
    with Store(db) as store:
        import_paths(
            store, Plugins(load_entry_points=False), [write_jsonl(tmp_path / "a.jsonl", records)]
        )
    return db


def label_rows(db, annotator):
    with Store(db) as store:
        return store.conn.execute(
            "SELECT step, behavior, confidence FROM current_labels WHERE annotator = ? "
            "ORDER BY trace_id, step",
            (annotator,),
        ).fetchall()


def test_keyword_prelabels_through_the_cli(tmp_path):
    db = small_project(tmp_path)
    result = CliRunner().invoke(
        cli, ["prelabel", "--db", str(db), "--labeler", "keywords", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["status"], data["traces"], data["steps"]) == ("done", 3, 9)
    assert data["annotator"] == "model:keywords@1"
    rows = label_rows(db, "model:keywords@1")
    assert rows == [(0, "N", 0.5), (1, "R", 0.6), (2, "E", 0.6)] * 3
    with Store(db) as store:
        kind, status, summary = store.conn.execute(
            "SELECT kind, status, summary FROM runs WHERE kind = 'prelabel'"
        ).fetchone()
        assert store.count("SELECT COUNT(*) FROM annotators WHERE kind = 'model'") == 1
    assert status == "done" and json.loads(summary)["steps"] == 9


class CancelAfter:
    """Progress whose user presses Cancel after `batches` batches."""

    def __init__(self, batches):
        self.batches, self.done = batches, 0

    def start(self, label, total):
        pass

    def advance(self, amount=1, note=""):
        self.done += 1

    def cancelled(self):
        return self.done >= self.batches


def test_cancel_keeps_the_finished_batches(tmp_path):
    db = small_project(tmp_path, traces=5)
    with Store(db) as store:
        plugins = Plugins(load_entry_points=False)
        report = prelabel(store, plugins, "keywords", None, "cpu", CancelAfter(2), batch_traces=2)
        status = store.conn.execute("SELECT status FROM runs WHERE kind = 'prelabel'").fetchone()
    assert (report.status, report.traces, report.steps) == ("cancelled", 4, 12)
    assert status == ("cancelled",)
    assert len(label_rows(db, "model:keywords@1")) == 12


class Broken:
    name = "broken"
    description = "answers one prediction too few"
    version = "0"

    def predict(self, traces):
        return [[StepPrediction("N", 0.5)] * (len(t.steps) - 1) for t in traces]


class BrokenPlugin:
    __name__ = "broken_plugin"

    @hookimpl
    def register_prelabelers(self, register):
        register(Broken())


def test_a_prelabeler_answering_the_wrong_shape_is_disabled_and_stores_nothing(tmp_path):
    db = small_project(tmp_path)
    plugins = Plugins(load_entry_points=False)
    plugins.register(BrokenPlugin())
    with Store(db) as store, pytest.raises(PluginError, match="2 predictions for 3 steps"):
        prelabel(store, plugins, "broken")
    assert label_rows(db, "model:broken@0") == []
    assert "broken" not in plugins.prelabelers()
    with Store(db) as store:
        assert store.conn.execute("SELECT status FROM runs WHERE kind = 'prelabel'").fetchone() == (
            "failed",
        )


def test_split_is_by_trace_seeded_and_explicit():
    names = [f"trace-{i}" for i in range(10)]
    train, test = split_traces(names, 0.2, seed=3)
    assert len(test) == 2 and set(train) | set(test) == set(names) and not set(train) & set(test)
    assert split_traces(list(reversed(names)), 0.2, seed=3) == (train, test)
    assert split_traces(names, 0.2, seed=4) != (train, test)
    assert split_traces(["only"], 0.2, seed=0) == (["only"], [])


@needs_data
@pytest.mark.usefixtures("encoder_cache")
def test_train_on_thought_anchors_then_prelabel_with_the_trained_model(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    db = tmp_path / "ta.db"
    with Store(db) as store:
        import_paths(
            store, Plugins(load_entry_points=False), [THOUGHT_ANCHORS / f for f in TA_FOLDERS]
        )
    result = CliRunner().invoke(
        cli,
        [
            "train",
            "--db",
            str(db),
            "--gold",
            ANNOTATOR,
            "--out",
            "ta-weak",
            "--folds",
            "2",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["train_traces"], report["test_traces"]) == (8, 2)
    assert report["cv"]["folds"] == 2 and report["cv"]["traces"] == 10
    with Store(db) as store:
        steps = store.count("SELECT COUNT(*) FROM active_steps")
        gold = store.count("SELECT COUNT(*) FROM current_labels WHERE annotator = ?", (ANNOTATOR,))
    assert report["train_steps"] + report["test_steps"] == gold > 500
    folder = tmp_path / "data" / "bondscope" / "models" / "ta-weak"
    card = read_card(folder)
    assert card["version"] == report["version"] and card["split"]["unit"] == "trace"
    assert sorted(card["split"]["train"] + card["split"]["test"]) == sorted(TA_FOLDERS)
    assert 0.0 <= card["metrics"]["test"]["macro_f1"] <= 1.0
    assert card["metrics"]["int8_label_agreement"] > 0.8
    assert (folder / "head.npz").stat().st_size < 100_000
    with Store(db) as store:
        model_row = store.conn.execute("SELECT name, version, sha256 FROM models").fetchone()
        train_run = store.conn.execute("SELECT status FROM runs WHERE kind = 'train'").fetchone()
    assert model_row == ("ta-weak", card["version"], card["head"]["sha256"])
    assert train_run == ("done",)

    plugins = Plugins(load_entry_points=False)  # finds the new model in the user models dir
    assert plugins.get("prelabeler", "ta-weak").version == card["version"]
    with Store(db) as store:
        done = prelabel(store, plugins, "ta-weak", provider="cpu")
        annotator = f"model:ta-weak@{card['version']}"
        assert (done.status, done.steps, done.provider) == ("done", steps, "CPUExecutionProvider")
        rows = label_rows(db, annotator)
        assert len(rows) == steps and all(0.25 <= confidence <= 1.0 for _, _, confidence in rows)
        held_out = store.trace_ids(names=card["split"]["test"])
        scored = evaluate(store, ANNOTATOR, annotator, held_out)
    assert scored.matched == card["data"]["test_steps"]
    # int8 at pre-label time vs fp32 in training: close to the card's held-out figure
    assert abs(scored.macro_f1 - card["metrics"]["test"]["macro_f1"]) < 0.1
    assert scored.accuracy > 0.4


@pytest.mark.usefixtures("encoder_cache")
def test_full_level_fine_tunes_exports_and_prelabels(tmp_path, monkeypatch):
    """`--full` on the CPU with two optimizer steps: the real path, end to end."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    db = small_project(tmp_path, traces=4)
    with Store(db) as store:
        for step_id, behavior in zip(
            [r[0] for r in store.conn.execute("SELECT id FROM steps ORDER BY id")],
            "NRE" * 4,
            strict=True,
        ):
            store.conn.execute(
                "INSERT INTO label_events (step_id, annotator_id, behavior, created_at) "
                "VALUES (?, ?, ?, '2026-01-01')",
                (step_id, store.annotator_id("gold"), behavior),
            )
    result = CliRunner().invoke(
        cli, ["train", "--db", str(db), "--gold", "gold", "--out", "tiny", "--full", "--json"]
    )
    assert result.exit_code == 0, result.output
    folder = tmp_path / "data" / "bondscope" / "models" / "tiny"
    card = read_card(folder)
    assert card["level"] == "full" and card["encoder"]["weights"] == "encoder"
    assert card["encoder"]["finetune"]["optimizer_steps"] == 1  # 9 steps, batch 32, 1 epoch
    plugins = Plugins(load_entry_points=False)
    with Store(db) as store:
        done = prelabel(store, plugins, "tiny", provider="cpu")
    assert (done.status, done.steps) == ("done", 12)


def test_prelabel_only_the_traces_matching_a_glob(tmp_path):
    db = small_project(tmp_path)
    args = ["prelabel", "--db", str(db), "--labeler", "keywords", "--traces", "t[02]", "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["traces"] == 2
    with Store(db) as store:
        names = {
            row[0]
            for row in store.conn.execute(
                "SELECT DISTINCT t.name FROM current_labels c JOIN traces t ON t.id = c.trace_id "
                "WHERE c.annotator = 'model:keywords@1'"
            )
        }
    assert names == {"t0", "t2"}


def test_train_refuses_cross_validating_a_full_fine_tune(tmp_path):
    db = tmp_path / "p.db"
    result = CliRunner().invoke(
        cli, ["train", "--db", str(db), "--gold", "a", "--out", "m", "--full", "--folds", "2"]
    )
    assert result.exit_code == 2 and "test folds" in result.output
    assert not db.exists()  # refused before anything was written


def test_predictions_do_not_depend_on_the_other_traces_of_the_batch(tmp_path, encoder_cache):  # noqa: F811
    """The same step of the same model version gets the same suggestion whether its trace is
    pre-labeled alone or with others (issue 19: D? 0.49 alone vs N? 0.47 with all traces)."""
    from dataclasses import replace

    from bondscope.services.demo import ensure_demo_project

    with Store(ensure_demo_project(tmp_path / "demo.bondscope")) as store:
        traces = [
            replace(trace, steps=trace.steps[:steps])
            for trace, steps in zip(store.iter_traces(annotators=[]), (12, 30, 20), strict=True)
        ]
    classifier = Plugins(load_entry_points=False).prelabelers()["bondscope-minilm"]
    classifier.set_provider("cpu")
    alone = classifier.predict([traces[0]])[0]
    batched = classifier.predict(traces)
    assert [(p.behavior, p.confidence) for p in alone] == [
        (p.behavior, p.confidence) for p in batched[0]
    ]
    assert classifier.predict(traces[::-1])[2] == batched[0]


@pytest.mark.usefixtures("encoder_cache")
def test_train_a_sequence_head_calibrated_in_cv_then_prelabel_with_it(tmp_path, monkeypatch):
    """`--head gru --folds 2 --calibrate` on a small gold set: the ONNX head ships in the model
    folder with its temperature and offsets in the card, and pre-labels through the plugin."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    db = small_project(tmp_path, traces=6)
    with Store(db) as store:
        step_ids = [r[0] for r in store.conn.execute("SELECT id FROM steps ORDER BY id")]
        for step_id, behavior in zip(step_ids, "NRE" * 6, strict=True):
            store.conn.execute(
                "INSERT INTO label_events (step_id, annotator_id, behavior, created_at) "
                "VALUES (?, ?, ?, '2026-01-01')",
                (step_id, store.annotator_id("gold"), behavior),
            )
    args = ["train", "--db", str(db), "--gold", "gold", "--out", "seq", "--head", "gru"]
    refused = CliRunner().invoke(cli, [*args, "--calibrate"])
    assert refused.exit_code == 2 and "--folds" in refused.output
    result = CliRunner().invoke(cli, [*args, "--folds", "2", "--calibrate", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    folder = tmp_path / "data" / "bondscope" / "models" / "seq"
    card = read_card(folder)
    assert card["head"]["kind"] == "gru" and card["head"]["file"] == "head.onnx"
    assert card["head"]["augmented"] is True and len(card["head"]["offsets"]) == 4
    assert card["head"]["temperature"] == report["cv"]["calibrated"]["temperature"]
    assert set(report["cv"]["model"]["class_ece"]) == {"N", "D", "R", "E"}
    assert card["features"] == list(SEQUENCE_GROUPS)
    assert (folder / "head.onnx").stat().st_size < 500_000
    plugins = Plugins(load_entry_points=False)
    with Store(db) as store:
        done = prelabel(store, plugins, "seq", provider="cpu")
    assert (done.status, done.steps) == ("done", 18)
    rows = label_rows(db, f"model:seq@{card['version']}")
    assert len(rows) == 18 and all(0.25 <= c <= 1.0 for _, _, c in rows)
