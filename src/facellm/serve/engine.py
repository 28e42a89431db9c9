"""The serving engine: a bounded queue in front of one model; waiting requests with the same decoding settings are
generated together as one batch, through the same `generate` / `stream` functions `facellm ask` uses. A batch that
fails is answered again one request at a time, so one bad request fails alone; a stream whose reader goes away
stops generating.

Backends (`ServingBackend`): `ModelBackend` (a loaded model) and `OfflineBackend` (no weights: answers are template
text clearly labelled as such, so the web page and clients can be tried anywhere).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from facellm.errors import InputError
from facellm.model.generate import Conversation, GenerationSettings


class QueueFull(Exception):
    """More requests are waiting than the server accepts."""


class ServingBackend:
    """What the engine serves: a name, batched answers, a stream of one answer, token counts, and a check that
    refuses (with `InputError`) a request the backend cannot answer before it is queued."""

    name = "backend"

    def generate(self, conversations: list[Conversation], settings: GenerationSettings) -> list[str]:
        """One answer per conversation; an item may be an exception instead (that request alone fails)."""
        raise NotImplementedError

    def stream(
        self, conversation: Conversation, settings: GenerationSettings, cancel: threading.Event | None = None
    ) -> Iterator[str]:
        yield self.generate([conversation], settings)[0]

    def check(self, conversation: Conversation, settings: GenerationSettings) -> int:
        """The prompt's length in tokens (for usage); `InputError` naming the problem when it cannot be answered."""
        return self.prompt_tokens(conversation)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def prompt_tokens(self, conversation: Conversation) -> int:
        return sum(len(turn.text.split()) for turn in conversation)


class ModelBackend(ServingBackend):
    """A loaded model. Prompts longer than `max_prompt_tokens` (default: the model's context) or that leave no room
    for the requested answer in the context are refused before generating."""

    # No tokenizer gives more than this many characters per token on real text: longer texts are refused uncounted.
    MAX_CHARS_PER_TOKEN = 32

    def __init__(self, lm, max_prompt_tokens: int | None = None) -> None:
        self.lm = lm
        self.name = lm.name + (f"+{lm.adapter}" if lm.adapter else "")
        self.context = context_length(lm)
        self.max_prompt_tokens = min(max_prompt_tokens or self.context, self.context)

    def generate(self, conversations: list[Conversation], settings: GenerationSettings) -> list[str]:
        from facellm.model import generate

        return generate(self.lm, conversations, settings, batch_size=len(conversations))

    def stream(self, conversation, settings, cancel=None) -> Iterator[str]:
        from facellm.model import stream

        return stream(self.lm, conversation, settings, cancel)

    def check(self, conversation: Conversation, settings: GenerationSettings) -> int:
        from facellm.model.generate import check_conversation

        check_conversation(self.lm, conversation)
        limit = min(self.max_prompt_tokens, self.context - settings.max_new_tokens)
        hint = f"shorten the prompt or lower max_tokens (model context {self.context} tokens)"
        if sum(len(turn.text) for turn in conversation) > self.MAX_CHARS_PER_TOKEN * max(limit, 1):
            raise InputError(f"the prompt is far longer than the {max(limit, 0)} tokens this server accepts", hint)
        tokens = self.prompt_tokens(conversation)
        if tokens > limit:
            raise InputError(f"the prompt is {tokens} tokens; with max_tokens {settings.max_new_tokens} this server "
                             f"accepts at most {max(limit, 0)}", hint)  # fmt: skip
        return tokens

    def count_tokens(self, text: str) -> int:
        return len(self.lm.tokenizer(text, add_special_tokens=False)["input_ids"])

    def prompt_tokens(self, conversation: Conversation) -> int:
        from facellm.model.generate import _estimated_length

        return _estimated_length(self.lm, conversation)


def context_length(lm) -> int:
    """The text model's context in tokens (`max_position_embeddings`), 4096 when the config does not say."""
    config = lm.model.config
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return int(getattr(text, "max_position_embeddings", None) or 4096)


class OfflineBackend(ServingBackend):
    """No model: a fixed, clearly labelled template answer (for trying the page and the API without weights)."""

    name = "facellm-offline-template"
    LABEL = "[offline template answer, no model loaded] "

    def generate(self, conversations: list[Conversation], settings: GenerationSettings) -> list[str]:
        return [self._answer(c) for c in conversations]

    def stream(self, conversation, settings, cancel=None) -> Iterator[str]:
        for word in self._answer(conversation).split(" "):
            yield word + " "

    def _answer(self, conversation: Conversation) -> str:
        images = sum(len(turn.images) for turn in conversation)
        question = conversation[-1].text.strip()
        return (f"{self.LABEL}You asked: \"{question[:200]}\" about {images} image(s). Start the server with "
                f"--model to get real answers.")  # fmt: skip


@dataclass
class _Pending:
    conversation: Conversation
    settings: GenerationSettings
    future: asyncio.Future


class Engine:
    """Queue + micro-batching. Call `start()` inside the server's event loop."""

    def __init__(self, backend, max_batch: int = 8, max_queue: int = 64, max_gather_s: float = 0.05) -> None:
        self.backend = backend
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.max_gather_s = max_gather_s
        self._last_batch = (1, 0.0)  # size and seconds of the previous batch
        self.batches: list[int] = []  # size of every batch generated (for tests and metrics)
        # One long-lived thread runs every model call: torch keeps its per-thread state warm, and the event loop
        # stays free to accept requests while a batch generates.
        self._model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="facellm-model")
        self._queue: asyncio.Queue[_Pending] | None = None
        self._lock: asyncio.Lock | None = None
        self._worker: asyncio.Task | None = None

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._lock = asyncio.Lock()
        self._worker = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._worker:
            self._worker.cancel()

    def submit(self, conversation: Conversation, settings: GenerationSettings) -> asyncio.Future:
        """Queue one request; the future resolves to its answer (QueueFull when too many are waiting)."""
        if self._queue.qsize() >= self.max_queue:
            raise QueueFull
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(conversation, settings, future))
        return future

    async def stream(self, conversation: Conversation, settings: GenerationSettings) -> AsyncIterator[str]:
        """Pieces of one answer as they are generated (the model is held for this request alone). When the reader
        stops early (a client that went away), the generation is told to stop after its current token."""
        if self._queue.qsize() >= self.max_queue:
            raise QueueFull
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue = asyncio.Queue()
        done = object()
        cancel = threading.Event()

        def deliver(item) -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(pieces.put_nowait, item)

        def produce() -> None:
            answer = None
            try:
                answer = self.backend.stream(conversation, settings, cancel)
                for piece in answer:
                    if cancel.is_set():
                        break
                    deliver(piece)
            except BaseException as exc:  # delivered to the consumer below
                deliver(_as_exception(exc))
            finally:
                getattr(answer, "close", lambda: None)()  # ends the model's generation when we broke off early
                deliver(done)

        async with self._lock:
            loop.run_in_executor(self._model_thread, produce)
            try:
                while (item := await pieces.get()) is not done:
                    if isinstance(item, Exception):
                        raise item
                    yield item
            finally:
                cancel.set()  # a no-op once the answer is complete

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            # Under concurrent load, clients whose answers just went out are about to send their next request:
            # wait a quarter of the last batch's time for them, instead of alternating big and tiny batches.
            # A lone client (last batch of one) never waits.
            size, seconds = self._last_batch
            if size > 1 and self._queue.qsize() + 1 < min(size, self.max_batch):
                await asyncio.sleep(min(self.max_gather_s, seconds / 4))
            batch, others = [first], []
            while not self._queue.empty() and len(batch) < self.max_batch:
                item = self._queue.get_nowait()
                (batch if item.settings == first.settings else others).append(item)
            for item in others:  # different settings wait for a later batch
                self._queue.put_nowait(item)
            started = time.monotonic()
            async with self._lock:
                await self._answer(batch)
            self.batches.append(len(batch))
            self._last_batch = (len(batch), time.monotonic() - started)

    async def _answer(self, batch: list[_Pending]) -> None:
        """Generate a batch; when it fails, answer its members one by one so a failing request fails alone."""
        loop = asyncio.get_running_loop()
        settings = batch[0].settings
        try:
            texts = await loop.run_in_executor(
                self._model_thread, self.backend.generate, [p.conversation for p in batch], settings
            )
        except BaseException as exc:  # also a Rust panic from a tokenizer: the worker must outlive any one batch
            if isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt, SystemExit)):
                raise
            if len(batch) == 1:
                _settle(batch[0].future, exception=_as_exception(exc))
                return
            for pending in batch:
                await self._answer([pending])
            return
        for pending, text in zip(batch, texts):  # a backend may hand back an exception for an item that failed
            if isinstance(text, Exception):
                _settle(pending.future, exception=text)
            else:
                _settle(pending.future, text)


def _as_exception(exc: BaseException) -> Exception:
    """`exc` as an ordinary exception (a pyo3 PanicException derives from BaseException and would pass handlers)."""
    return exc if isinstance(exc, Exception) else RuntimeError(f"{type(exc).__name__}: {exc}")


def _settle(future: asyncio.Future, result: str | None = None, exception: BaseException | None = None) -> None:
    """Resolve a request's future unless its client already gave up on it."""
    if future.done():
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(result)
