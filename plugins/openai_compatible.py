"""LLM backend "openai-compatible": POST {base_url}/chat/completions, standard library only.

Speaks the chat-completions API that vLLM, llama.cpp's server, Ollama (`/v1`) and hosted APIs
share. The key is read from the environment at each request and only ever placed in the
Authorization header: it is redacted from every error and log message, and never returned, so it
cannot reach the project file.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import os
import random
import ssl
import threading
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bondscope import hookimpl
from bondscope.hookspecs import LLMError

log = logging.getLogger(__name__)

RETRY_STATUSES = {408, 409, 425, 429, 500, 502, 503, 504}
# Timeouts, refused or reset connections (OSError) and a socket closed mid-answer
# (IncompleteRead, BadStatusLine, RemoteDisconnected) are all worth another attempt.
TRANSIENT_ERRORS = (OSError, http.client.HTTPException)
CLIENT_OPTIONS = {"api_key_env", "timeout", "max_retries", "backoff", "max_backoff", "concurrency"}


def public_url(url: str) -> str:
    """The URL without user:password@, for provenance and messages."""
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
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 120.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        concurrency: int = 4,
    ) -> None:
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise LLMError(f"base URL must be http(s)://host[:port][/path], got {base_url!r}")
        if not model:
            raise LLMError("a model name is required")
        self.model = model
        self.base_url = public_url(base_url.rstrip("/"))
        self.api_key_env = api_key_env
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.concurrency = int(concurrency)
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._path = (parts.path or "") + "/chat/completions"
        self._slots = threading.BoundedSemaphore(max(1, self.concurrency))

    def chat(self, messages: list[dict[str, str]], **params: Any) -> str:
        """The first choice's message content; retries transient failures with backoff."""
        body = json.dumps({"model": self.model, "messages": messages, **params}).encode("utf-8")
        attempt = 0
        while True:
            try:
                with self._slots:
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
                    delay = max(delay, failure.wait)  # the server knows best when to come back
                log.warning(
                    "%s",
                    self._redact(f"{self.base_url}: {failure.reason}; retrying in {delay:.2f}s"),
                )
                time.sleep(delay)
                attempt += 1

    def _attempt(self, body: bytes) -> str:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        connection_type = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        connection = connection_type(self._host, self._port, timeout=self.timeout)
        try:
            connection.request("POST", self._path, body=body, headers=headers)
            response = connection.getresponse()
            status = response.status
            raw = response.read()
            retry_after = _retry_after(response.getheader("Retry-After"))
        except ssl.SSLCertVerificationError as error:  # retrying cannot fix a bad certificate
            raise LLMError(f"{self.base_url}: {error}") from None
        except TRANSIENT_ERRORS as error:
            raise _Retry(f"{type(error).__name__}: {error}") from None
        finally:
            connection.close()
        if status in RETRY_STATUSES or status >= 500:
            raise _Retry(f"HTTP {status} {_snippet(raw)}", retry_after)
        if status >= 400:
            raise LLMError(self._redact(f"{self.base_url}: HTTP {status} {_snippet(raw)}"))
        return _content(raw)

    def _redact(self, text: str) -> str:
        key = os.environ.get(self.api_key_env)
        return text.replace(key, "***") if key else text


def _content(raw: bytes) -> str:
    """The first choice's text; a malformed body is retried (proxies and overloaded servers
    send them now and then) and named in the final error."""
    try:
        content = json.loads(raw)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as error:
        problem = "not JSON" if isinstance(error, ValueError) else f"no {error}"
        raise _Retry(f"malformed chat-completions answer ({problem}): {_snippet(raw)}") from None
    if not isinstance(content, str):
        raise _Retry(f"malformed chat-completions answer (content is not text): {_snippet(raw)}")
    return content


def _snippet(raw: bytes, limit: int = 200) -> str:
    text = raw.decode("utf-8", "replace").strip().replace("\n", " ")
    return repr(text[:limit] + ("..." if len(text) > limit else ""))


class OpenAICompatibleBackend:
    name = "openai-compatible"
    description = "any OpenAI-compatible chat-completions server (vLLM, llama.cpp, Ollama /v1)"

    def client(self, base_url: str, model: str, **options: Any) -> OpenAIChatClient:
        """Options: api_key_env, timeout, max_retries, backoff, max_backoff, concurrency."""
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
