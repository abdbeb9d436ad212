"""Misbehaving chat servers (reliability issue, findings 6, 7, 12 and the 301 of 15), each a real
server on 127.0.0.1: nothing hangs past its deadline, nothing huge is read, nothing follows a
redirect with the key, reasoning models are understood, and keys never reach the project."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time

import pytest
from bondscope import Step, Trace
from bondscope.hookspecs import LLMError
from bondscope.plugin_manager import Plugins
from bondscope.plugins.openai_compatible import OpenAIChatClient
from bondscope.services.synthesis import (
    Connection,
    SynthesisSettings,
    graph_from_preset,
    plan_run,
    read_questions,
    run_synthesis,
    split_reasoning,
)
from bondscope.store import Store

from tests.chat_server import ChatServer, drip, message, reply, reset, status
from tests.helpers import dump, write_jsonl
from tests.test_synthesis import FAST, write_step

KEY = "sk-hostile-5d1e9a-never-store"


def client(server: ChatServer, **options: object) -> OpenAIChatClient:
    backend = Plugins(load_entry_points=False).llm_backends()["openai-compatible"]
    return backend.client(server.url, "m", **{**FAST, **options})


def ask(chat: OpenAIChatClient) -> str:
    return chat.chat([{"role": "user", "content": "2+2?"}])


def test_a_slow_drip_is_cut_at_the_deadline():
    """Finding 6: one byte every 0.05 s never trips a socket timeout of 0.5 s; the whole attempt
    must still end within its deadline."""
    with ChatServer(lambda body, n: drip("4", 0.05)) as server:
        began = time.monotonic()
        with pytest.raises(LLMError, match=r"no complete answer within 0.5 s; gave up after 2"):
            ask(client(server, timeout=0.5, max_retries=1))
        assert time.monotonic() - began < 3


def test_a_huge_answer_is_refused_unread():
    huge = "x" * (2 << 20)
    with ChatServer(lambda body, n: status(200, huge)) as server:
        with pytest.raises(LLMError, match=r"larger than max_body \(65536 bytes\)"):
            ask(client(server, max_body=65536))
        assert len(server.requests) == 1  # refused for good, not retried


def test_retry_after_is_capped():
    """Finding 6: Retry-After of a day (or 2.3e9 s) was honoured."""
    for wait in ("86400", "2300000000"):
        answer = status(429, "later", Retry_After=wait)
        with ChatServer(lambda body, n, answer=answer: answer) as server:
            began = time.monotonic()
            with pytest.raises(LLMError, match=r"asks to wait \d+ s \(more than max_wait"):
                ask(client(server, max_wait=30))
            assert time.monotonic() - began < 2


def test_close_aborts_a_stuck_request():
    """Ctrl+C during a stuck request: the synthesis loop closes the client, which ends it."""
    with ChatServer(lambda body, n: reply("late", delay=5)) as server:
        chat = client(server, timeout=30)
        failure: list[BaseException] = []

        def call() -> None:
            try:
                ask(chat)
            except LLMError as error:
                failure.append(error)

        worker = threading.Thread(target=call)
        worker.start()
        time.sleep(0.3)
        began = time.monotonic()
        chat.close()
        worker.join(timeout=3)
        assert not worker.is_alive() and time.monotonic() - began < 1
    assert "closed" in str(failure[0])


def test_connection_resets_are_retried():
    script = [reset(), reset(), reply("fine")]
    with ChatServer(lambda body, n: script[n]) as server:
        assert ask(client(server)) == "fine"
        assert len(server.requests) == 3


def test_a_redirect_is_reported_and_not_followed(monkeypatch):
    """Finding 15: a 301 was reported as "not JSON: ''"; the key must not follow it."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with ChatServer(lambda body, n: reply("should not be asked")) as other:
        target = other.url.replace("127.0.0.1", "localhost") + "/chat/completions?token=abc"
        with (
            ChatServer(lambda body, n: status(301, "", Location=target)) as server,
            pytest.raises(LLMError) as raised,
        ):
            ask(client(server))
        assert other.requests == []
    text = str(raised.value)
    assert "HTTP 301 redirect to" in text and "not followed" in text
    assert "localhost" in text and "token=abc" not in text and KEY not in text


def test_reasoning_models():
    """Finding 7: `content: null` with `finish_reason: length` was retried as malformed until the
    run gave up; `reasoning_content` / `reasoning` were ignored."""
    cut = message("length", content=None, reasoning_content="Let me think about 2+2 for a")
    with ChatServer(lambda body, n: cut) as server:
        with pytest.raises(LLMError, match="whole max_tokens budget .* raise max_tokens"):
            ask(client(server, max_retries=5))
        assert len(server.requests) == 1
    for field in ("reasoning_content", "reasoning"):
        answer = message(content="4", **{field: "2 and 2 make 4."})
        with ChatServer(lambda body, n, answer=answer: answer) as server:
            got = ask(client(server))
        assert got == "4" and got.reasoning == "2 and 2 make 4." and got.finish_reason == "stop"


def test_think_blocks_are_kept_out_of_step_text():
    assert split_reasoning("<think>hmm, 2+2</think>\n\nSo the sum is 4.") == (
        "So the sum is 4.",
        "hmm, 2+2",
    )
    assert split_reasoning("half a thought</think>Then x = 3.") == ("Then x = 3.", "half a thought")
    assert split_reasoning("Plain step.") == ("Plain step.", "")


def test_synthesized_traces_hold_no_think_block_and_keep_it_in_meta(tmp_path):
    def thinking_writer(body, n):
        action = write_step(body)
        action.content = f"<think>planning step {n}</think>\n" + action.content
        return action

    questions = write_jsonl(tmp_path / "q.jsonl", [{"question": "Question 1", "answer": "2"}])
    db = tmp_path / "p.db"
    with ChatServer(thinking_writer) as server, Store(db) as store:
        plugins = Plugins(load_entry_points=False)
        connection = Connection(server.url, "writer", options=FAST)
        settings = SynthesisSettings(seed=3)
        run_id = plan_run(
            store,
            plugins,
            read_questions(questions),
            graph_from_preset("qwq-32b"),
            settings,
            connection,
        )
        report = run_synthesis(store, plugins, run_id, connection)
        assert report.traces == 1
        text, meta = store.conn.execute("SELECT text, meta FROM traces").fetchone()
    assert text.count("<think>") == 1 and "planning step" not in text  # only the trace's own
    assert "planning step 0" in meta


def test_keys_never_reach_the_project(tmp_path, monkeypatch, caplog):
    """Finding 12: a key in the base URL's query string was stored in the runs table and every
    trace's meta; a key pasted into api_key_env was stored and requests went out without one."""
    caplog.set_level(logging.DEBUG)
    questions = read_questions(write_jsonl(tmp_path / "q.jsonl", [{"question": "Q 1"}]))
    db = tmp_path / "p.db"
    Store(db).close()
    before = dump(db)
    plugins = Plugins(load_entry_points=False)
    with ChatServer(write_step) as server, Store(db) as store:
        for connection in (
            Connection(server.url + f"?api_key={KEY}", "writer", options=FAST),
            Connection(server.url, "writer", options={**FAST, "api_key_env": KEY}),
        ):
            with pytest.raises(LLMError) as raised:
                plan_run(
                    store,
                    plugins,
                    questions,
                    graph_from_preset("qwq-32b"),
                    SynthesisSettings(),
                    connection,
                )
            assert KEY not in str(raised.value)
        assert "api_key_env takes the NAME" in str(raised.value)
        assert server.requests == []
    assert dump(db) == before
    assert KEY not in caplog.text

    with ChatServer(write_step) as server, Store(db) as store:
        url = server.url.replace("http://", f"http://user:{KEY}@")
        connection = Connection(url, "writer", options=FAST)
        settings = SynthesisSettings(n=1)
        run_id = plan_run(
            store, plugins, questions, graph_from_preset("qwq-32b"), settings, connection
        )
        run_synthesis(store, plugins, run_id, connection)
    conn = sqlite3.connect(db)
    stored = "\n".join(conn.iterdump())
    conn.close()
    assert "mole_syn" in stored and KEY not in stored


def test_a_failed_llm_prelabel_ends_the_requests_still_in_flight():
    """The llm pre-labeler's pool waited for every stuck request before reporting a failure
    (or a Ctrl+C); now it closes the client, so the failure comes at once."""

    def script(body, n):
        if "step 1)" in body["messages"][-1]["content"]:
            return reply("I cannot tell.")  # names no behavior, twice: the step fails
        return reply('{"behavior": "N"}', delay=20)

    labeler = Plugins(load_entry_points=False).prelabelers()["llm"]
    text = "First a. Then b. Then c."
    trace = Trace(id="t", text=text, steps=[Step(0, 8), Step(9, 16), Step(17, 24)])
    with ChatServer(script) as server:
        configured = labeler.configure(
            base_url=server.url, model="judge", concurrency=3, timeout=30
        )
        began = time.monotonic()
        with pytest.raises(LLMError, match="names no behavior"):
            configured.predict([trace])
        assert time.monotonic() - began < 5
