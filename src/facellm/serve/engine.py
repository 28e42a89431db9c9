"""The serving engine: a bounded queue in front of one backend (`facellm.backends`); waiting requests with the same
decoding settings are answered together as one batch, under the one error policy (`answer_safely`: a failed
batch is answered again in parts, so one bad request fails alone); a stream whose reader goes away stops
generating. This is the only micro-batcher: batch work (eval, data) hands the backend whole chunks instead.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from facellm.backends.base import Backend, Prompt, answer_safely, as_exception
from facellm.conversation import GenerationSettings


class QueueFull(Exception):
    """More requests are waiting than the server accepts."""


@dataclass
class _Pending:
    prompt: Prompt
    settings: GenerationSettings
    future: asyncio.Future


class Engine:
    """Queue + micro-batching. Call `start()` inside the server's event loop."""

    def __init__(self, backend: Backend, max_batch: int = 8, max_queue: int = 64, max_gather_s: float = 0.05) -> None:
        self.backend = backend
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.max_gather_s = max_gather_s
        self._last_batch = (1, 0.0)  # size and seconds of the previous batch
        self.batches: list[int] = []  # size of every batch generated (for tests and metrics)
        self.streams = 0  # answers streamed, each on its own (for tests and metrics)
        # One long-lived thread runs every model call: torch keeps its per-thread state warm, and the event loop
        # stays free to accept requests while a batch generates.
        self._model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="facellm-model")
        self._queue: asyncio.Queue[_Pending]  # made by start(), inside the server's event loop
        self._lock: asyncio.Lock
        self._worker: asyncio.Task | None = None

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._lock = asyncio.Lock()
        self._worker = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._worker:
            self._worker.cancel()

    def submit(self, prompt: Prompt, settings: GenerationSettings) -> asyncio.Future:
        """Queue one request; the future resolves to its answer (QueueFull when too many are waiting)."""
        if self._queue.qsize() >= self.max_queue:
            raise QueueFull
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(prompt, settings, future))
        return future

    async def stream(self, prompt: Prompt, settings: GenerationSettings) -> AsyncIterator[str]:
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
                answer = self.backend.stream(prompt, settings, cancel)
                for piece in answer:
                    if cancel.is_set():
                        break
                    deliver(piece)
            except BaseException as exc:  # delivered to the consumer below
                deliver(as_exception(exc))
            finally:
                getattr(answer, "close", lambda: None)()  # ends the model's generation when we broke off early
                deliver(done)

        async with self._lock:
            self.streams += 1
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
            batch, others = [first], list[_Pending]()
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
        loop = asyncio.get_running_loop()
        replies = await loop.run_in_executor(
            self._model_thread, answer_safely, self.backend, [p.prompt for p in batch], batch[0].settings
        )
        for pending, reply in zip(batch, replies):
            if isinstance(reply, Exception):
                _settle(pending.future, exception=reply)
            else:
                _settle(pending.future, reply.text)


def _settle(future: asyncio.Future, result: str | None = None, exception: BaseException | None = None) -> None:
    """Resolve a request's future unless its client already gave up on it."""
    if future.done():
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(result)
