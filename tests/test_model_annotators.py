"""One rule for "is this annotator a model": the declared or stored kind, else the `model:` name.

The store, the labeling hints, the newest-model default, the review queue and the Label Studio
export all follow `domain.is_model_annotator`, so an importer's declaration is never overruled by
a name (docs/formats.md, `annotators`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from bondscope.domain import is_model_annotator
from bondscope.plugin_manager import Plugins
from bondscope.plugins.label_studio import task
from bondscope.services.importing import import_paths
from bondscope.services.labeling import load_steps, newest_model_annotator
from bondscope.services.review import uncertain_steps
from bondscope.store import Store

from tests.helpers import record, write_jsonl


@pytest.mark.parametrize(
    ("name", "kind", "model"),
    [
        ("model:kw@1", None, True),
        ("alice", None, False),
        ("judge", "model", True),
        ("model:reader", "person", False),  # declared: the kind wins over the name
        ("alice", "person", False),
    ],
)
def test_the_kind_decides_and_the_name_only_without_one(name, kind, model):
    assert is_model_annotator(name, kind) is model


def test_every_reader_of_the_store_follows_the_rule(tmp_path: Path) -> None:
    labels = [
        {"step": 0, "behavior": "N", "annotator": "alice", "confidence": None},
        {"step": 1, "behavior": "D", "annotator": "model:kw@1", "confidence": 0.6},
        {"step": 2, "behavior": "E", "annotator": "judge", "confidence": 0.7},
        {"step": 0, "behavior": "R", "annotator": "model:reader", "confidence": None},
    ]
    data = record(
        labels=labels,
        bonds=[],
        annotators={"judge": {"kind": "model"}, "model:reader": {"kind": "person"}},
    )
    with Store(tmp_path / "p.db") as store:
        import_paths(
            store, Plugins(load_entry_points=False), [write_jsonl(tmp_path / "t.jsonl", [data])]
        )
        kinds = dict(store.conn.execute("SELECT name, kind FROM annotators"))
        assert kinds == {
            "alice": "person",
            "model:kw@1": "model",
            "judge": "model",
            "model:reader": "person",
        }
        (trace_id,) = store.trace_ids()
        hints = [
            (state.suggestion, state.confidence) for state in load_steps(store, trace_id, "bob")
        ]
        assert hints == [(None, None), ("D", 0.6), ("E", 0.7)]  # model:reader's R is no hint
        assert newest_model_annotator(store) == "judge"  # model:reader labeled last
        with pytest.raises(LookupError) as unknown:
            uncertain_steps(store, "nobody", "alice")
        assert "known: judge, model:kw@1" in str(unknown.value)
        trace = store.load_trace(trace_id)
    exported = task(trace)
    assert sorted(p["model_version"] for p in exported["predictions"]) == ["judge", "model:kw@1"]
    assert sorted(a["created_username"] for a in exported["annotations"]) == [
        "alice",
        "model:reader",
    ]
