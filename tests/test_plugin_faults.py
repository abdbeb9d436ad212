"""Faulty third-party plugins (reliability issue, finding 8 and the `detect` of 14): one that
hangs past the time limit, returns garbage or raises in `register_commands` is named and disabled,
nothing is written, and everything else keeps working."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import textwrap
import time

import click
import pytest
from bondscope import Step, Trace, hookimpl
from bondscope.cli import cli
from bondscope.hookspecs import StepPrediction
from bondscope.plugin_manager import PluginError, Plugins
from bondscope.services.importing import import_paths
from bondscope.services.prelabeling import prelabel
from bondscope.store import Store
from click.testing import CliRunner

from tests.helpers import bare_record, dump, record, write_jsonl

LIMIT = 0.5


class Importing:
    """An importer plugin for `.odd` files whose `detect` and `read` behave as told."""

    def __init__(self, detect=True, read=None) -> None:
        self.__name__ = "odd-importer"
        outer = self

        class Odd:
            name = "odd"
            description = "a faulty importer"

            def detect(self, path):
                return outer.verdict if path.suffix == ".odd" else False

            def read(self, path, options):
                yield from outer.reader()

        self.verdict = detect
        self.reader = read or (lambda: iter([Trace(id="x", text="some text")]))
        self.importer = Odd()

    @hookimpl
    def register_importers(self, register):
        register(self.importer)


class Segmenting:
    def __init__(self, segment) -> None:
        self.__name__ = "odd-segmenter"
        outer = self

        class Odd:
            name = "odd"
            description = "a faulty segmenter"

            def segment(self, text, region, given):
                return outer.segment(text)

        self.segment = segment
        self.segmenter = Odd()

    @hookimpl
    def register_segmenters(self, register):
        register(self.segmenter)


class Prelabeling:
    def __init__(self, predict) -> None:
        self.__name__ = "odd-prelabeler"
        outer = self

        class Odd:
            name = "odd"
            version = "1"
            description = "a faulty pre-labeler"

            def predict(self, traces):
                return outer.predict(traces)

        self.predict = predict
        self.prelabeler = Odd()

    @hookimpl
    def register_prelabelers(self, register):
        register(self.prelabeler)


def hang(*_):
    time.sleep(30)


def project(tmp_path):
    db = tmp_path / "p.db"
    with Store(db) as store:
        import_paths(
            store, Plugins(load_entry_points=False), [write_jsonl(tmp_path / "t.jsonl", [record()])]
        )
    return db


def plugins_with(plugin) -> Plugins:
    plugins = Plugins(load_entry_points=False)
    plugins.register(plugin)
    plugins.timeout = LIMIT
    return plugins


def assert_disabled(plugins, name, error_part, action):
    with pytest.raises(PluginError) as raised:
        action()
    assert raised.value.plugin == name and name in str(raised.value)
    assert error_part in str(raised.value)
    assert name in [f.plugin for f in plugins.failures]


@pytest.mark.parametrize(
    ("reader", "problem"),
    [
        (lambda: (hang() for _ in [1]), "did not return within 0.5 s"),
        (lambda: iter([Trace(id="x", text="t", meta={"when": object()})]), "meta that is not JSON"),
        (lambda: iter([Trace(id="x", text="text", steps=[(0, 2)])]), "not a list of Step"),
        (lambda: iter([{"id": "x"}]), "yielded dict, not Trace"),
    ],
    ids=["hangs", "non-JSON-meta", "tuple-steps", "dict"],
)
def test_a_faulty_importer_is_disabled_and_nothing_is_written(tmp_path, reader, problem):
    db = project(tmp_path)
    odd = tmp_path / "x.odd"
    odd.write_text("anything")
    plugins = plugins_with(Importing(read=reader))
    before = dump(db)
    began = time.monotonic()
    with Store(db) as store:
        assert_disabled(
            plugins, "odd-importer", problem, lambda: import_paths(store, plugins, [odd])
        )
    assert time.monotonic() - began < 5
    assert dump(db) == before
    assert "odd" not in plugins.importers()
    with Store(db) as store:  # the others keep working
        report = import_paths(
            store, plugins, [write_jsonl(tmp_path / "u.jsonl", [bare_record(id="u", text="other")])]
        )
    assert report.traces == 1


@pytest.mark.parametrize("verdict", ["yes", 1, None])
def test_a_detect_that_does_not_answer_a_bool_claims_nothing(tmp_path, verdict):
    plugins = plugins_with(Importing(detect=verdict))
    folder = tmp_path / "in"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", [record()])
    (folder / "b.odd").write_text("not for anyone")
    with Store(tmp_path / "p.db") as store:
        report = import_paths(store, plugins, [folder])
    assert report.traces == 1 and report.skipped == [str(folder / "b.odd")]
    if verdict is not None:
        assert "odd-importer" in [f.plugin for f in plugins.failures]
        assert "not a bool" in plugins.failures[-1].error


@pytest.mark.parametrize(
    ("segment", "problem"),
    [
        (hang, "did not return within"),
        (lambda text: None, "returned NoneType, not a list of Step"),
        (lambda text: [(0, len(text))], "not a list of Step"),
        (lambda text: [Step(0, len(text) + 5)], "outside the text"),
    ],
    ids=["hangs", "None", "tuples", "out-of-range"],
)
def test_a_faulty_segmenter_is_disabled(tmp_path, segment, problem):
    db = tmp_path / "p.db"
    Store(db).close()
    before = dump(db)
    plugins = plugins_with(Segmenting(segment))
    data = write_jsonl(tmp_path / "t.jsonl", [bare_record()])
    with Store(db) as store:
        assert_disabled(
            plugins,
            "odd-segmenter",
            problem,
            lambda: import_paths(store, plugins, [data], segmenter="odd"),
        )
    assert dump(db) == before


@pytest.mark.parametrize(
    ("predict", "problem"),
    [
        (hang, "did not return within"),
        (lambda traces: None, "not a list of StepPrediction lists"),
        (
            lambda traces: [[StepPrediction("N", "0.9")] * len(t.steps) for t in traces],
            "confidence",
        ),
        (
            lambda traces: [[StepPrediction("N", float("nan"))] * len(t.steps) for t in traces],
            "confidence",
        ),
        (
            lambda traces: [[StepPrediction("N", 1.5)] * len(t.steps) for t in traces],
            "confidence is not null or a number in [0, 1]",
        ),
        (lambda traces: [["N"] * len(t.steps) for t in traces], "not a list of StepPrediction"),
    ],
    ids=["hangs", "None", "string-confidence", "nan-confidence", "above-one", "strings"],
)
def test_a_faulty_prelabeler_is_disabled_and_writes_no_label(tmp_path, predict, problem):
    db = project(tmp_path)
    plugins = plugins_with(Prelabeling(predict))
    with Store(db) as store:
        labels = store.count("SELECT COUNT(*) FROM label_events")
        assert_disabled(plugins, "odd-prelabeler", problem, lambda: prelabel(store, plugins, "odd"))
        assert store.count("SELECT COUNT(*) FROM label_events") == labels
        assert (
            store.conn.execute("SELECT status FROM runs ORDER BY id DESC").fetchone()[0] == "failed"
        )


def test_a_metric_returning_garbage_is_named(tmp_path, monkeypatch):
    class Garbage:
        __name__ = "odd-metric"

        class Metric:
            name = "odd"
            description = "returns a string"

            def compute(self, selection):
                return "42"

        @hookimpl
        def register_metrics(self, register):
            register(self.Metric())

    db = project(tmp_path)
    plugins = plugins_with(Garbage())
    monkeypatch.setattr("bondscope.cli.structure.plugins", lambda: plugins)
    result = CliRunner().invoke(cli, ["metrics", "odd", "--db", str(db), "--annotator", "alice"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "odd-metric" in result.output and "not MetricResult" in result.output


def test_a_plugin_whose_register_commands_raises_is_listed_and_the_cli_works(tmp_path):
    """The `register_commands` of one plugin raised and took down every command."""
    site = tmp_path / "site"
    info = site / "bondscope_badcli-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bondscope-badcli\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[bondscope]\nbadcli = bondscope_badcli\nbroken = bondscope_broken_import\n"
    )
    (site / "bondscope_badcli.py").write_text(
        textwrap.dedent("""
        from bondscope import hookimpl

        @hookimpl
        def register_commands(cli):
            raise RuntimeError("command table is corrupt")
    """)
    )
    (site / "bondscope_broken_import.py").write_text("raise ImportError('needs libfoo')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path])}

    def bondscope(*args):
        return subprocess.run(
            [sys.executable, "-m", "bondscope", *map(str, args)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )

    listed = bondscope("plugins")
    assert listed.returncode == 0, listed.stderr
    assert "FAILED badcli: RuntimeError: command table is corrupt" in listed.stdout
    assert "FAILED broken: ImportError: needs libfoo" in listed.stdout
    db = project(tmp_path)
    stats = bondscope("stats", "--db", db)
    assert stats.returncode == 0 and "traces: 1" in stats.stdout, stats.stderr
    assert "Traceback" not in stats.stderr


class Commands:
    """A plugin adding the command `name`, then raising when told to."""

    def __init__(self, name: str, raises: bool) -> None:
        self.__name__ = f"{name}-commands"
        self.command, self.raises = name, raises

    @hookimpl
    def register_commands(self, cli):
        @cli.command(name=self.command)
        def command():
            click.echo(f"{self.command} ran")

        if self.raises:
            raise RuntimeError("command table is corrupt")


def test_a_raising_register_commands_leaves_nothing_behind_and_the_rest_works(
    tmp_path, monkeypatch
):
    """In process, on the real plugin manager and a copy of the real command group: the good
    plugin's command runs, the raising plugin is named with its error and its half-registered
    command is gone, and the built-in commands work."""
    group = copy.copy(cli)
    group.commands = dict(cli.commands)
    plugins = Plugins(load_entry_points=False)
    plugins.register(Commands("hello", raises=False))
    plugins.register(Commands("half", raises=True))
    plugins.register_commands(group)
    monkeypatch.setattr("bondscope.cli.data.plugins", lambda: plugins)
    runner = CliRunner()
    listed = runner.invoke(group, ["plugins"])
    assert listed.exit_code == 0, listed.output
    assert "FAILED half-commands: RuntimeError: command table is corrupt" in listed.output
    assert "hello-commands" in listed.output and "FAILED hello-commands" not in listed.output
    assert runner.invoke(group, ["hello"]).output == "hello ran\n"
    missing = runner.invoke(group, ["half"])
    assert missing.exit_code == 2 and "No such command 'half'" in missing.output
    stats = runner.invoke(group, ["stats", "--db", str(project(tmp_path))])
    assert stats.exit_code == 0 and "traces: 1" in stats.output, stats.output
    assert "hello" not in cli.commands  # the real group was left alone


def test_the_import_command_warns_about_a_plugin_it_disabled(tmp_path, monkeypatch):
    plugins = plugins_with(Importing(detect="yes"))
    monkeypatch.setattr("bondscope.cli.data.plugins", lambda: plugins)
    write_jsonl(tmp_path / "t.jsonl", [record()])
    (tmp_path / "x.odd").write_text("anything")
    result = CliRunner().invoke(cli, ["import", str(tmp_path), "--db", str(tmp_path / "p.db")])
    assert result.exit_code == 0, result.output
    assert "warning: plugin 'odd-importer' was disabled: TypeError: detect() returned str" in (
        result.stderr
    )
    assert "imported 1 traces" in result.stdout
