"""The one rule for whose labels a view shows, and the project's filter choices."""

from __future__ import annotations

from pathlib import Path

from bondscope.plugin_manager import Plugins
from bondscope.services.importing import import_paths
from bondscope.services.labeling import default_annotator, project_choices, set_label
from bondscope.services.structure import corpus_snapshot
from bondscope.store import Store

from tests.helpers import write_jsonl
from tests.test_structure import trace_record


def make_project(tmp_path: Path) -> Store:
    """Trace a labeled by bob and a model, trace b by the model only, trace c by nobody."""
    records = [
        trace_record("a", "qwq", ["N", "D"], "bob"),
        trace_record("a", "qwq", ["N", "N"], "model:kw@1"),
        trace_record("b", "r1", ["E", "R"], "model:kw@1"),
        trace_record("c", "r1", ["N", None], "bob"),
    ]
    store = Store(tmp_path / "p.db")
    plugins = Plugins(load_entry_points=False)
    for k, record in enumerate(records):
        import_paths(store, plugins, [write_jsonl(tmp_path / f"r{k}.jsonl", [record])])
    return store


def trace_id(store: Store, name: str) -> int:
    return store.conn.execute("SELECT id FROM traces WHERE name = ?", (name,)).fetchone()[0]


def test_mine_if_any_else_the_newest_model(tmp_path: Path) -> None:
    with make_project(tmp_path) as store:
        assert default_annotator(store, "alice") == "model:kw@1"
        assert default_annotator(store, "bob") == "bob"
        step = store.active_steps(trace_id(store, "b"))[0][0]
        set_label(store, step, "alice", "N")
        assert default_annotator(store, "alice") == "alice"


def test_within_a_trace_falls_back_to_whoever_labeled_it(tmp_path: Path) -> None:
    with make_project(tmp_path) as store:
        assert default_annotator(store, "alice", trace_id(store, "a")) == "model:kw@1"
        assert default_annotator(store, "bob", trace_id(store, "a")) == "bob"
        assert default_annotator(store, "bob", trace_id(store, "b")) == "model:kw@1"
        assert default_annotator(store, "alice", trace_id(store, "c")) == "bob"


def test_project_choices_are_distinct_sorted_and_without_blanks(tmp_path: Path) -> None:
    with make_project(tmp_path) as store:
        choices = project_choices(store)
        assert choices.annotators == ["bob", "model:kw@1"]
        assert choices.models == ["qwq", "r1"]
        assert choices.sources == sorted(set(choices.sources)) and "" not in choices.sources


def test_the_structure_panel_corpus_follows_the_same_rule(tmp_path: Path) -> None:
    """The window's corpus side (structure.corpus_snapshot) shows whose labels the rule picks,
    like the metrics dock: the newest model's until I label, mine from my first label on."""
    with make_project(tmp_path) as store:
        a = trace_id(store, "a")
        snapshot = corpus_snapshot(store, "alice", a)
        assert snapshot.annotator == default_annotator(store, "alice") == "model:kw@1"
        assert snapshot.counts.behaviors.sum() == 4  # the model's four labels in a and b
        step = store.active_steps(a)[0][0]
        set_label(store, step, "alice", "E")
        set_label(store, step, "alice", None)  # cleared: alice has chosen, her corpus is empty
        snapshot = corpus_snapshot(store, "alice", a)
        assert snapshot.annotator == default_annotator(store, "alice") == "alice"
        assert snapshot.counts.behaviors.sum() == 0
        assert corpus_snapshot(store, "bob", None).annotator == "bob"
