"""`ScriptedBackend`: an in-process mock for tests. A function gives each prompt's reply (or the exception that
fails it); every batch it was handed is kept with its settings, and batches larger than `fail_batches_over` raise
the given error."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from facellm.backends.base import Backend, Prompt, Reply
from facellm.conversation import GenerationSettings


class ScriptedBackend(Backend):
    def __init__(
        self,
        reply: Callable[[Prompt], str | Exception],
        name: str = "scripted",
        chunk_size: int = 8,
        fail_batches_over: int | None = None,
        batch_error: Exception | None = None,
    ) -> None:
        self.reply = reply
        self.name = name
        self.chunk_size = chunk_size
        self.fail_batches_over = fail_batches_over
        self.batch_error = batch_error or MemoryError("scripted out of memory")
        self.batches: list[list[Prompt]] = []
        self.settings: list[GenerationSettings] = []  # the decoding settings of each batch

    def answer(self, prompts: Sequence[Prompt], settings: GenerationSettings) -> list[Reply | Exception]:
        self.batches.append(list(prompts))
        self.settings.append(settings)
        if self.fail_batches_over is not None and len(prompts) > self.fail_batches_over:
            raise self.batch_error
        replies = [self.reply(p) for p in prompts]
        return [r if isinstance(r, Exception) else Reply(r) for r in replies]
