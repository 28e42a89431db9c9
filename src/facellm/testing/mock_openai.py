"""A real HTTP server on 127.0.0.1 that speaks the chat-completions schema, for tests and the offline demo.

It answers with a `responder(messages) -> str` function (by default a deterministic pick of an option letter),
reports token usage, and can inject latency and faults, so retries, rate limits and failure paths run against a
real socket. A fault is an HTTP status (429, 500, ...; sent with `Retry-After` when set), "garbage" (a 200 reply
that is not JSON), "empty" (a 200 reply with no text) or "timeout" (the reply comes after `timeout_s`).
`faults` are served to the first requests in order; `fault_rate` adds random faults (seeded) after that.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Responder = Callable[[list[dict]], str]


def letter_responder(messages: list[dict]) -> str:
    """Pick A-D from a hash of the last user message, phrased like a chatty model ("The answer is (C).")."""
    text = _last_user_text(messages)
    letter = "ABCD"[int(hashlib.sha256(text.encode()).hexdigest(), 16) % 4]
    return f"The answer is ({letter})."


def describing_responder(messages: list[dict]) -> str:
    """Answer like a face-describing teacher: plain text per aspect, or a JSON object when all aspects are asked.

    The text repeats the person word the prompt states ("the person is a woman"), so answers agree with the labels.
    """
    text = _last_user_text(messages)
    person = re.search(r"the person is an? (\w+)", text)
    who = person.group(1) if person else "person"
    keys = re.findall(r'"(\w+)"', text.split("Aspects:")[0]) if "JSON object" in text else []
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    if keys:
        return json.dumps(
            {k: f"The {who} shows {k.replace('_', ' ')} details worth noting (ref {digest}-{k})." for k in keys}
        )
    about = re.search(r"describe only the (.+?) of this face", text)
    aspect = about.group(1) if about else "appearance"
    return f"Regarding the {aspect}, the {who} in this photograph shows clearly visible features (ref {digest})."


def _last_user_text(messages: list[dict]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            return " ".join(part.get("text", "") for part in content if part.get("type") == "text")
    return ""


class MockOpenAIServer:
    """Use as a context manager: `with MockOpenAIServer() as server: server.base_url -> http://127.0.0.1:PORT/v1`."""

    def __init__(
        self,
        responder: Responder = letter_responder,
        latency_s: float = 0.0,
        faults: list[int | str] | None = None,
        retry_after: float | None = None,
        api_key: str | None = None,
        fault_rate: float = 0.0,
        fault_kinds: tuple = (429, 500, "garbage", "timeout"),
        timeout_s: float = 2.0,
        seed: int = 0,
    ) -> None:
        self.responder = responder
        self.latency_s = latency_s
        self.faults = list(faults or [])
        self.retry_after = retry_after
        self.api_key = api_key
        self.fault_rate = fault_rate
        self.fault_kinds = fault_kinds
        self.timeout_s = timeout_s
        self._random = random.Random(seed)
        self.faults_served = 0
        self.requests: list[dict] = []  # every request body received, faults included
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        assert self._server, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def __enter__(self) -> MockOpenAIServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        mock = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                if mock.api_key and self.headers.get("authorization") != f"Bearer {mock.api_key}":
                    self._send(401, {"error": {"message": "invalid API key"}})
                elif self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": "mock-vlm", "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    self._send(400, {"error": {"message": "invalid JSON"}})
                    return
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"unknown path {self.path}"}})
                    return
                if mock.api_key and self.headers.get("authorization") != f"Bearer {mock.api_key}":
                    self._send(401, {"error": {"message": "invalid API key"}})
                    return
                with mock._lock:
                    mock.requests.append(body)
                    fault = mock.faults.pop(0) if mock.faults else None
                    if fault is None and mock.fault_rate and mock._random.random() < mock.fault_rate:
                        fault = mock._random.choice(mock.fault_kinds)
                    mock.faults_served += fault is not None
                    mock.in_flight += 1
                    mock.max_in_flight = max(mock.max_in_flight, mock.in_flight)
                try:
                    time.sleep(mock.latency_s)
                    if fault == "timeout":
                        time.sleep(mock.timeout_s)
                    if fault == "garbage":
                        self._send_raw(200, b"<html>upstream hiccup</html>")
                        return
                    if isinstance(fault, int):
                        headers = {"Retry-After": str(mock.retry_after)} if mock.retry_after is not None else {}
                        self._send(fault, {"error": {"message": f"injected fault {fault}"}}, headers)
                        return
                    text = "" if fault == "empty" else mock.responder(body.get("messages", []))
                    if body.get("stream"):
                        self._stream(body.get("model", "mock-vlm"), text)
                        return
                    prompt_tokens = len(json.dumps(body.get("messages", []))) // 4
                    self._send(200, _completion(body.get("model", "mock-vlm"), text, prompt_tokens))
                finally:
                    with mock._lock:
                        mock.in_flight -= 1

            def _stream(self, model: str, text: str) -> None:
                """The answer as server-sent events, one word per chunk, then [DONE]."""
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                words = text.split(" ")
                try:
                    for i, word in enumerate(words):
                        delta = {"content": word + (" " if i < len(words) - 1 else "")}
                        chunk = {
                            "object": "chat.completion.chunk",
                            "model": model,
                            "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
                        }
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                        self.wfile.flush()
                    self.wfile.write(b"data: [DONE]\n\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
                self._send_raw(status, json.dumps(payload).encode(), headers)

            def _send_raw(self, status: int, data: bytes, headers: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (e.g. its timeout fired first)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _completion(model: str, text: str, prompt_tokens: int) -> dict:
    completion_tokens = max(1, len(text) // 4)
    return {
        "id": "chatcmpl-mock",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
