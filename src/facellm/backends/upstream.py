"""`UpstreamBackend`: `facellm serve --upstream URL` answers with any OpenAI-compatible engine (vLLM, llama.cpp,
Ollama, another facellm) while this server keeps the web page, `/v1/faces`, `--ground`, the API key and the
request limits in front of it. Unlike `OpenAIBackend` (batch work: retries with backoff, rate limits, token
usage), it is a proxy: no retries, streaming, and the upstream's status passed on to the server's client.

Requests of a batch go to the upstream concurrently; each one that fails fails alone, with an `UpstreamError`
carrying the status this server answers: 503 when the upstream cannot be reached, 502 when it answers with a
server error or something that is not a chat completion, and the upstream's own 4xx (for example a prompt over
its context) passed on. The upstream's key comes from FACELLM_API_KEY / OPENAI_API_KEY, never this server's.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from facellm.backends.base import Backend, Prompt, Reply
from facellm.backends.openai_client import EndpointConfig, to_openai_messages
from facellm.conversation import GenerationSettings
from facellm.errors import BackendError, Cause


class UpstreamError(BackendError):
    """The upstream engine failed this request; `status` is what this server answers (502, 503 or a 4xx)."""

    def __init__(self, status: int, message: str, hint: str | None = None) -> None:
        cause = Cause.CONNECTION if status == 503 else Cause.SERVER_ERROR if status >= 500 else Cause.CLIENT_ERROR
        super().__init__(message, hint, cause)
        self.status = status


class UpstreamBackend(Backend):
    def __init__(self, base_url: str, model: str | None = None, timeout_s: float = 300.0, concurrency: int = 16):
        import httpx

        self.config = EndpointConfig(base_url, model or "unresolved", concurrency=concurrency, timeout_s=timeout_s)
        self.base = self.config.base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {self.config.api_key}"} if self.config.api_key else {}
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self._http = httpx.Client(timeout=timeout_s, headers=headers, limits=limits, trust_env=False)
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="facellm-upstream")
        self._model = model
        self.chunk_size = concurrency
        if self._model is None:
            try:
                self._resolve()
            except UpstreamError:
                pass  # not up yet: resolved on the first request, which answers 503 until then

    @property
    def name(self) -> str:  # type: ignore[override]  # known only once the upstream answers
        return self._model or f"upstream at {self.base}"

    def _resolve(self) -> str:
        """The upstream's first model id (`GET /models`), when `--upstream-model` was not given."""
        if self._model is None:
            payload = self._json(self._send("GET", "/models"))
            try:
                self._model = str(payload["data"][0]["id"])
            except (KeyError, IndexError, TypeError):
                raise UpstreamError(502, f"{self.base}/models lists no model", "pass --upstream-model NAME") from None
        return self._model

    def _send(self, method: str, path: str, body: dict | None = None, stream: bool = False):
        import httpx

        try:
            request = self._http.build_request(method, self.base + path, json=body)
            response = self._http.send(request, stream=stream)
        except httpx.TimeoutException:
            raise UpstreamError(
                503,
                f"the upstream at {self.base} did not answer in time",
                "check that the engine is running and not overloaded",
            ) from None
        except httpx.TransportError as exc:
            raise UpstreamError(
                503,
                f"the upstream at {self.base} cannot be reached ({type(exc).__name__})",
                "start the engine, or check --upstream",
            ) from None
        if response.status_code != 200:
            text = response.read().decode("utf-8", "replace") if stream else response.text
            response.close()
            detail = _error_message(text)
            if 400 <= response.status_code < 500:
                raise UpstreamError(response.status_code, f"the upstream refused the request: {detail}")
            raise UpstreamError(502, f"the upstream answered HTTP {response.status_code}: {detail}")
        return response

    def _json(self, response) -> dict:
        try:
            payload = response.json()
        except ValueError:
            raise UpstreamError(
                502,
                f"the upstream at {self.base} did not answer JSON",
                "is --upstream an OpenAI-compatible base URL ending in /v1?",
            ) from None
        if not isinstance(payload, dict):
            raise UpstreamError(502, f"the upstream at {self.base} answered something other than a JSON object")
        return payload

    def _body(self, prompt: Prompt, settings: GenerationSettings, stream: bool) -> dict:

        body = {
            "model": self._resolve(),
            "messages": to_openai_messages(prompt.turns),
            "max_tokens": settings.max_new_tokens,
            "stream": stream,
            "temperature": settings.temperature if settings.do_sample else 0.0,
        }
        if settings.do_sample:
            body["top_p"] = settings.top_p
        if settings.seed is not None:
            body["seed"] = settings.seed
        return body

    def _answer(self, prompt: Prompt, settings: GenerationSettings) -> Reply | UpstreamError:
        try:
            payload = self._json(self._send("POST", "/chat/completions", self._body(prompt, settings, False)))
            try:
                return Reply(payload["choices"][0]["message"]["content"] or "")
            except (KeyError, IndexError, TypeError):
                raise UpstreamError(
                    502,
                    f"the upstream at {self.base} answered without choices[0].message",
                    "is it a chat-completions endpoint?",
                ) from None
        except UpstreamError as exc:
            return exc

    def answer(self, prompts: Sequence[Prompt], settings: GenerationSettings) -> list[Reply | Exception]:
        """Each prompt's reply, or the `UpstreamError` that ended it (that request alone fails)."""
        return list(self._pool.map(lambda p: self._answer(p, settings), prompts))

    def stream(
        self, prompt: Prompt, settings: GenerationSettings, cancel: threading.Event | None = None
    ) -> Iterator[str]:
        response = self._send("POST", "/chat/completions", self._body(prompt, settings, True), stream=True)
        try:
            for line in response.iter_lines():
                if cancel is not None and cancel.is_set():
                    return  # closing the response below tells the upstream to stop
                if not line.startswith("data:") or line.strip() == "data: [DONE]":
                    continue
                try:
                    event = json.loads(line[5:])
                except ValueError:
                    raise UpstreamError(502, "the upstream sent a stream event that is not JSON") from None
                if "error" in event:
                    raise UpstreamError(502, f"the upstream failed mid-stream: {_error_message(json.dumps(event))}")
                piece = ((event.get("choices") or [{}])[0].get("delta") or {}).get("content")
                if piece:
                    yield piece
        finally:
            response.close()


def _error_message(text: str) -> str:
    """The message of an OpenAI-style error body, else the start of the text."""
    try:
        return str(json.loads(text)["error"]["message"])[:300]
    except (ValueError, KeyError, TypeError):
        return text.strip()[:200] or "(empty body)"
