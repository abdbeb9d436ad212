"""A real chat-completions server on 127.0.0.1 (ephemeral port), scripted per test.

The script gets each request's JSON body and its number (0, 1, ...) and returns an Action: a
normal answer, an HTTP status, a delay (to trigger client timeouts), malformed JSON, a
connection dropped before or in the middle of the answer or reset (RST), an answer dripped one
byte at a time, or a raw chat-completions message (reasoning fields, `content: null`).
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Action:
    kind: str  # "reply", "status", "malformed", "drop", "drop_mid", "reset", "drip", "message"
    content: str = ""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def reply(content: str, delay: float = 0.0) -> Action:
    return Action("reply", content, delay=delay)


def status(code: int, body: str = "", **headers: str) -> Action:
    return Action("status", body, status=code, headers=headers)


def malformed() -> Action:
    return Action("malformed")


def drop() -> Action:
    return Action("drop")


def drop_mid() -> Action:
    return Action("drop_mid")


def reset() -> Action:
    """The connection is reset (TCP RST) instead of answered."""
    return Action("reset")


def drip(content: str, interval: float) -> Action:
    """A valid answer sent one byte every `interval` seconds: no read ever times out."""
    return Action("drip", content, delay=interval)


def message(finish_reason: str = "stop", **fields: Any) -> Action:
    """A chat-completions answer whose message has exactly these fields."""
    body = {
        "choices": [
            {"index": 0, "message": {"role": "assistant", **fields}, "finish_reason": finish_reason}
        ]
    }
    return Action("status", json.dumps(body), status=200)


Script = Callable[[dict[str, Any], int], Action]


def completion(content: str, model: str = "test-model") -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
        }
    ).encode()


class ChatServer:
    """Use as a context manager; `url` is the base URL, `requests` every body received."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.paths: list[str] = []
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    number = len(server.requests)
                    server.requests.append(body)
                    server.headers.append(dict(self.headers))
                    server.paths.append(self.path)
                    server.active += 1
                    server.max_active = max(server.max_active, server.active)
                try:
                    self.act(server.script(body, number))
                finally:
                    with server.lock:
                        server.active -= 1

            def act(self, action: Action) -> None:
                if action.kind == "reset":
                    linger = struct.pack("ii", 1, 0)
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                    self.connection.close()
                    self.close_connection = True
                    return
                if action.kind == "drip":
                    payload = completion(action.content)
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.flush()
                    try:
                        for byte in payload:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(action.delay)
                    except OSError:
                        self.close_connection = True  # the client gave up: what we test
                    return
                if action.delay:
                    time.sleep(action.delay)
                if action.kind == "drop":
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if action.kind == "reply":
                    payload, code = completion(action.content), 200
                elif action.kind == "malformed":
                    payload, code = b'{"choices": [{"message": ', 200
                else:
                    payload, code = action.content.encode(), action.status
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                declared = len(payload) + (1000 if action.kind == "drop_mid" else 0)
                self.send_header("Content-Length", str(declared))
                for name, value in action.headers.items():
                    self.send_header(name.replace("_", "-"), value)
                self.end_headers()
                self.wfile.write(payload)
                self.wfile.flush()
                if action.kind == "drop_mid":
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that timed out and left is part of the script

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> ChatServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
