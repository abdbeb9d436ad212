"""The plugin manager: built-ins, entry points, code-registered plugins, and broken plugins."""

import importlib.util
import sys
import textwrap
from pathlib import Path

import pytest
from bondscope import Trace, hookimpl
from bondscope.domain import InputError
from bondscope.hookspecs import Importer
from bondscope.plugin_manager import BUILTIN_PLUGINS, PluginError, Plugins
from bondscope.services.importing import import_paths
from bondscope.store import Store

from tests.helpers import dump, record, write_jsonl

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_builtins_are_ordinary_plugins():
    plugins = Plugins(load_entry_points=False)
    assert [info.name for info in plugins.describe()] == list(BUILTIN_PLUGINS)
    assert set(plugins.importers()) == {
        "bondscope-jsonl",
        "thought-anchors",
        "r1-json",
        "step-lists",
        "text",
        "parquet",
    }
    assert set(plugins.segmenters()) == {"paragraph", "sentence", "given"}
    assert {"bondscope-jsonl", "parquet", "csv"} <= set(plugins.exporters())
    assert {"behavior-distribution", "transition-matrix"} <= set(plugins.metrics())
    assert plugins.failures == []
    assert all(info.origin == "built-in" and info.provides for info in plugins.describe())


def test_unknown_name_lists_what_exists():
    with pytest.raises(LookupError, match="available: bondscope-jsonl, csv, parquet"):
        Plugins(load_entry_points=False).get("exporter", "xlsx")


class TsvImporterPlugin:
    """A third-party importer: one trace per line, `id<TAB>text`."""

    __name__ = "tsv-plugin"

    class TsvImporter:
        name = "tsv"
        description = "id<TAB>text lines"

        def detect(self, path):
            return path.suffix == ".tsv"

        def read(self, path, options):
            for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
                identifier, _, text = line.partition("\t")
                yield Trace(id=identifier, text=text, source="tsv", line=number)

    @hookimpl
    def register_importers(self, register):
        register(self.TsvImporter())


def test_a_registered_plugin_class_adds_an_importer(tmp_path):
    plugins = Plugins(load_entry_points=False)
    plugins.register(TsvImporterPlugin())
    assert isinstance(plugins.get("importer", "tsv"), Importer)
    path = tmp_path / "data.tsv"
    path.write_text("a\tFirst trace text is here.\nb\tSecond trace text.\n", "utf-8")
    with Store(tmp_path / "p.db") as store:
        report = import_paths(store, plugins, [path])
        assert report.traces == 2
        assert plugins.owner("importer", "tsv") == "tsv-plugin"


def test_a_plugin_yielding_bad_data_gets_a_located_input_error(tmp_path):
    plugins = Plugins(load_entry_points=False)
    plugins.register(TsvImporterPlugin())
    path = tmp_path / "data.tsv"
    path.write_text("a\tgood text\nb\t   \n", "utf-8")
    with Store(tmp_path / "p.db") as store, pytest.raises(InputError) as caught:
        import_paths(store, plugins, [path])
    assert str(caught.value) == f"{path}:2: field 'text': must be a non-empty string"


class CrashingImporterPlugin:
    __name__ = "crashing-plugin"

    class Crashing:
        name = "crashing"
        description = "writes one good trace, then has a bug"

        def detect(self, path):
            return path.suffix == ".crash"

        def read(self, path, options):
            yield Trace(id="fine", text="a perfectly good trace")
            raise ZeroDivisionError("bug in plugin")

    @hookimpl
    def register_importers(self, register):
        register(self.Crashing())


def test_a_plugin_that_raises_is_named_disabled_and_leaves_no_half_transaction(tmp_path):
    plugins = Plugins(load_entry_points=False)
    plugins.register(CrashingImporterPlugin())
    db = tmp_path / "p.db"
    good = write_jsonl(tmp_path / "good.jsonl", [record()])
    bad = tmp_path / "x.crash"
    bad.write_text("whatever")
    with Store(db) as store:
        import_paths(store, plugins, [good])
    before = dump(db)
    with Store(db) as store, pytest.raises(PluginError) as caught:
        import_paths(store, plugins, [bad])
    assert caught.value.plugin == "crashing-plugin"
    assert "crashing-plugin" in str(caught.value) and "bug in plugin" in str(caught.value)
    assert dump(db) == before
    assert "crashing" not in plugins.importers()
    assert [f.plugin for f in plugins.failures] == ["crashing-plugin"]


class BrokenRegistration:
    __name__ = "broken-registration"

    @hookimpl
    def register_exporters(self, register):
        register(object())  # not an exporter


class MisspelledHook:
    __name__ = "misspelled"

    @hookimpl
    def register_importer(self, register):  # missing "s": pluggy would silently ignore it
        pass


def test_malformed_plugins_are_reported_not_fatal():
    plugins = Plugins(load_entry_points=False, extra=[BrokenRegistration(), MisspelledHook()])
    assert {"bondscope-jsonl", "parquet", "csv"} <= set(plugins.exporters())
    failed = {f.plugin: f.error for f in plugins.failures}
    assert "does not implement the exporter interface" in failed["broken-registration"]
    assert "unknown hook" in failed["misspelled"]


def test_entry_point_plugins_are_loaded_from_installed_distributions(tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "bondscope_hello-1.0.dist-info").mkdir(parents=True)
    (site / "bondscope_hello-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: bondscope-hello\nVersion: 1.0\n"
    )
    (site / "bondscope_hello-1.0.dist-info" / "entry_points.txt").write_text(
        "[bondscope]\nhello = bondscope_hello\nbroken = bondscope_broken\n"
    )
    (site / "bondscope_hello.py").write_text(
        textwrap.dedent("""
        from bondscope import hookimpl
        from bondscope.plugins.sentence_segmenter import SentenceSegmenter

        class Hello(SentenceSegmenter):
            name = "hello"

        @hookimpl
        def register_segmenters(register):
            register(Hello())
    """)
    )
    (site / "bondscope_broken.py").write_text("raise ImportError('missing dependency xyz')\n")
    monkeypatch.syspath_prepend(str(site))
    plugins = Plugins()
    assert "hello" in plugins.segmenters()
    info = {i.name: i for i in plugins.describe()}
    assert info["hello"].origin == "bondscope-hello"
    assert info["hello"].provides == ["segmenter:hello"]
    assert [(f.plugin, f.error) for f in plugins.failures] == [
        ("broken", "ImportError: missing dependency xyz")
    ]
    monkeypatch.setenv("BONDSCOPE_LOAD_PLUGINS", "")
    assert "hello" not in Plugins().segmenters()


def test_the_docs_worked_example_plugin(tmp_path):
    source = DOCS / "example_plugin" / "bondscope_numbered_steps.py"
    assert source.read_text("utf-8").strip() in (DOCS / "plugins.md").read_text("utf-8")
    spec = importlib.util.spec_from_file_location("bondscope_numbered_steps", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules.pop("bondscope_numbered_steps", None)
    plugins = Plugins(load_entry_points=False)
    plugins.register(module, "bondscope_numbered_steps")
    text = "Let me solve it.\nStep 1: add both sides.\nStep 2: divide by two.\nSo x = 2."
    path = tmp_path / "solution.txt"
    path.write_text(text, "utf-8")
    with Store(tmp_path / "p.db") as store:
        import_paths(store, plugins, [path], segmenter="numbered-steps")
        (trace,) = store.iter_traces()
    assert [text[s.start : s.end] for s in trace.steps] == [
        "Let me solve it.",
        "Step 1: add both sides.",
        "Step 2: divide by two.\nSo x = 2.",
    ]


def test_every_hook_is_documented_for_plugin_authors():
    from bondscope import hookspecs

    guide = (DOCS / "plugins.md").read_text("utf-8")
    hooks = [name for name in dir(hookspecs) if name.startswith("register_")]
    assert len(hooks) >= 8
    missing = [name for name in hooks if f"`{name}(" not in guide]
    assert missing == []
