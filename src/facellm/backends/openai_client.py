"""The one client for OpenAI-compatible chat-completions endpoints (OpenAI, vLLM, Ollama, llama.cpp, LM Studio).

Used by API-model evaluation and by the data teachers. It sends images as lossless PNG data URLs (the server decodes
exactly the pixels a local model would see, so its answers can match the local run's), keeps at most
`concurrency` requests in flight, spaces requests to honour requests- and tokens-per-minute limits, and retries
429, 5xx, timeouts and connection errors with exponential backoff and jitter (honouring `Retry-After`). A request
that still fails is returned as an `ApiError` for that item; the batch goes on. The API key comes from the
environment and is never logged or written out.
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
import random
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PIL import Image

from facellm.conversation import Conversation
from facellm.errors import BackendError, Cause, InputError

if TYPE_CHECKING:
    import httpx

API_KEY_VARIABLES = ("FACELLM_API_KEY", "OPENAI_API_KEY")
RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class ApiError(BackendError):
    """A request that failed for good (after retries, or at once for a client error such as 401); `cause` says why."""


@dataclass
class EndpointConfig:
    """Where and how to call an endpoint. `base_url` ends before `/chat/completions` (e.g. `.../v1`)."""

    base_url: str
    model: str
    api_key: str | None = None
    concurrency: int = 8
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    max_retries: int = 5
    timeout_s: float = 120.0
    backoff_s: float = 1.0
    backoff_max_s: float = 60.0

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise InputError(
                f"API base URL must start with http:// or https://, got {self.base_url!r}",
                "pass e.g. --api-base https://api.openai.com/v1",
            )
        if not self.model:
            raise InputError("no API model name given", "pass --api-model, e.g. gpt-4o-2024-11-20")
        if self.concurrency < 1:
            raise InputError(f"concurrency must be at least 1, got {self.concurrency}", "use --concurrency 1 or more")
        if self.api_key is None:
            self.api_key = next((os.environ[v] for v in API_KEY_VARIABLES if os.environ.get(v)), None)

    def __repr__(self) -> str:  # keep the key out of logs and tracebacks
        key = "'***'" if self.api_key else None
        return f"EndpointConfig(base_url={self.base_url!r}, model={self.model!r}, api_key={key})"


@dataclass
class ChatReply:
    text: str
    prompt_tokens: int
    completion_tokens: int
    attempts: int
    latency_s: float


def image_data_url(image: Image.Image, lossless: bool = True) -> str:
    """A data URL for an RGB image: PNG, which decodes to these very pixels, or with `lossless=False` a JPEG
    (quality 90), about 7x smaller, whose decoded pixels differ by a few levels (enough to change a model's answer)."""
    kind, options = ("png", {"compress_level": 1}) if lossless else ("jpeg", {"quality": 90})
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format=kind.upper(), **options)
    return f"data:image/{kind};base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def to_openai_messages(conversation: Conversation) -> list[dict]:
    """Chat-completions messages; a turn's images go before its text as `image_url` parts."""
    messages: list[dict] = []
    for turn in conversation:
        if not turn.images:
            messages.append({"role": turn.role, "content": turn.text})
            continue
        parts: list[dict] = [{"type": "image_url", "image_url": {"url": image_data_url(im)}} for im in turn.images]
        parts.append({"type": "text", "text": turn.text})
        messages.append({"role": turn.role, "content": parts})
    return messages


class _RateLimiter:
    """Sliding one-minute window over request starts and tokens spent."""

    def __init__(self, requests_per_minute: float | None, tokens_per_minute: float | None) -> None:
        self.rpm = requests_per_minute
        self.tpm = tokens_per_minute
        self.starts: deque[float] = deque()
        self.tokens: deque[tuple[float, int]] = deque()
        # One lock per session (event loop), made by the client's _open; the window outlives sessions.
        self.lock: asyncio.Lock

    async def wait(self) -> None:
        if not self.rpm and not self.tpm:
            return
        async with self.lock:
            while True:
                now = time.monotonic()
                while self.starts and now - self.starts[0] >= 60:
                    self.starts.popleft()
                while self.tokens and now - self.tokens[0][0] >= 60:
                    self.tokens.popleft()
                delays = []
                if self.rpm and len(self.starts) >= self.rpm:
                    delays.append(60 - (now - self.starts[0]))
                if self.tpm and sum(n for _, n in self.tokens) >= self.tpm:
                    delays.append(60 - (now - self.tokens[0][0]))
                if not delays:
                    self.starts.append(now)
                    return
                await asyncio.sleep(max(min(delays), 0.01))

    def spent(self, tokens: int) -> None:
        if self.tpm:
            self.tokens.append((time.monotonic(), tokens))


class ChatClient:
    """Send chat-completions requests concurrently with retries; see the module docstring.

    `complete_many` blocks until a whole list is answered. It may be called from several threads at once: every
    call runs on the client's own event loop (a daemon thread started on first use), so all of them share one
    connection pool, one limit of `concurrency` requests in flight and the rate limits."""

    def __init__(self, config: EndpointConfig) -> None:
        self.config = config
        self._http: httpx.AsyncClient  # these three are made by _open, inside the client's event loop
        self._limiter = _RateLimiter(config.requests_per_minute, config.tokens_per_minute)
        self._gate: asyncio.Semaphore
        self._loop: asyncio.AbstractEventLoop | None = None
        self._starting = threading.Lock()

    def _session_loop(self) -> asyncio.AbstractEventLoop:
        with self._starting:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="facellm-openai-client", daemon=True).start()
                asyncio.run_coroutine_threadsafe(self._open(), loop).result()
                self._loop = loop
        return self._loop

    async def _open(self) -> None:
        import httpx

        self._http = httpx.AsyncClient(timeout=self.config.timeout_s)
        self._limiter.lock = asyncio.Lock()
        self._gate = asyncio.Semaphore(self.config.concurrency)

    def close(self) -> None:
        """Close the connections and stop the client's event loop (a later call starts them again)."""
        with self._starting:
            loop, self._loop = self._loop, None
        if loop is not None:
            asyncio.run_coroutine_threadsafe(self._http.aclose(), loop).result()
            loop.call_soon_threadsafe(loop.stop)

    def complete_many(
        self, conversations: Sequence[list[dict]], max_tokens: int = 512, temperature: float = 0.0
    ) -> list[ChatReply | ApiError]:
        """Answer every message list (blocking); each slot holds a reply or the `ApiError` that ended it."""

        async def one(messages: list[dict]) -> ChatReply | ApiError:
            try:
                return await self.complete(messages, max_tokens, temperature)
            except ApiError as exc:
                return exc

        async def run() -> list[ChatReply | ApiError]:
            return list(await asyncio.gather(*(one(m) for m in conversations)))

        return asyncio.run_coroutine_threadsafe(run(), self._session_loop()).result()

    async def complete(self, messages: list[dict], max_tokens: int = 512, temperature: float = 0.0) -> ChatReply:
        """One request, retried as configured; raises `ApiError` when it fails for good. Runs on the client's loop."""
        import httpx

        url = self.config.base_url.rstrip("/") + "/chat/completions"
        headers = {"Authorization": f"Bearer {self.config.api_key}"} if self.config.api_key else {}
        body = {"model": self.config.model, "messages": messages, "max_tokens": max_tokens, "temperature": temperature}
        started = time.monotonic()
        reason, cause = "", Cause.OTHER
        async with self._gate:
            for attempt in range(1, self.config.max_retries + 2):
                await self._limiter.wait()
                retry_after = None
                try:
                    response = await self._http.post(url, json=body, headers=headers)
                except (httpx.TimeoutException, httpx.TransportError) as exc:
                    reason = f"{type(exc).__name__}: {exc}".rstrip(": ")
                    cause = Cause.TIMEOUT if isinstance(exc, httpx.TimeoutException) else Cause.CONNECTION
                else:
                    if response.status_code == 200:
                        try:
                            return self._reply(response, attempt, started)
                        except ApiError as exc:  # garbage in a 200 reply: worth another try
                            reason, cause = exc.message, exc.cause
                    else:
                        reason = f"HTTP {response.status_code}: {response.text[:200]}"
                        cause = _status_cause(response.status_code)
                        if response.status_code not in RETRYABLE_STATUS:
                            raise ApiError(
                                f"{url} refused the request ({reason})", _hint(response.status_code), Cause.CLIENT_ERROR
                            )
                        retry_after = _retry_after(response.headers.get("retry-after"))
                if attempt > self.config.max_retries:
                    break
                backoff = min(self.config.backoff_max_s, self.config.backoff_s * 2 ** (attempt - 1))
                await asyncio.sleep(retry_after if retry_after is not None else backoff * random.uniform(0.5, 1.5))
        raise ApiError(
            f"{url} failed after {self.config.max_retries + 1} attempts ({reason})",
            "check the endpoint, or raise --max-retries",
            cause,
        )

    def _reply(self, response, attempt: int, started: float) -> ChatReply:
        try:
            payload = response.json()
            text = payload["choices"][0]["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            hint = "is this a chat-completions endpoint?"
            raise ApiError(f"unexpected reply from {response.url}: {exc!r}", hint, Cause.GARBAGE) from None
        usage = payload.get("usage") or {}
        prompt, completion = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
        self._limiter.spent(prompt + completion)
        return ChatReply(text, prompt, completion, attempt, time.monotonic() - started)


def check_reachable(config: EndpointConfig) -> None:
    """Refuse at once (InputError) an endpoint that cannot be connected to or that refuses the key, with one GET of
    its model list, so that a run does not start only to fail every request. Any other answer lets the run start
    (not every server lists its models)."""
    import httpx

    url = config.base_url.rstrip("/") + "/models"
    headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
    try:
        response = httpx.get(url, headers=headers, timeout=min(config.timeout_s, 15.0))
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol) as exc:
        reason = f"{type(exc).__name__}: {exc}".rstrip(": ")
        raise InputError(
            f"cannot reach {config.base_url} ({reason})", "check the URL and that the server is running"
        ) from None
    except httpx.HTTPError:
        return  # connected, but slow or odd: the run's own retries and timeouts handle it
    if response.status_code in (401, 403):
        raise InputError(
            f"{config.base_url} refused the API key (HTTP {response.status_code})", _hint(response.status_code)
        )


def _status_cause(status: int) -> Cause:
    if status == 429:
        return Cause.RATE_LIMITED
    return Cause.SERVER_ERROR if status >= 500 else Cause.CLIENT_ERROR


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _hint(status: int) -> str:
    if status in (401, 403):
        return f"check the API key in {' or '.join(API_KEY_VARIABLES)}"
    if status == 404:
        return "check --api-base (it should end with /v1) and --api-model"
    return "check the request options"
