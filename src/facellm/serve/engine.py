"""The serving engine: a bounded queue in front of one model; waiting requests with the same decoding settings are
generated together as one batch, through the same `generate` / `stream` functions `facellm ask` uses.

Backends: `ModelBackend` (a loaded model) and `OfflineBackend` (no weights: answers are template text clearly
labelled as such, so the web page and clients can be tried anywhere).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from facellm.model.generate import Conversation, GenerationSettings


class QueueFull(Exception):
    """More requests are waiting than the server accepts."""


class ModelBackend:
    def __init__(self, lm) -> None:
        self.lm = lm
        self.name = lm.name + (f"+{lm.adapter}" if lm.adapter else "")

    def generate(self, conversations: list[Conversation], settings: GenerationSettings) -> list[str]:
        from facellm.model import generate

        return generate(self.lm, conversations, settings, batch_size=len(conversations))

    def stream(self, conversation: Conversation, settings: GenerationSettings) -> Iterator[str]:
        from facellm.model import stream

        return stream(self.lm, conversation, settings)

    def count_tokens(self, text: str) -> int:
        return len(self.lm.tokenizer(text, add_special_tokens=False)["input_ids"])

    def prompt_tokens(self, conversation: Conversation) -> int:
        from facellm.model.generate import _estimated_length

        return _estimated_length(self.lm, conversation)


class OfflineBackend:
    """No model: a fixed, clearly labelled template answer (for trying the page and the API without weights)."""

    name = "facellm-offline-template"
    LABEL = "[offline template answer, no model loaded] "

    def generate(self, conversations: list[Conversation], settings: GenerationSettings) -> list[str]:
        return [self._answer(c) for c in conversations]

    def stream(self, conversation: Conversation, settings: GenerationSettings) -> Iterator[str]:
        for word in self._answer(conversation).split(" "):
            yield word + " "

    def _answer(self, conversation: Conversation) -> str:
        images = sum(len(turn.images) for turn in conversation)
        question = conversation[-1].text.strip()
        return (f"{self.LABEL}You asked: \"{question[:200]}\" about {images} image(s). Start the server with "
                f"--model to get real answers.")  # fmt: skip

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def prompt_tokens(self, conversation: Conversation) -> int:
        return sum(len(turn.text.split()) for turn in conversation)


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
        """Pieces of one answer as they are generated (the model is held for this request alone)."""
        if self._queue.qsize() >= self.max_queue:
            raise QueueFull
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue = asyncio.Queue()
        done = object()

        def produce() -> None:
            try:
                for piece in self.backend.stream(conversation, settings):
                    loop.call_soon_threadsafe(pieces.put_nowait, piece)
            except Exception as exc:  # delivered to the consumer below
                loop.call_soon_threadsafe(pieces.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(pieces.put_nowait, done)

        async with self._lock:
            loop.run_in_executor(self._model_thread, produce)
            while (item := await pieces.get()) is not done:
                if isinstance(item, Exception):
                    raise item
                yield item

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
                try:
                    texts = await asyncio.get_running_loop().run_in_executor(
                        self._model_thread, self.backend.generate, [p.conversation for p in batch], first.settings
                    )
                except Exception as exc:
                    for pending in batch:
                        if not pending.future.done():
                            pending.future.set_exception(exc)
                    continue
            self.batches.append(len(batch))
            self._last_batch = (len(batch), time.monotonic() - started)
            for pending, text in zip(batch, texts):
                if not pending.future.done():
                    pending.future.set_result(text)
