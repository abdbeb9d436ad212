"""The openai-compatible backend against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from bondscope.hookspecs import LLMError
from bondscope.plugin_manager import Plugins
from bondscope.plugins.openai_compatible import OpenAIChatClient, _retry_after

from tests.chat_server import ChatServer, drop, drop_mid, malformed, reply, status

KEY = "sk-test-7f3a9c2e-do-not-leak"
FAST = {"backoff": 0.01, "max_backoff": 0.05, "timeout": 2.0}


def client(server: ChatServer, **options: object) -> OpenAIChatClient:
    backend = Plugins(load_entry_points=False).llm_backends()["openai-compatible"]
    return backend.client(server.url, "test-model", **{**FAST, **options})


def messages() -> list[dict[str, str]]:
    return [{"role": "user", "content": "2+2?"}]


def test_answer_request_and_key_header(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with ChatServer(lambda body, n: reply("4")) as server:
        answer = client(server).chat(messages(), temperature=0.5, max_tokens=8)
    assert answer == "4"
    (body,) = server.requests
    assert body == {
        "model": "test-model",
        "messages": messages(),
        "temperature": 0.5,
        "max_tokens": 8,
    }
    assert server.paths == ["/v1/chat/completions"]
    assert server.headers[0]["Authorization"] == f"Bearer {KEY}"


def test_key_from_the_named_variable_and_none_without_it(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("MY_SERVER_KEY", KEY)
    with ChatServer(lambda body, n: reply("ok")) as server:
        client(server).chat(messages())
        client(server, api_key_env="MY_SERVER_KEY").chat(messages())
    assert "Authorization" not in server.headers[0]
    assert server.headers[1]["Authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize(
    "failure",
    [
        status(500, '{"error": "boom"}'),
        status(503),
        status(429, "slow down"),
        malformed(),
        drop(),
        drop_mid(),
        reply("late", delay=0.6),  # the client's timeout is 0.2 s
    ],
    ids=["500", "503", "429", "malformed", "dropped", "dropped-mid-answer", "timeout"],
)
def test_transient_failures_are_retried(failure):
    script = [failure, failure, reply("fine")]
    with ChatServer(lambda body, n: script[n]) as server:
        answer = client(server, timeout=0.2).chat(messages())
    assert answer == "fine"
    assert len(server.requests) == 3


def test_retry_after_is_honored():
    script = [status(429, "", Retry_After="1"), reply("fine")]
    with ChatServer(lambda body, n: script[n]) as server:
        started = time.monotonic()
        answer = client(server).chat(messages())
        waited = time.monotonic() - started
    assert answer == "fine"
    assert waited >= 1.0  # the backoff alone would be about 0.01 s


def test_retry_after_forms():
    assert _retry_after("3") == 3.0
    assert _retry_after(None) is None
    assert _retry_after("soon") is None
    in_two_minutes = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 120))
    assert 100 < _retry_after(in_two_minutes) <= 120


def test_gives_up_with_a_clear_error_after_max_retries():
    with (
        ChatServer(lambda body, n: status(502, "bad gateway")) as server,
        pytest.raises(LLMError, match=r"HTTP 502 .*gave up after 3 attempts"),
    ):
        client(server, max_retries=2).chat(messages())
    assert len(server.requests) == 3


def test_malformed_answers_end_in_a_clear_error():
    with (
        ChatServer(lambda body, n: malformed()) as server,
        pytest.raises(LLMError, match=r"malformed chat-completions answer \(not JSON\)"),
    ):
        client(server, max_retries=1).chat(messages())
    with (
        ChatServer(lambda body, n: status(200, '{"choices": []}')) as server,
        pytest.raises(LLMError, match=r"malformed chat-completions answer \(no "),
    ):
        client(server, max_retries=0).chat(messages())


def test_client_errors_fail_at_once_and_never_show_the_key(monkeypatch, caplog):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    caplog.set_level(logging.DEBUG)
    echo = f'{{"error": "Incorrect API key provided: {KEY}"}}'
    script = [status(500, echo), status(401, echo)]
    with (
        ChatServer(lambda body, n: script[n]) as server,
        pytest.raises(LLMError) as raised,
    ):
        client(server).chat(messages())
    assert len(server.requests) == 2  # the 500 was retried, the 401 was not
    assert "HTTP 401" in str(raised.value) and "***" in str(raised.value)
    assert KEY not in str(raised.value)
    assert "retrying" in caplog.text
    assert KEY not in caplog.text


def test_concurrency_limit_is_shared_by_threads():
    with ChatServer(lambda body, n: reply("ok", delay=0.1)) as server:
        shared = client(server, concurrency=2)
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda _: shared.chat(messages()), range(8)))
    assert answers == ["ok"] * 8
    assert server.max_active == 2


def test_bad_configuration_is_reported():
    backend = Plugins(load_entry_points=False).llm_backends()["openai-compatible"]
    with pytest.raises(LLMError, match="unknown option"):
        backend.client("http://127.0.0.1:1/v1", "m", retries=3)
    with pytest.raises(LLMError, match="base URL"):
        backend.client("127.0.0.1:8000", "m")


def test_base_url_credentials_never_reach_messages():
    with ChatServer(lambda body, n: status(404, "no such route")) as server:
        url = server.url.replace("http://", "http://user:hunter2@")
        chat = Plugins(load_entry_points=False).llm_backends()["openai-compatible"].client(url, "m")
        with pytest.raises(LLMError) as raised:
            chat.chat(messages())
    assert "hunter2" not in str(raised.value) and "HTTP 404" in str(raised.value)
