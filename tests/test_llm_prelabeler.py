"""The "llm" pre-labeler: answer parsing, configuration, and requests to a real local server."""

from __future__ import annotations

import json

import pytest
from bondscope import Step, Trace
from bondscope.hookspecs import LLMError
from bondscope.plugin_manager import Plugins
from bondscope.plugins.llm_prelabeler import parse_label

from tests.chat_server import ChatServer, reply


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ('{"behavior": "D", "confidence": 0.8}', ("D", 0.8)),
        ('```json\n{"behavior": "r", "confidence": "85%"}\n```', ("R", 0.85)),
        ('<think>maybe {"behavior": "N"}</think>{"label": "exploration"}', ("E", None)),
        ('{"behavior": "E", "confidence": 7}', ("E", 0.07)),
        ('{"behavior": "N", "confidence": true}', ("N", None)),
        ("This step is self-reflection.", ("R", None)),
        ("Deep reasoning", ("D", None)),
        ("N", ("N", None)),
        ("I cannot tell.", None),
        ('{"behavior": "X"}', None),
    ],
)
def test_parse_label(answer, expected):
    assert parse_label(answer) == expected


def trace() -> Trace:
    text = "Let x = 2.\n\nThen x^2 = 4.\n\nWait, check: 2*2 = 4.\n\nOr use a table?"
    spans, start = [], 0
    for part in text.split("\n\n"):
        spans.append(Step(start, start + len(part)))
        start += len(part) + 2
    return Trace(id="t", text=text, question="What is x^2?", steps=spans)


def labeler(plugins: Plugins | None = None):  # noqa: ANN201 - the registered plugin object
    return (plugins or Plugins(load_entry_points=False)).prelabelers()["llm"]


def test_builtin_but_unusable_until_configured(monkeypatch):
    monkeypatch.delenv("BONDSCOPE_LLM_BASE_URL", raising=False)
    monkeypatch.delenv("BONDSCOPE_LLM_MODEL", raising=False)
    found = labeler()
    assert found.version == "unconfigured"
    with pytest.raises(LLMError, match="not configured: set BONDSCOPE_LLM_BASE_URL"):
        found.predict([trace()])


def test_labels_each_step_with_its_context(monkeypatch):
    answers = iter(
        [
            '{"behavior": "N", "confidence": 0.9}',
            '{"behavior": "D"}',
            "Self-reflection: it verifies the square.",
            '{"behavior": "E", "confidence": 0.6}',
        ]
    )
    with ChatServer(lambda body, n: reply(next(answers))) as server:
        monkeypatch.setenv("BONDSCOPE_LLM_BASE_URL", server.url)
        monkeypatch.setenv("BONDSCOPE_LLM_MODEL", "judge-7b")
        monkeypatch.setenv("BONDSCOPE_LLM_CONTEXT", "2")
        monkeypatch.setenv("BONDSCOPE_LLM_CONCURRENCY", "1")  # answers in step order
        found = labeler()
        (predictions,) = found.predict([trace()])
    assert found.version == "judge-7b"
    assert [(p.behavior, p.confidence) for p in predictions] == [
        ("N", 0.9),
        ("D", None),
        ("R", None),
        ("E", 0.6),
    ]
    last = server.requests[3]
    system, user = last["messages"]
    assert "deep reasoning" in system["content"] and "JSON" in system["content"]
    assert last["model"] == "judge-7b" and last["temperature"] == 0
    content = user["content"]
    assert content.startswith("Question:\nWhat is x^2?")
    assert "[step 2] Then x^2 = 4." in content and "[step 3] Wait, check" in content
    assert "Let x = 2." not in content  # only the previous 2 steps
    assert content.split("Current step (step 4):\n")[1].startswith("Or use a table?")


def test_configure_and_retry_an_unparsable_answer():
    script = ["hmm", '{"behavior": "D", "confidence": 1}', "?", "no idea"]
    with ChatServer(lambda body, n: reply(script[n])) as server:
        configured = labeler().configure(
            base_url=server.url, model="judge", concurrency=1, backoff=0.01
        )
        one = Trace(id="t", text="Since a|b, b = ka.", steps=[Step(0, 17)])
        assert configured.version == "judge"
        ((prediction,),) = configured.predict([one])
        assert (prediction.behavior, prediction.confidence) == ("D", 1.0)
        with pytest.raises(LLMError, match="names no behavior"):
            configured.predict([one])
    assert len(server.requests) == 4
    with pytest.raises(LLMError, match="unknown llm pre-labeler option"):
        labeler().configure(temperature=1)


def test_many_traces_keep_their_order():
    def by_step(body: dict, n: int) -> object:
        current = body["messages"][-1]["content"].split("Current step (step ")[1]
        return reply(json.dumps({"behavior": "NDRE"[int(current.split(")")[0]) % 4]}))

    with ChatServer(by_step) as server:
        configured = labeler().configure(base_url=server.url, model="judge", concurrency=4)
        results = configured.predict([trace(), trace(), trace()])
    assert [[p.behavior for p in r] for r in results] == [["D", "R", "E", "N"]] * 3


def test_prelabel_command_with_the_llm_against_a_local_server(tmp_path, monkeypatch):
    """`bondscope prelabel --labeler llm`: the pre-label service hands the classifier's ONNX
    provider only to pre-labelers that take one, so the llm one runs (it used to fail with
    "unknown llm pre-labeler option(s): provider" and be disabled)."""
    import sqlite3

    from bondscope.cli import cli
    from bondscope.services.demo import ensure_demo_project
    from click.testing import CliRunner

    def by_step(body: dict, n: int) -> object:
        current = body["messages"][-1]["content"].split("Current step (step ")[1]
        step = int(current.split(")")[0]) - 1
        return reply(json.dumps({"behavior": "NDRE"[step % 4], "confidence": 0.75}))

    db = ensure_demo_project(tmp_path / "demo.bondscope")
    with ChatServer(by_step) as server:
        monkeypatch.setenv("BONDSCOPE_LLM_BASE_URL", server.url)
        monkeypatch.setenv("BONDSCOPE_LLM_MODEL", "judge-7b")
        monkeypatch.setenv("BONDSCOPE_LLM_BACKOFF", "0.01")
        result = CliRunner().invoke(
            cli, ["prelabel", "--db", str(db), "--labeler", "llm", "--traces", "deepseek-r1/*"]
        )
    assert result.exit_code == 0, result.output
    assert "labeled as model:llm@judge-7b" in result.output
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT step, behavior, confidence FROM current_labels c JOIN traces t"
            " ON t.id = c.trace_id WHERE annotator = 'model:llm@judge-7b'"
            " AND t.name = 'deepseek-r1/no_base_solution/scenario_0' ORDER BY step"
        ).fetchall()
    assert len(rows) == 51 == len(server.requests)
    assert rows == [(step, "NDRE"[step % 4], 0.75) for step in range(51)]
