"""Teachers: whatever answers a (system prompt, user prompt, image) request, behind one async method.

- `OpenAITeacher`: any OpenAI-compatible endpoint through the shared client (concurrency, rate limits, retries).
- `HFTeacher`: a local transformers model through the model layer; concurrent requests are gathered into batches.
- `TemplateTeacher`: offline and deterministic, built only from known and measured attributes; the default when no
  teacher is configured, so the pipeline runs anywhere. Its records carry the teacher name "template".
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

from PIL import Image

from facellm.data.prompts import PromptSpec, person_word
from facellm.errors import FaceLLMError

TEACHERS = ("template", "openai", "hf")
# US$ per million tokens (input, output), from OpenAI's published prices; override with --price-in/--price-out.
KNOWN_PRICES = {"gpt-4o-2024-11-20": (2.50, 10.00), "gpt-4o": (2.50, 10.00), "gpt-4o-mini": (0.15, 0.60)}


class TeacherError(FaceLLMError):
    """A request the teacher could not answer (after its own retries)."""


@dataclass
class Reply:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    image_bytes: int = 0


@dataclass
class Request:
    system: str
    user: str
    image: Image.Image
    aspect: str | None  # None for a per-image request (all aspects as JSON)
    known: dict
    measured: dict


class Teacher(Protocol):
    name: str  # part of every record key: "template", "openai:<model>", "hf:<model>"
    concurrency: int  # how many requests the builder keeps in flight

    async def answer(self, request: Request) -> Reply: ...


class OpenAITeacher:
    def __init__(self, client, max_tokens: int = 700) -> None:
        self.client = client  # facellm.api.ChatClient
        self.name = f"openai:{client.config.model}"
        self.concurrency = client.config.concurrency
        self.max_tokens = max_tokens

    async def __aenter__(self) -> OpenAITeacher:
        await self.client.__aenter__()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.client.__aexit__(*exc)

    async def answer(self, request: Request) -> Reply:
        from facellm.api import ApiError, image_data_url

        url = image_data_url(request.image)
        messages = [
            {"role": "system", "content": request.system},
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                         {"type": "text", "text": request.user}]},
        ]  # fmt: skip
        tokens = self.max_tokens * (8 if request.aspect is None else 1)
        try:
            reply = await self.client.complete(messages, max_tokens=tokens)
        except ApiError as exc:
            raise TeacherError(exc.message, exc.hint) from None
        return Reply(reply.text, reply.prompt_tokens, reply.completion_tokens, len(url))


class HFTeacher:
    """Requests arriving together are answered in one batched `generate` call (run in a worker thread)."""

    def __init__(self, lm, batch_size: int = 8, max_new_tokens: int = 512, wait_s: float = 0.05) -> None:
        self.lm = lm
        self.name = f"hf:{lm.name}"
        self.batch_size = batch_size
        self.concurrency = batch_size * 2
        self.max_new_tokens = max_new_tokens
        self.wait_s = wait_s
        self._pending: list[tuple[Request, asyncio.Future]] = []
        self._timer: asyncio.TimerHandle | None = None

    async def __aenter__(self) -> HFTeacher:
        return self

    async def __aexit__(self, *exc) -> None:
        pass

    async def answer(self, request: Request) -> Reply:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((request, future))
        if len(self._pending) >= self.batch_size:
            self._flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.wait_s, self._flush)
        return await future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []
        if batch:
            asyncio.get_running_loop().create_task(self._run(batch))

    async def _run(self, batch: list[tuple[Request, asyncio.Future]]) -> None:
        from facellm.model import GenerationSettings, Turn, generate

        conversations = [[Turn("system", r.system), Turn("user", r.user, [r.image])] for r, _ in batch]
        settings = GenerationSettings(max_new_tokens=self.max_new_tokens)
        try:
            texts = await asyncio.to_thread(generate, self.lm, conversations, settings, self.batch_size)
        except Exception as exc:  # a failed batch fails its requests, not the run
            for _, future in batch:
                future.set_exception(TeacherError(f"local model failed: {exc}", "check --model and memory"))
            return
        for (_, future), text in zip(batch, texts):
            if not text.strip():
                future.set_exception(TeacherError("local model returned no text", "raise --max-new-tokens"))
            else:
                future.set_result(Reply(text))


class TemplateTeacher:
    """Deterministic answers from known and measured attributes only (no model); see the prompt file's templates."""

    name = "template"
    concurrency = 1

    def __init__(self, spec: PromptSpec) -> None:
        self.spec = spec

    async def __aenter__(self) -> TemplateTeacher:
        return self

    async def __aexit__(self, *exc) -> None:
        pass

    async def answer(self, request: Request) -> Reply:
        import json

        values = template_values(request.known, request.measured)
        if request.aspect is None:
            text = json.dumps({k: a.template.format(**values) for k, a in self.spec.aspects.items()})
        else:
            text = self.spec.aspects[request.aspect].template.format(**values)
        return Reply(text)


def template_values(known: dict, measured: dict) -> dict[str, str]:
    """The placeholders the prompt file's templates may use, filled from what is known or measured."""
    person = person_word(known)
    race = known.get("race")
    a_person = f"{'an' if person[0] in 'aeiou' else 'a'} {person}"
    age = known.get("age")
    quality = _quality(measured)
    pose = measured.get("pose_label")
    return {
        "person": person,
        "a_person": a_person,
        "age_clause": _age_clause(age),
        "ethnicity_clause": f", of {race} appearance" if race else "",
        "size_clause": f", with the face about {measured['face_width']:.0f} pixels wide"
        if "face_width" in measured
        else "",
        "sharpness_clause": f", and the image is {quality}" if quality else "",
        "expression_clause": f"; it most resembles {measured['expression']}" if "expression" in measured else "",
        "quality_clause": f" is {quality}" if quality else " was not measured for brightness or sharpness",
        "quality_clause_short": f", {quality}" if quality else "",
        "pose_clause": f" is in a {pose} pose" + _angles(measured)
        if pose
        else " is visible; its angle was not measured",
        "pose_clause_short": f", head {pose}" if pose else "",
    }


def _age_clause(age: str | None) -> str:
    if not age:
        return ""
    if age == "more than 70":
        return " over 70 years old"
    return f" aged {age} years"


def _quality(measured: dict) -> str:
    parts = []
    if "brightness" in measured:
        b = measured["brightness"]
        parts.append("dark" if b < 70 else "bright" if b > 190 else "evenly lit")
    if "sharpness" in measured:
        parts.append("sharp" if measured["sharpness"] > 100 else "soft or blurred")
    return " and ".join(parts)


def _angles(measured: dict) -> str:
    angles = ", ".join(f"{k} {measured[k]:.0f}°" for k in ("yaw", "pitch", "roll") if k in measured)
    return f" ({angles})" if angles else ""
