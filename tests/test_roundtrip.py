"""bondscope-jsonl export -> import reproduces everything; Parquet and CSV tables load."""

import csv

import pyarrow.parquet as pq
import pytest
from bondscope.plugin_manager import Plugins
from bondscope.services.exporting import export_traces
from bondscope.services.importing import import_paths
from bondscope.store import Store

from tests.helpers import THOUGHT_ANCHORS, record, write_jsonl

pytestmark = pytest.mark.skipif(not THOUGHT_ANCHORS.exists(), reason="shared data not present")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rt")
    path = folder / "source.db"
    plugins = Plugins(load_entry_points=False)
    extra = write_jsonl(folder / "extra.jsonl", [record()])
    with Store(path) as store:
        import_paths(store, plugins, [THOUGHT_ANCHORS / "deepseek-r1", THOUGHT_ANCHORS / "qwq-32b"])
        import_paths(store, plugins, [THOUGHT_ANCHORS / "deepseek-r1-distill-llama-8b"])
        import_paths(store, plugins, [extra])
    return path


def all_traces(path):
    with Store(path) as store:
        return {trace.id: trace for trace in store.iter_traces()}


def test_jsonl_round_trip_field_by_field(project, tmp_path):
    plugins = Plugins(load_entry_points=False)
    out = tmp_path / "out.jsonl"
    with Store(project) as store:
        report = export_traces(store, plugins, "bondscope-jsonl", out)
    assert report.traces == 23
    with Store(tmp_path / "copy.db") as store:
        imported = import_paths(store, plugins, [out])
    assert imported.traces == 23
    before, after = all_traces(project), all_traces(tmp_path / "copy.db")
    assert before.keys() == after.keys()
    fields = (
        "id",
        "text",
        "question",
        "model",
        "source",
        "answer",
        "steps",
        "labels",
        "bonds",
        "meta",
    )
    for name, original in before.items():
        copy = after[name]
        for field in fields:
            assert getattr(copy, field) == getattr(original, field), (name, field)
    sample = after["t1"]
    assert [(lb.annotator, lb.confidence) for lb in sample.labels] == [
        ("alice", None),
        ("alice", None),
        ("model:kw@1", 0.75),
    ]
    assert sample.meta == {"k": [1, 2]}


def test_export_refuses_to_overwrite_and_filters_annotators(project, tmp_path):
    from bondscope.domain import InputError

    plugins = Plugins(load_entry_points=False)
    out = tmp_path / "out.jsonl"
    with Store(project) as store:
        export_traces(store, plugins, "bondscope-jsonl", out)
        earlier = out.read_text()
        with pytest.raises(InputError, match="already exists"):
            export_traces(store, plugins, "bondscope-jsonl", out)
        assert out.read_text() == earlier
        export_traces(
            store,
            plugins,
            "bondscope-jsonl",
            out,
            overwrite=True,
            trace_ids=store.trace_ids(names=["t1"]),
            annotators=["alice"],
        )
    copy_path = tmp_path / "copy.db"
    with Store(copy_path) as store:
        import_paths(store, plugins, [out])
        (trace,) = store.iter_traces()
    assert {label.annotator for label in trace.labels} == {"alice"}


def test_parquet_tables_load_with_pyarrow(project, tmp_path):
    plugins = Plugins(load_entry_points=False)
    out = tmp_path / "tables"
    with Store(project) as store:
        export_traces(store, plugins, "parquet", out)
        n_steps = store.count("SELECT COUNT(*) FROM active_steps")
        n_labels = store.count("SELECT COUNT(*) FROM current_labels")
        n_bonds = store.count("SELECT COUNT(*) FROM current_bonds")
    traces = pq.read_table(out / "traces.parquet")
    steps = pq.read_table(out / "steps.parquet")
    labels = pq.read_table(out / "labels.parquet")
    bonds = pq.read_table(out / "bonds.parquet")
    assert (traces.num_rows, steps.num_rows, labels.num_rows, bonds.num_rows) == (
        23,
        n_steps,
        n_labels,
        n_bonds,
    )
    assert set(labels.column("behavior").to_pylist()) <= set("NDRE")
    first = steps.slice(0, 1).to_pylist()[0]
    text = traces.to_pylist()[0]["text"]
    assert first["text"] == text[first["start"] : first["end"]]


def test_csv_tables(project, tmp_path):
    plugins = Plugins(load_entry_points=False)
    out = tmp_path / "csv"
    with Store(project) as store:
        export_traces(store, plugins, "csv", out)
        n_labels = store.count("SELECT COUNT(*) FROM current_labels")
    with open(out / "labels.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == n_labels
    assert set(rows[0]) == {
        "trace_id",
        "step",
        "behavior",
        "annotator",
        "annotator_kind",
        "confidence",
        "seconds",
        "created_at",
    }
    kinds = {row["annotator"]: row["annotator_kind"] for row in rows}
    assert kinds["thought-anchors-gpt4o"] == "model"
