"""LLM backend "openai-compatible": POST {base_url}/chat/completions, standard library only.

Speaks the chat-completions API that vLLM, llama.cpp's server, Ollama (`/v1`) and hosted APIs
share. The key is read from the environment at each request and only ever placed in the
Authorization header: it is redacted from every error and log message, and never returned, so it
cannot reach the project file. A base URL may not carry a query string or a password (they end up
in provenance); redirects are reported, never followed (the key would go to the new host).

A misbehaving server cannot hang or swamp the caller: each attempt has an overall deadline
(`timeout`, enforced by a watchdog that closes the socket, so a server that drips one byte a
second is cut off too), an answer larger than `max_body` bytes is refused, and a Retry-After
longer than `max_wait` (300 s) ends the call instead of sleeping for a day. `close()` aborts
requests in flight and retry sleeps (Ctrl+C in the synthesis loop).

Reasoning models: the answer is a `ChatReply`, a `str` (the message content) that also carries
the `reasoning` (`reasoning_content` or `reasoning`) and the `finish_reason`. An answer cut off by
the token budget before any content (`content: null`, `finish_reason: length`) is a clear error,
not a malformed answer to retry.
"""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import json
import logging
import os
import random
import re
import socket
import ssl
import threading
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bondscope import hookimpl, llm_defaults
from bondscope.hookspecs import LLMError

log = logging.getLogger(__name__)

RETRY_STATUSES = {408, 409, 425, 429, 500, 502, 503, 504}
# Timeouts, refused or reset connections (OSError) and a socket closed mid-answer
# (IncompleteRead, BadStatusLine, RemoteDisconnected) are all worth another attempt.
TRANSIENT_ERRORS = (OSError, http.client.HTTPException)
CLIENT_OPTIONS = {
    "api_key_env",
    "timeout",
    "max_retries",
    "backoff",
    "max_backoff",
    "concurrency",
    "max_body",
    "max_wait",
}
MAX_WAIT = 300.0  # the longest Retry-After honoured, in seconds
MAX_BODY = 16 << 20  # a chat answer is kilobytes; 16 MiB leaves room for long reasoning
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
REDIRECTS = {301, 302, 303, 307, 308}


class ChatReply(str):
    """The message content, with what a reasoning model sent beside it."""

    reasoning: str = ""
    finish_reason: str | None = None

    def __new__(cls, content: str, reasoning: str = "", finish_reason: str | None = None):
        reply = super().__new__(cls, content)
        reply.reasoning = reasoning
        reply.finish_reason = finish_reason
        return reply


def public_url(url: str) -> str:
    """The URL without user:password@, query and fragment, for provenance and messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class _Retry(Exception):
    """One failed attempt worth repeating; `wait` is the server's Retry-After, if it sent one."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class OpenAIChatClient:
    """A thread-safe client: each request opens its own connection; a semaphore caps how many
    run at once, shared by every thread using this client."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str = llm_defaults.API_KEY_ENV,
        timeout: float = llm_defaults.TIMEOUT_S,
        max_retries: int = llm_defaults.MAX_RETRIES,
        backoff: float = llm_defaults.BACKOFF_S,
        max_backoff: float = llm_defaults.MAX_BACKOFF_S,
        concurrency: int = llm_defaults.CONCURRENCY,
        max_body: int = MAX_BODY,
        max_wait: float = MAX_WAIT,
    ) -> None:
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise LLMError(
                f"base URL must be http(s)://host[:port][/path], got {public_url(base_url)!r}"
            )
        if parts.query or parts.fragment:
            raise LLMError(
                f"base URL {public_url(base_url)!r} has a query string: it would be stored with "
                "the run; put a key in an environment variable and name it with api_key_env"
            )
        if not model:
            raise LLMError("a model name is required")
        if not ENV_NAME.fullmatch(api_key_env or ""):
            raise LLMError(
                "api_key_env takes the NAME of the environment variable that holds the key "
                f"(e.g. {llm_defaults.API_KEY_ENV}), not the key itself"
            )
        if api_key_env not in os.environ:
            log.warning("%s is not set: requests go out without an API key", api_key_env)
        self.model = model
        self.base_url = public_url(base_url.rstrip("/"))
        self.api_key_env = api_key_env
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.concurrency = int(concurrency)
        self.max_body = int(max_body)
        self.max_wait = float(max_wait)
        self._closed = threading.Event()
        self._open: set[http.client.HTTPConnection] = set()
        self._open_lock = threading.Lock()
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._path = (parts.path or "") + "/chat/completions"
        self._slots = threading.BoundedSemaphore(max(1, self.concurrency))

    def chat(self, messages: list[dict[str, str]], **params: Any) -> ChatReply:
        """The first choice's message; retries transient failures with backoff."""
        body = json.dumps({"model": self.model, "messages": messages, **params}).encode("utf-8")
        attempt = 0
        while True:
            try:
                with self._slots:
                    self._check_open()
                    return self._attempt(body)
            except _Retry as failure:
                if attempt >= self.max_retries:
                    raise LLMError(
                        self._redact(
                            f"{self.base_url}: {failure.reason}; gave up after "
                            f"{attempt + 1} attempts"
                        )
                    ) from None
                delay = min(self.max_backoff, self.backoff * 2**attempt) * random.uniform(0.5, 1)
                if failure.wait is not None:
                    if failure.wait > self.max_wait:
                        raise LLMError(
                            self._redact(
                                f"{self.base_url}: {failure.reason}; the server asks to wait "
                                f"{failure.wait:.0f} s (more than max_wait, "
                                f"{self.max_wait:g} s): try again later"
                            )
                        ) from None
                    delay = max(delay, failure.wait)  # the server knows best when to come back
                log.warning(
                    "%s",
                    self._redact(f"{self.base_url}: {failure.reason}; retrying in {delay:.2f}s"),
                )
                self._closed.wait(delay)
                attempt += 1

    def close(self) -> None:
        """Abort the requests in flight and the retry sleeps; later calls fail at once."""
        self._closed.set()
        with self._open_lock:
            for connection in list(self._open):
                _shut(connection)

    def _check_open(self) -> None:
        if self._closed.is_set():
            raise LLMError(f"{self.base_url}: the client was closed (cancelled)")

    def _attempt(self, body: bytes) -> ChatReply:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        connection_type = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        connection = connection_type(self._host, self._port, timeout=self.timeout)
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            _shut(connection)

        # The socket timeout bounds each read; the watchdog bounds the whole attempt.
        watchdog = threading.Timer(self.timeout, expire)
        watchdog.daemon = True
        watchdog.start()
        try:
            # Registered once its socket exists, then checked: a close() before that could not
            # shut it, and the request would wait out its whole timeout.
            connection.connect()
            with self._open_lock:
                self._open.add(connection)
            self._check_open()
            connection.request("POST", self._path, body=body, headers=headers)
            response = connection.getresponse()
            status = response.status
            location = response.getheader("Location") or ""
            retry_after = _retry_after(response.getheader("Retry-After"))
            raw = self._read_capped(response)
            if expired.is_set():  # the watchdog cut the answer short
                raise TimeoutError
        except ssl.SSLCertVerificationError as error:  # retrying cannot fix a bad certificate
            raise LLMError(f"{self.base_url}: {error}") from None
        except TRANSIENT_ERRORS as error:
            self._check_open()
            if expired.is_set():
                raise _Retry(f"no complete answer within {self.timeout:g} s") from None
            raise _Retry(f"{type(error).__name__}: {error}") from None
        finally:
            watchdog.cancel()
            with self._open_lock:
                self._open.discard(connection)
            connection.close()
        if status in REDIRECTS:
            raise LLMError(
                self._redact(
                    f"{self.base_url}: HTTP {status} redirect to {public_url(location)!r}, not "
                    "followed (the API key would go with it); use that address as the base URL"
                )
            )
        if status in RETRY_STATUSES or status >= 500:
            raise _Retry(f"HTTP {status} {_snippet(raw)}", retry_after)
        if status >= 400:
            raise LLMError(self._redact(f"{self.base_url}: HTTP {status} {_snippet(raw)}"))
        return _content(raw, self.base_url)

    def _read_capped(self, response: http.client.HTTPResponse) -> bytes:
        declared = response.getheader("Content-Length")
        if declared and declared.isdigit() and int(declared) > self.max_body:
            raise LLMError(self._too_large())
        chunks, size = [], 0
        while chunk := response.read(1 << 16):
            size += len(chunk)
            if size > self.max_body:
                raise LLMError(self._too_large())
            chunks.append(chunk)
        if declared and declared.isdigit() and size < int(declared):
            raise http.client.IncompleteRead(b"", int(declared) - size)
        return b"".join(chunks)

    def _too_large(self) -> str:
        return (
            f"{self.base_url}: the answer is larger than max_body ({self.max_body} bytes); refused"
        )

    def _redact(self, text: str) -> str:
        key = os.environ.get(self.api_key_env)
        return text.replace(key, "***") if key else text


def _shut(connection: http.client.HTTPConnection) -> None:
    """Wake a thread blocked reading this connection (closing alone does not)."""
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _content(raw: bytes, base_url: str) -> ChatReply:
    """The first choice's message; a malformed body is retried (proxies and overloaded servers
    send them now and then) and named in the final error."""
    try:
        choice = json.loads(raw)["choices"][0]
        message = choice["message"]
        content = message["content"]
    except (ValueError, KeyError, IndexError, TypeError) as error:
        problem = "not JSON" if isinstance(error, ValueError) else f"no {error}"
        raise _Retry(f"malformed chat-completions answer ({problem}): {_snippet(raw)}") from None
    reasoning = message.get("reasoning_content") or message.get("reasoning") or ""
    finish_reason = choice.get("finish_reason")
    if not isinstance(reasoning, str):
        reasoning = ""
    if content is None and finish_reason == "length":
        raise LLMError(
            f"{base_url}: the model spent its whole max_tokens budget "
            f"{'reasoning' if reasoning else 'thinking'} before it answered "
            "(content null, finish_reason length); raise max_tokens"
        )
    if content is None and reasoning:
        content = ""  # a reasoning model that answered only in its reasoning field
    if not isinstance(content, str):
        raise _Retry(f"malformed chat-completions answer (content is not text): {_snippet(raw)}")
    return ChatReply(content, reasoning, finish_reason if isinstance(finish_reason, str) else None)


def _snippet(raw: bytes, limit: int = 200) -> str:
    text = raw.decode("utf-8", "replace").strip().replace("\n", " ")
    return repr(text[:limit] + ("..." if len(text) > limit else ""))


class OpenAICompatibleBackend:
    name = "openai-compatible"
    description = "any OpenAI-compatible chat-completions server (vLLM, llama.cpp, Ollama /v1)"

    def client(self, base_url: str, model: str, **options: Any) -> OpenAIChatClient:
        """Options: api_key_env, timeout, max_retries, backoff, max_backoff, concurrency,
        max_body, max_wait."""
        unknown = set(options) - CLIENT_OPTIONS
        if unknown:
            raise LLMError(
                f"unknown option(s) {', '.join(sorted(unknown))} "
                f"(known: {', '.join(sorted(CLIENT_OPTIONS))})"
            )
        return OpenAIChatClient(base_url, model, **options)


@hookimpl
def register_llm_backends(register) -> None:  # noqa: ANN001 - the host's register callback
    register(OpenAICompatibleBackend())
