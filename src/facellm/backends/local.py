"""`LocalBackend`: a Hugging Face image-text-to-text model loaded in this process (the model layer's `generate`,
`stream` and `choose_option`). Prompts longer than the model's context, or than `max_prompt_tokens`, are refused
before generating."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

from facellm.backends.base import Backend, Prompt, Reply
from facellm.conversation import GenerationSettings
from facellm.errors import InputError
from facellm.model import choose_option, generate, stream
from facellm.model.generate import _estimated_length, check_conversation, generate_checked, stream_checked
from facellm.model.loading import LoadedModel, describe_model

SCORINGS = ("generate", "likelihood")


class LocalBackend(Backend):
    # No tokenizer gives more than this many characters per token on real text: longer texts are refused uncounted.
    MAX_CHARS_PER_TOKEN = 32

    def __init__(
        self,
        lm,
        name: str | None = None,
        batch_size: int = 8,
        scoring: str = "generate",
        max_prompt_tokens: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise InputError(f"--batch-size must be at least 1, got {batch_size}", "use 1 or more")
        if scoring not in SCORINGS:
            raise InputError(f"unknown scoring {scoring!r}", f"use one of {', '.join(SCORINGS)}")
        self.lm = lm
        self.name = name or "hf:" + describe_model(lm.name, lm.adapter)
        self.batch_size = batch_size
        self.chunk_size = batch_size * 4
        self.scoring = scoring  # likelihood: the option letter the model finds most probable, no generation
        self.context = context_length(lm)
        self.max_prompt_tokens = min(max_prompt_tokens or self.context, self.context)

    def answer(self, prompts: Sequence[Prompt], settings: GenerationSettings) -> list[Reply | Exception]:

        with_images = [bool(p.images) for p in prompts]
        if 0 < sum(with_images) < len(prompts):  # the processor cannot batch prompts with and without images
            replies: dict[int, Reply | Exception] = {}
            for kind in (True, False):
                group = [i for i, has in enumerate(with_images) if has == kind]
                replies.update(zip(group, self.answer([prompts[i] for i in group], settings)))
            return [replies[i] for i in range(len(prompts))]
        conversations = [p.turns for p in prompts]
        if self.scoring == "likelihood":
            if any(not p.options for p in prompts):
                raise InputError("likelihood scoring needs multiple-choice questions", "use --scoring generate")
            texts = choose_option(self.lm, conversations, [p.letters for p in prompts], self.batch_size)
        else:
            counted = [p.checked_tokens for p in prompts]  # a server's check counted them: no second check or count
            lengths = [n for n in counted if n is not None]
            texts = (
                generate_checked(self.lm, conversations, lengths, settings, self.batch_size)
                if len(lengths) == len(prompts)
                else generate(self.lm, conversations, settings, batch_size=self.batch_size)
            )
        return [Reply(text) for text in texts]

    def stream(
        self, prompt: Prompt, settings: GenerationSettings, cancel: threading.Event | None = None
    ) -> Iterator[str]:

        if prompt.checked_tokens is not None:
            return stream_checked(self.lm, prompt.turns, settings, cancel)
        return stream(self.lm, prompt.turns, settings, cancel)

    def check(self, prompt: Prompt, settings: GenerationSettings) -> int:

        check_conversation(self.lm, prompt.turns)
        limit = min(self.max_prompt_tokens, self.context - settings.max_new_tokens)
        hint = f"shorten the prompt or lower max_tokens (model context {self.context} tokens)"
        if sum(len(turn.text) for turn in prompt.turns) > self.MAX_CHARS_PER_TOKEN * max(limit, 1):
            raise InputError(f"the prompt is far longer than the {max(limit, 0)} tokens this server accepts", hint)
        tokens = self.prompt_tokens(prompt)
        if tokens > limit:
            raise InputError(
                f"the prompt is {tokens} tokens; with max_tokens {settings.max_new_tokens} this server "
                f"accepts at most {max(limit, 0)}",
                hint,
            )
        return tokens

    def count_tokens(self, text: str) -> int:
        return len(self.lm.tokenizer(text, add_special_tokens=False)["input_ids"])

    def prompt_tokens(self, prompt: Prompt) -> int:

        return _estimated_length(self.lm, prompt.turns)


def context_length(lm: LoadedModel) -> int:
    """The text model's context in tokens (`max_position_embeddings`), 4096 when the config does not say."""
    config = lm.model.config
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return int(getattr(text, "max_position_embeddings", None) or 4096)
