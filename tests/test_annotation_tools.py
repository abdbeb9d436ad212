"""Trading labels with Label Studio, doccano and Prodigy: round trips through the real CLI, and
the tools' own file shapes (as their exports write them) imported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bondscope.cli import cli
from bondscope.plugin_manager import Plugins
from bondscope.services.importing import import_paths
from bondscope.store import Store
from click.testing import CliRunner

from tests.helpers import THOUGHT_ANCHORS, needs_thought_anchors, record, write_jsonl

TOOLS = {"label-studio": ".json", "doccano": ".jsonl", "prodigy": ".jsonl"}


def run(*args: object) -> str:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def labels_and_bonds(db: Path) -> tuple[set, set]:
    """Every current label and bond, by trace name and step span (not by row ids)."""
    with Store(db) as store:
        traces = [store.load_trace(i) for i in store.trace_ids()]
    labels = {
        (t.id, t.steps[lb.step], lb.behavior, lb.annotator, lb.confidence)
        for t in traces
        for lb in t.labels
    }
    bonds = {
        (t.id, t.steps[b.source], t.steps[b.target], b.type, b.annotator)
        for t in traces
        for b in t.bonds
    }
    return labels, bonds


@pytest.fixture(scope="module")
def labeled_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten Thought Anchors traces (GPT-4o labels and bonds), keyword labels with confidences, and
    a person's labels and bonds on one more trace."""
    folder = tmp_path_factory.mktemp("labeled")
    db = folder / "a.bondscope"
    run("import", THOUGHT_ANCHORS / "deepseek-r1-distill-qwen-14b" / "correct_base_solution",
        "--db", db)  # fmt: skip
    run("import", write_jsonl(folder / "person.jsonl", [record()]), "--db", db)
    run("prelabel", "--db", db, "--labeler", "keywords")
    return db


@needs_thought_anchors
@pytest.mark.parametrize("tool", TOOLS)
def test_export_import_export_keeps_every_label_and_bond(
    tmp_path: Path, labeled_project: Path, tool: str
) -> None:
    first = tmp_path / f"first{TOOLS[tool]}"
    run("export", "--db", labeled_project, "--format", tool, "--out", first)
    db = tmp_path / "b.bondscope"
    report = json.loads(run("import", first, "--db", db, "--json"))  # detected, no --format
    second = tmp_path / f"second{TOOLS[tool]}"
    run("export", "--db", db, "--format", tool, "--out", second)
    assert first.read_bytes() == second.read_bytes()
    labels, bonds = labels_and_bonds(labeled_project)
    assert labels_and_bonds(db) == (labels, bonds)
    assert report["labels"] == len(labels) and report["bonds"] == len(bonds)
    people_and_models = {"thought-anchors-gpt4o", "model:keywords@1", "alice", "model:kw@1"}
    assert {label[3] for label in labels} == people_and_models
    assert {bond[4] for bond in bonds} == {"thought-anchors-gpt4o", "alice"}
    original = tmp_path / "a.jsonl"
    again = tmp_path / "b.jsonl"
    run("export", "--db", labeled_project, "--format", "bondscope-jsonl", "--out", original)
    run("export", "--db", db, "--format", "bondscope-jsonl", "--out", again)
    # text, meta, steps, kinds: all, but the labels' times (these files carry none)
    assert without_label_times(original) == without_label_times(again)


def without_label_times(path: Path) -> list[dict]:
    records = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    for each in records:
        for label in each["labels"]:
            del label["created_at"]
    return records


def test_label_studio_tasks_as_label_studio_exports_them(tmp_path: Path) -> None:
    """No data.steps: the steps are the regions; users by id or e-mail; cancelled skipped;
    an unlabeled relation takes its type from the later step's behavior."""
    text = "First we set up the problem.\n\nWait, let me check that again.\n\nSo x = 4."
    tasks = [
        {
            "id": 17,
            "data": {"text": text, "question": "What is x?"},
            "annotations": [
                {
                    "completed_by": 3,
                    "was_cancelled": False,
                    "result": [
                        {"id": "a1", "from_name": "behavior", "to_name": "text", "type": "labels",
                         "value": {"start": 0, "end": 28, "labels": ["normal operation"]}},
                        {"id": "a2", "from_name": "behavior", "to_name": "text", "type": "labels",
                         "value": {"start": 30, "end": 60, "labels": ["Self-reflection"]}},
                        {"type": "relation", "from_id": "a2", "to_id": "a1",
                         "direction": "right"},
                    ],
                },
                {"completed_by": {"email": "bo@example.org"}, "was_cancelled": True,
                 "result": [{"id": "c1", "type": "labels", "value": {"start": 0, "end": 28,
                             "labels": ["E"]}}]},
            ],
            "predictions": [
                {"model_version": "ner-v2", "result": [
                    {"id": "p1", "type": "labels", "score": 0.8,
                     "value": {"start": 62, "end": 71, "labels": ["D"]}}]},
            ],
        }
    ]  # fmt: skip
    path = tmp_path / "project-3-at-2025.json"
    path.write_text(json.dumps(tasks), "utf-8")
    with Store(tmp_path / "p.bondscope") as store:
        import_paths(store, Plugins(load_entry_points=False), [path])
        [trace] = [store.load_trace(i) for i in store.trace_ids()]
    assert trace.id == "17" and trace.question == "What is x?"
    assert [(s.start, s.end) for s in trace.steps] == [(0, 28), (30, 60), (62, 71)]
    assert sorted((lb.step, lb.behavior, lb.annotator, lb.confidence) for lb in trace.labels) == [
        (0, "N", "label-studio-user-3", None),
        (1, "R", "label-studio-user-3", None),
        (2, "D", "model:ner-v2", 0.8),
    ]
    assert [(b.source, b.target, b.type) for b in trace.bonds] == [(1, 0, "hydrogen")]


def test_doccano_and_prodigy_files_from_the_tools(tmp_path: Path) -> None:
    text = "First we set up the problem.\n\nWait, let me check that again.\n\nSo x = 4."
    doccano = write_jsonl(
        tmp_path / "admin.jsonl",
        [{"id": 5, "text": text, "label": [[0, 28, "N"], [30, 60, "R"]], "Comments": []}],
    )
    prodigy = write_jsonl(
        tmp_path / "steps_dataset.jsonl",
        [
            {"text": text, "spans": [{"start": 30, "end": 60, "label": "R"}],
             "_annotator_id": "steps-ann1", "answer": "accept", "_input_hash": 1},
            {"text": text, "spans": [{"start": 30, "end": 60, "label": "E"}],
             "_annotator_id": "steps-ann2", "answer": "reject", "_input_hash": 1},
        ],
    )  # fmt: skip
    with Store(tmp_path / "p.bondscope") as store:
        import_paths(
            store, Plugins(load_entry_points=False), [doccano], options={"annotator": "ann"}
        )
        import_paths(store, Plugins(load_entry_points=False), [prodigy])
        [trace] = [store.load_trace(i) for i in store.trace_ids()]
    assert (trace.id, trace.meta) == ("5", {"Comments": []})
    # Prodigy's trace is the same text: its accepted span's label joins by span, reject adds none
    assert sorted((lb.step, lb.behavior, lb.annotator) for lb in trace.labels) == [
        (0, "N", "ann"),
        (1, "R", "ann"),
        (1, "R", "steps-ann1"),
    ]
