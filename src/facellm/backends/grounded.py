"""`Grounded`: wraps any backend so the last turn of every prompt starts with the measured facts of its images."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from facellm.backends.base import Backend, Prompt, Reply
from facellm.model.generate import GenerationSettings, Turn


class Grounded(Backend):
    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name = f"{inner.name}+grounded"
        self.chunk_size = inner.chunk_size
        self.parallel_chunks = inner.parallel_chunks
        self.scoring = inner.scoring

    def grounded(self, prompt: Prompt) -> Prompt:
        from facellm.specialist import ground

        last = prompt.turns[-1]
        turns = [*prompt.turns[:-1], Turn(last.role, ground(prompt.images, last.text), last.images)]
        return replace(prompt, turns=turns)

    def answer(self, prompts: Sequence[Prompt], settings: GenerationSettings) -> list[Reply | Exception]:
        return self.inner.answer([self.grounded(p) for p in prompts], settings)

    def stream(self, prompt: Prompt, settings: GenerationSettings, cancel=None):
        return self.inner.stream(self.grounded(prompt), settings, cancel)

    def check(self, prompt: Prompt, settings: GenerationSettings) -> int:
        self.inner.check(prompt, settings)
        return self.prompt_tokens(prompt)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def prompt_tokens(self, prompt: Prompt) -> int:
        return self.inner.prompt_tokens(self.grounded(prompt))
