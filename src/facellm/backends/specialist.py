"""`SpecialistBackend`: face questions answered by the face-analysis models (`facellm.specialist`), no LLM."""

from __future__ import annotations

from collections.abc import Sequence

from facellm.backends.base import Backend, Prompt, Reply
from facellm.model.generate import GenerationSettings


class SpecialistBackend(Backend):
    chunk_size = 16
    measures_faces = True

    def __init__(self) -> None:
        from facellm.specialist import NAME

        self.name = NAME

    def answer(self, prompts: Sequence[Prompt], settings: GenerationSettings) -> list[Reply | Exception]:
        from facellm.specialist import answer

        return [Reply(answer(p.images, p.turns[-1].text, p.options)) for p in prompts]
