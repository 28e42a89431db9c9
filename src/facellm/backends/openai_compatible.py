"""`OpenAIBackend`: any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, Ollama, llama.cpp, another
facellm) through the shared client: concurrency, rate limits, retries, token usage. A prompt that fails for good
holds its `ApiError` (with a typed cause); the others go on. Calls from several threads share the client's
`concurrency` limit, so batch work keeps several chunks in flight and one slow request never stalls a run."""

from __future__ import annotations

from collections.abc import Sequence

from facellm.backends.base import Backend, Prompt, Reply
from facellm.backends.openai_client import check_reachable, to_openai_messages
from facellm.conversation import GenerationSettings


class OpenAIBackend(Backend):
    def __init__(self, client, name: str | None = None) -> None:
        self.client = client  # facellm.backends.openai_client.ChatClient
        self.name = name or f"openai:{client.config.model}"
        # Small chunks, twice the concurrency queued: a slow request holds back a few replies, never the run.
        self.chunk_size = max(1, client.config.concurrency // 8)
        self.parallel_chunks = 16

    def check_ready(self) -> None:

        check_reachable(self.client.config)

    def answer(self, prompts: Sequence[Prompt], settings: GenerationSettings) -> list[Reply | Exception]:

        messages = [to_openai_messages(p.turns) for p in prompts]
        temperature = settings.temperature if settings.do_sample else 0.0
        replies = self.client.complete_many(messages, max_tokens=settings.max_new_tokens, temperature=temperature)
        return [
            reply
            if isinstance(reply, Exception)
            else Reply(reply.text, reply.prompt_tokens, reply.completion_tokens, _image_bytes(sent))
            for reply, sent in zip(replies, messages)
        ]


def _image_bytes(messages: list[dict]) -> int:
    """Characters of the image data URLs a request carried (what images cost in upload)."""
    return sum(
        len(part["image_url"]["url"])
        for message in messages
        if isinstance(message["content"], list)
        for part in message["content"]
        if part.get("type") == "image_url"
    )
