"""`Grounded`: wraps any backend so the last turn of every prompt starts with the measured facts of its images.

The facts are measured once per prompt: `prepare` adds them and records that in the prompt's `facts`, so a server
that prepares a request to count its tokens answers that same prepared prompt without measuring again."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace

from facellm.backends.base import Backend, Prompt, Reply
from facellm.conversation import GenerationSettings, Turn
from facellm.specialist import ground

GROUNDED = "grounded"  # the key in a prepared prompt's facts


class Grounded(Backend):
    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name = f"{inner.name}+grounded"
        self.chunk_size = inner.chunk_size
        self.parallel_chunks = inner.parallel_chunks
        self.scoring = inner.scoring

    def check_ready(self) -> None:
        self.inner.check_ready()

    def prepare(self, prompt: Prompt) -> Prompt:
        """The prompt with the measured facts before its last turn (measured only if not done already)."""

        if prompt.facts.get(GROUNDED):
            return prompt
        last = prompt.turns[-1]
        turns = [*prompt.turns[:-1], Turn(last.role, ground(prompt.images, last.text), last.images)]
        return replace(prompt, turns=turns, facts={**prompt.facts, GROUNDED: True})

    def answer(self, prompts: Sequence[Prompt], settings: GenerationSettings) -> list[Reply | Exception]:
        return self.inner.answer([self.prepare(p) for p in prompts], settings)

    def stream(
        self, prompt: Prompt, settings: GenerationSettings, cancel: threading.Event | None = None
    ) -> Iterator[str]:
        return self.inner.stream(self.prepare(prompt), settings, cancel)

    def check(self, prompt: Prompt, settings: GenerationSettings) -> int:
        return self.inner.check(self.prepare(prompt), settings)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def prompt_tokens(self, prompt: Prompt) -> int:
        return self.inner.prompt_tokens(self.prepare(prompt))
