"""MOLE-SYN end to end: real SQLite, a real chat server on 127.0.0.1, crashes and resumes."""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bondscope import InputError, hookimpl
from bondscope.cli import cli
from bondscope.hookspecs import LLMError, StepPrediction
from bondscope.plugin_manager import PluginError, Plugins
from bondscope.progress import Cancelled
from bondscope.services.exporting import export_traces
from bondscope.services.importing import import_paths
from bondscope.services.structure import (
    Selection,
    SelectionError,
    pearson,
    preset,
    transition_matrix,
)
from bondscope.services.synthesis import (
    PRELABELER_PREFERENCE,
    Connection,
    RunProgress,
    SynthesisError,
    SynthesisSettings,
    UnfinishedRun,
    answers_match,
    fidelity,
    first_behavior,
    graph_from_corpus,
    graph_from_preset,
    plan_run,
    random_walk,
    read_questions,
    run_progress,
    run_synthesis,
    unfinished_runs,
    walk_counts,
)
from bondscope.store import Store
from click.testing import CliRunner

from tests.chat_server import ChatServer, drop, drop_mid, malformed, reply, status
from tests.helpers import record, write_jsonl

KEY = "sk-synth-b81f0e55-secret"
NAMES = {"normal operation": "N", "deep reasoning": "D", "self-reflection": "R", "exploration": "E"}
DIRECTIVE = re.compile(r"The behavior to perform now is ([a-z -]+):")
FAST = {"backoff": 0.01, "max_backoff": 0.05, "timeout": 2.0, "concurrency": 3}


def write_step(body: dict[str, Any], n: int = 0) -> Any:
    """A deterministic "model": names the behavior it was asked for; answers after a few steps."""
    prompt = body["messages"][-1]["content"]
    behavior = NAMES[DIRECTIVE.search(prompt).group(1)]
    question = re.search(r"Problem:\n(.*)\n\nReasoning so far:", prompt, re.S).group(1)
    rationale = prompt.split("Reasoning so far:\n", 1)[1]
    done = 0 if rationale.startswith("(nothing yet") else rationale.count("\n\n") + 1
    number = int(question.split()[-1])
    if done >= 3 + number % 3:
        return reply(f"Putting it together, the result is \\boxed{{{number * 2}}}.")
    return reply(f"[{behavior}] step {done} of question {number}")


def questions_file(tmp_path: Path, count: int = 5) -> Path:
    records = [
        {"question": f"Question {i}", "answer": str(i * 2) if i % 2 == 0 else "wrong"}
        for i in range(count)
    ]
    return write_jsonl(tmp_path / "q.jsonl", records)


def synthesize(db: Path, server: ChatServer, questions: Path, **options: Any) -> Any:
    plugins = Plugins(load_entry_points=False)
    connection = Connection(server.url, "writer", options={**FAST, **options})
    with Store(db) as store:
        run_id = plan_run(
            store,
            plugins,
            read_questions(questions),
            graph_from_preset("qwq-32b"),
            SynthesisSettings(seed=7),
            connection,
        )
        return run_synthesis(store, plugins, run_id, connection)


def corpus(db: Path) -> list[tuple[str, str, str, str]]:
    """(name, text, answer, intended walk) of every synthesized trace, in item order."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT t.name, t.text, t.answer, t.meta FROM synthesis_items i "
            "JOIN traces t ON t.id = i.trace_id ORDER BY i.item"
        ).fetchall()
    finally:
        conn.close()
    return [(n, text, a, json.loads(meta)["mole_syn"]["walk"]) for n, text, a, meta in rows]


def stored_steps(db: Path) -> list[tuple[int, int, str, str]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            "SELECT item, idx, behavior, text FROM synthesis_steps ORDER BY item, idx"
        ).fetchall()
    finally:
        conn.close()


def assert_continuous(steps: list[tuple[int, int, str, str]]) -> None:
    """Per item, indices 0..n-1 with no gap or repeat, and each text from its own position."""
    by_item: dict[int, list[int]] = {}
    for item, idx, behavior, text in steps:
        by_item.setdefault(item, []).append(idx)
        if not text.startswith("Putting"):
            assert text.startswith(f"[{behavior}] step {idx} of")
    for indices in by_item.values():
        assert indices == list(range(len(indices)))


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """An uninterrupted run against a healthy server: what every other run must equal."""
    tmp_path = tmp_path_factory.mktemp("reference")
    with ChatServer(write_step) as server:
        report = synthesize(tmp_path / "ref.db", server, questions_file(tmp_path))
    assert report.status == "done"
    return tmp_path / "ref.db", len(server.requests)


# -- the walk ------------------------------------------------------------------------------------


def test_walk_reproduces_the_target_graph():
    P = preset("qwq-32b").P
    walk = random_walk(P, "E", 10_000, np.random.default_rng(0))
    assert len(walk) == 10_000 and walk[0] == "E"
    assert pearson(transition_matrix(walk_counts([walk])), P) > 0.99
    assert walk == random_walk(P, "E", 10_000, np.random.default_rng(0))  # seeded


def test_start_state_from_pi_follows_the_stationary_distribution():
    P = preset("deepseek-r1-0528").P
    rng = np.random.default_rng(1)
    firsts = [first_behavior("pi", P, rng) for _ in range(4000)]
    assert 0.55 < firsts.count("N") / 4000 < 0.64  # pi(N) = 0.594 (paper.md §3.2)
    with pytest.raises(SynthesisError, match="start must be"):
        first_behavior("X", P, rng)


def test_graph_from_a_labeled_corpus(tmp_path):
    plugins = Plugins(load_entry_points=False)
    data = write_jsonl(tmp_path / "t.jsonl", [record()])
    with Store(tmp_path / "p.db") as store:
        import_paths(store, plugins, [data])
        with pytest.raises(SelectionError, match="no transition out of D, R, E"):
            graph_from_corpus(store, Selection(annotator="alice"))
        graph = graph_from_corpus(store, Selection(annotator="alice"), alpha=0.5)
    assert np.allclose(graph.P.sum(axis=1), 1)
    assert graph.P[0, 2] == pytest.approx(1.5 / 3)  # one N -> R transition, smoothed
    assert "annotator=alice" in graph.origin


def test_answers_match():
    assert answers_match("\\frac{1}{2}", "0.5")
    assert answers_match("2\\sqrt{2}", "\\sqrt{8}")
    assert answers_match("$x + 1$", "1+x")
    assert answers_match("\\text{(A)}", "(A)")
    assert not answers_match("3", "4")
    assert not answers_match(None, "4")


# -- synthesis against the server ----------------------------------------------------------------


def test_synthesized_corpus_and_provenance(reference):
    db, requests = reference
    traces = corpus(db)
    assert len(traces) == 5
    with Store(db) as store:
        (run,) = store.conn.execute("SELECT kind, status, params, summary FROM runs").fetchall()
        # traces are stored as they finish, which depends on thread timing: order by item
        loaded = sorted(store.iter_traces(), key=lambda t: t.meta["mole_syn"]["item"])
    params, summary = json.loads(run[2]), json.loads(run[3])
    assert run[:2] == ("synthesize", "done")
    assert params["graph"]["origin"] == "preset qwq-32b"
    assert set(params["prompts"]) == {"definitions", "N", "D", "R", "E"}
    assert len(params["prompts_sha256"]) == 64
    assert params["settings"]["seed"] == 7 and params["model"] == "writer"
    assert summary["stops"] == {"answer": 5} and summary["steps"] == requests
    assert (summary["checked"], summary["correct"]) == (5, 3)
    for i, trace in enumerate(loaded):
        meta = trace.meta["mole_syn"]
        assert trace.model == "writer" and trace.source == "mole-syn:1"
        assert trace.answer == str(i * 2) and meta["correct"] == (i % 2 == 0)
        assert meta["walk"][0] == "E" and len(meta["walk"]) == len(trace.steps) == 3 + i % 3
        assert meta["backend"] == "openai-compatible" and meta["seed"] == 7
        steps = [trace.text[s.start : s.end] for s in trace.steps]
        assert steps == [f"[{b}] step {k} of question {i}" for k, b in enumerate(meta["walk"])]
        assert (
            trace.text.startswith("<think>\n") and "</think>\n\nPutting it together" in trace.text
        )
    assert_continuous(stored_steps(db))


def test_flaky_server_loses_nothing(tmp_path, reference):
    faults = {
        1: status(500, "overloaded"),
        3: status(429, "slow down", Retry_After="0"),
        5: drop(),
        7: drop_mid(),
        9: malformed(),
        11: reply("too late", delay=0.6),
    }
    with ChatServer(lambda body, n: faults.get(n) or write_step(body)) as server:
        report = synthesize(tmp_path / "p.db", server, questions_file(tmp_path), timeout=0.3)
    assert report.status == "done"
    assert len(server.requests) == reference[1] + len(faults)  # each fault cost one retry
    assert corpus(tmp_path / "p.db") == corpus(reference[0])
    assert_continuous(stored_steps(tmp_path / "p.db"))


def test_crash_then_resume_continues_where_it_stopped(tmp_path, reference):
    db, questions = tmp_path / "p.db", questions_file(tmp_path)
    healthy_for = 7
    answered: list[int] = []  # requests the server answered well, whatever order threads ran in

    def crashing(body: dict[str, Any], n: int) -> Any:
        if n < healthy_for:
            answered.append(n)
            return write_step(body)
        return status(500, "gone")

    with ChatServer(crashing) as server, pytest.raises(LLMError, match="gave up"):
        synthesize(db, server, questions, max_retries=1)
    # Once one request gives up, no new ones start and the requests in flight are closed, so how
    # many of the first seven were sent, and how many answers the server sent arrived before the
    # close, depends on thread timing; what arrived is stored, and only that counts as done.
    assert 1 <= len(answered) <= healthy_for
    stored = len(stored_steps(db))
    assert 1 <= stored <= len(answered)
    with Store(db) as store:
        assert store.count("SELECT COUNT(*) FROM runs WHERE status = 'failed'") == 1

    with ChatServer(write_step) as server:
        result = CliRunner().invoke(
            cli,
            ["synthesize", "--db", str(db), "--resume", "1", "--llm-base-url", server.url,
             "--llm-model", "writer", "--json"],
            catch_exceptions=False,
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["resumed_steps"] == stored and report["status"] == "done"
    assert len(server.requests) == reference[1] - stored  # nothing stored is asked again
    steps = stored_steps(db)
    assert len(steps) == reference[1]
    assert_continuous(steps)
    assert corpus(db) == corpus(reference[0])


class CancelAfter:
    """The app's progress dialog: the user presses Cancel after a few steps."""

    def __init__(self, steps: int) -> None:
        self.steps = steps
        self.seen = 0

    def start(self, label: str, total: int | None) -> None:
        pass

    def advance(self, amount: int = 1, note: str = "") -> None:
        if note:
            self.seen += 1

    def cancelled(self) -> bool:
        return self.seen >= self.steps


def test_cancel_keeps_steps_and_resumes(tmp_path, reference):
    db = tmp_path / "p.db"
    plugins = Plugins(load_entry_points=False)
    with ChatServer(write_step) as server, Store(db) as store:
        connection = Connection(server.url, "writer", options=FAST)
        run_id = plan_run(
            store,
            plugins,
            read_questions(questions_file(tmp_path)),
            graph_from_preset("qwq-32b"),
            SynthesisSettings(seed=7),
            connection,
        )
        with pytest.raises(Cancelled):
            run_synthesis(store, plugins, run_id, connection, CancelAfter(4))
        (status_after,) = store.conn.execute("SELECT status FROM runs").fetchone()
        kept = store.count("SELECT COUNT(*) FROM synthesis_steps")
        with pytest.raises(SynthesisError, match="same model"):
            run_synthesis(store, plugins, run_id, Connection(server.url, "other"))
        report = run_synthesis(store, plugins, run_id, connection)
    assert status_after == "cancelled" and 4 <= kept < reference[1]
    assert report.resumed_steps == kept and report.status == "done"
    assert corpus(db) == corpus(reference[0])


def test_unfinished_runs_say_how_far_each_got(tmp_path):
    """What Tools > Resume Synthesis Run lists: every run not done, with its server, key
    variable and concurrency, and how many traces and steps it stored."""
    plugins = Plugins(load_entry_points=False)
    with ChatServer(write_step) as server, Store(tmp_path / "p.db") as store:
        options = {**FAST, "api_key_env": "MY_KEY", "concurrency": 2}
        connection = Connection(server.url, "writer", options=options)
        questions = read_questions(questions_file(tmp_path, 3))
        graph = graph_from_preset("qwq-32b")
        run_id = plan_run(store, plugins, questions, graph, SynthesisSettings(seed=7), connection)
        assert run_progress(store, run_id) == RunProgress(items=3, finished=0, steps=0)
        (planned,) = unfinished_runs(store)
        assert (planned.run_id, planned.model, planned.base_url) == (run_id, "writer", server.url)
        with pytest.raises(Cancelled):
            run_synthesis(store, plugins, run_id, connection, CancelAfter(4))
        progress = run_progress(store, run_id)
        assert progress.steps == store.count("SELECT COUNT(*) FROM synthesis_steps") >= 4
        assert progress.finished == store.count(
            "SELECT COUNT(*) FROM synthesis_items WHERE trace_id IS NOT NULL"
        )
        (cancelled,) = unfinished_runs(store)
        assert cancelled == UnfinishedRun(
            run_id, "cancelled", "writer", server.url, progress, "MY_KEY", 2
        )
        assert cancelled.describe() == (
            f"run {run_id} (cancelled): {progress.finished} of 3 traces, {progress.steps} steps"
            f" stored; model writer at {server.url}"
        )
        report = run_synthesis(store, plugins, run_id, connection)
        assert unfinished_runs(store) == []
        assert run_progress(store, run_id) == RunProgress(3, 3, report.steps)


def test_api_key_never_reaches_the_project_or_logs(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    caplog.set_level(logging.DEBUG)
    db = tmp_path / "p.db"
    echo = f'{{"error": "temporarily down for key {KEY}"}}'
    with ChatServer(lambda body, n: status(503, echo) if n == 0 else write_step(body)) as server:
        result = CliRunner().invoke(
            cli,
            ["synthesize", "--db", str(db), "--questions", str(questions_file(tmp_path, 2)),
             "--preset", "qwq-32b", "--llm-base-url", server.url, "--llm-model", "writer"],
            catch_exceptions=False,
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert {h["Authorization"] for h in server.headers} == {f"Bearer {KEY}"}
    assert "retrying" in caplog.text
    assert KEY not in caplog.text and KEY not in result.output
    files = list(tmp_path.glob("p.db*"))
    assert files and all(KEY.encode() not in path.read_bytes() for path in files)


# -- fidelity and export -------------------------------------------------------------------------


def label_step(body: dict[str, Any], n: int = 0) -> Any:
    """A labeler that is right except on exploration steps, which it calls normal."""
    prompt = body["messages"][-1]["content"]
    current = prompt.split("Current step (step ", 1)[1].split("\n", 1)[1]
    behavior = current[1]
    return reply(json.dumps({"behavior": "N" if behavior == "E" else behavior, "confidence": 0.9}))


def test_fidelity_report_through_the_cli(tmp_path, monkeypatch):
    db = tmp_path / "p.db"
    with ChatServer(write_step) as server:
        result = CliRunner().invoke(
            cli,
            ["synthesize", "--db", str(db), "--questions", str(questions_file(tmp_path, 8)),
             "--preset", "gpt-oss-120b", "--start", "pi", "--seed", "3", "--llm-base-url",
             server.url, "--llm-model", "writer", "--json"],
            catch_exceptions=False,
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    with ChatServer(label_step) as labeler:
        monkeypatch.setenv("BONDSCOPE_LLM_BASE_URL", labeler.url)
        monkeypatch.setenv("BONDSCOPE_LLM_MODEL", "labeler")
        result = CliRunner().invoke(
            cli,
            ["fidelity", "--db", str(db), "--run", "1", "--labeler", "llm", "--json"],
            catch_exceptions=False,
        )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    walks = "".join(walk for *_, walk in corpus(db))
    assert report["steps"] == len(walks) == len(labeler.requests)
    assert report["accuracy"] == pytest.approx(1 - walks.count("E") / len(walks))
    assert report["per_behavior"]["E"]["recall"] == 0.0
    assert report["per_behavior"]["N"]["measured"] == walks.count("N") + walks.count("E")
    assert report["annotator"] == "model:llm@labeler"
    assert report["effective_isomer"] == (report["pearson_r"] >= 0.9)
    with Store(db) as store:  # the measured labels are ordinary label events of that run
        events = store.conn.execute(
            "SELECT COUNT(*), MIN(confidence), MAX(confidence) FROM label_events WHERE run_id = ?",
            (report["fidelity_run"],),
        ).fetchone()
    assert events == (len(walks), 0.9, 0.9)


def test_sft_chat_export(tmp_path, reference):
    plugins = Plugins(load_entry_points=False)
    out = tmp_path / "sft.jsonl"
    with Store(reference[0]) as store:
        export_traces(
            store, plugins, "sft-chat", out, trace_ids=store.trace_ids(source="mole-syn:1")
        )
    lines = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert len(lines) == 5
    # Traces are stored as the concurrent writers finish them, so find question 2 by its text.
    second = [line for line in lines if line["messages"][0]["content"] == "Question 2"]
    assert len(second) == 1
    user, assistant = second[0]["messages"]
    assert user == {"role": "user", "content": "Question 2"}
    assert assistant["role"] == "assistant"
    thinking, answer = assistant["content"].split("\n</think>\n\n")
    assert thinking.startswith("<think>\n[E] step 0 of question 2\n\n[")
    assert answer == "Putting it together, the result is \\boxed{4}."


def test_prompt_templates_render_and_can_be_replaced(tmp_path):
    synthesizer = Plugins(load_entry_points=False).synthesizers()["mole-syn"]
    built_in = synthesizer.templates(None)
    (message,) = synthesizer.messages(built_in, "Is {x} odd?", ["First.", "Second."], "R")
    text = message["content"]
    assert "self-reflection" in text and "\\boxed{}" in text and "Is {x} odd?" in text
    assert text.endswith("Reasoning so far:\nFirst.\n\nSecond.")
    assert "{definitions}" not in text and "{rationale}" not in text
    for name, body in built_in.items():
        (tmp_path / f"{name}.txt").write_text(body if name != "D" else "D for {question}", "utf-8")
    (message,) = synthesizer.messages(synthesizer.templates(tmp_path), "q?", [], "D")
    assert message["content"] == "D for q?"
    (tmp_path / "E.txt").unlink()
    with pytest.raises(InputError, match="prompt template is missing"):
        synthesizer.templates(tmp_path)


def test_fidelity_defaults_to_the_best_available_prelabeler(reference, tmp_path):
    db = tmp_path / "p.db"
    db.write_bytes(reference[0].read_bytes())
    result = CliRunner().invoke(cli, ["fidelity", "--db", str(db), "--run", "1"])
    assert result.exit_code == 0, result.output
    with Store(db) as store:
        (params,) = store.conn.execute("SELECT params FROM runs WHERE kind = 'fidelity'").fetchone()
        labels = store.count("SELECT COUNT(*) FROM current_labels")
    assert json.loads(params)["prelabeler"] in PRELABELER_PREFERENCE
    assert labels == sum(len(walk) for *_, walk in corpus(db))
    assert "intended vs measured behavior: accuracy" in result.output
    assert "Pearson r(target, measured graph)" in result.output


class Overconfident:
    """A pre-labeler plugin whose confidences are above 1: a broken plugin, not a rounding."""

    class Labeler:
        name = "overconfident"
        version = "1"
        description = "confidence 1.5 on every step"

        def predict(self, traces):
            return [[StepPrediction("D", 1.5)] * len(trace.steps) for trace in traces]

    @hookimpl
    def register_prelabelers(self, register):
        register(self.Labeler())


def test_fidelity_disables_a_prelabeler_with_a_confidence_out_of_range(reference, tmp_path):
    """Fidelity writes through the pre-label service's writer: the same check, nothing clamped."""
    db = tmp_path / "p.db"
    db.write_bytes(reference[0].read_bytes())
    plugins = Plugins(load_entry_points=False)
    plugins.register(Overconfident())
    with Store(db) as store:
        labels = store.count("SELECT COUNT(*) FROM label_events")
        with pytest.raises(PluginError, match=r"confidence is not null or a number in \[0, 1\]"):
            fidelity(store, plugins, 1, prelabeler="overconfident")
        assert store.count("SELECT COUNT(*) FROM label_events") == labels
        assert store.count("SELECT COUNT(*) FROM runs WHERE kind = 'fidelity'") == 0
    assert "overconfident" not in plugins.prelabelers()
    assert [f.plugin for f in plugins.failures] == ["Overconfident"]


def test_the_cli_the_services_and_the_plugins_share_one_set_of_defaults():
    """Each default lives in bondscope.llm_defaults; every place that offers one reads it."""
    import inspect

    from bondscope import llm_defaults
    from bondscope.cli.synthesis import synthesize_command
    from bondscope.plugins.llm_prelabeler import Settings
    from bondscope.plugins.openai_compatible import OpenAIChatClient

    cli_defaults = {param.name: param.default for param in synthesize_command.params}
    settings = SynthesisSettings()
    for name in ("start", "seed", "max_steps", "max_tokens", "step_tokens", "temperature", "top_p"):
        assert cli_defaults[name] == getattr(settings, name) == getattr(llm_defaults, name.upper())
    client = inspect.signature(OpenAIChatClient).parameters
    labeler = Settings()
    assert cli_defaults["api_key_env"] == client["api_key_env"].default == labeler.api_key_env
    assert cli_defaults["concurrency"] == client["concurrency"].default == labeler.concurrency
    assert cli_defaults["timeout"] == client["timeout"].default == labeler.timeout
    assert cli_defaults["max_retries"] == client["max_retries"].default == labeler.max_retries
    assert cli_defaults["llm_backend"] == Connection("u", "m").backend == llm_defaults.BACKEND
