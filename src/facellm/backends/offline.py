"""`OfflineBackend`: no model; a fixed, clearly labelled template answer, so the web page and the API can be tried
without weights (`facellm serve --offline`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

from facellm.backends.base import Backend, Prompt, Reply
from facellm.conversation import GenerationSettings


class OfflineBackend(Backend):
    name = "facellm-offline-template"
    LABEL = "[offline template answer, no model loaded] "

    def answer(self, prompts: Sequence[Prompt], settings: GenerationSettings) -> list[Reply | Exception]:
        return [Reply(self._text(p)) for p in prompts]

    def stream(
        self, prompt: Prompt, settings: GenerationSettings, cancel: threading.Event | None = None
    ) -> Iterator[str]:
        for word in self._text(prompt).split(" "):
            yield word + " "

    def _text(self, prompt: Prompt) -> str:
        question = prompt.turns[-1].text.strip()
        return (
            f'{self.LABEL}You asked: "{question[:200]}" about {len(prompt.images)} image(s). Start the server '
            f"with --model to get real answers."
        )
