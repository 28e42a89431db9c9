"""Answers: a model loaded once, and questions about images asked of it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from PIL import Image

from facellm.backends import build_backend
from facellm.backends.base import Backend, BackendSpec, Prompt
from facellm.conversation import GenerationSettings, question
from facellm.errors import InputError
from facellm.images import ImageSource, read_image
from facellm.model.loading import DEFAULT_MODEL

Model = str | BackendSpec | Backend
"""A model by name (hub id, folder, `specialist`), a `BackendSpec`, or a backend already built."""


@dataclass(frozen=True)
class Answer:
    """A model's answer to one question about images."""

    text: str
    model: str  # the name of the backend that answered


def load(model: Model = DEFAULT_MODEL, *, adapter: str | Path | None = None, device: str = "auto") -> Backend:
    """A backend to answer with, built once: pass it to `ask` or `evaluate` to reuse a loaded model."""

    if isinstance(model, Backend):
        return model
    spec = model if isinstance(model, BackendSpec) else BackendSpec(model, Path(adapter) if adapter else None, device)
    backend = build_backend(spec)
    backend.check_ready()
    return backend


def ask(
    images: ImageSource | Sequence[ImageSource],
    text: str,
    *,
    model: Model = DEFAULT_MODEL,
    ground: bool = False,
    settings: GenerationSettings | None = None,
) -> Answer:
    """Ask a question about one image or several; `model="specialist"` answers from the face models alone (no LLM),
    `ground=True` puts the measured face facts before an LLM's question."""

    if not text.strip():
        raise InputError("the question is empty", "ask something about the image(s)")
    pictures = [read_image(i) for i in _image_list(images)]  # read first: a bad image fails before a model loads
    if isinstance(model, Backend):
        backend = model
    else:
        spec = model if isinstance(model, BackendSpec) else BackendSpec(model)
        backend = build_backend(replace(spec, ground=spec.ground or ground))
    (reply,) = backend.answer([Prompt(question(pictures, text))], settings or GenerationSettings())
    if isinstance(reply, Exception):
        raise reply
    return Answer(reply.text, backend.name)


def _image_list(images: ImageSource | Sequence[ImageSource]) -> list[ImageSource]:
    if isinstance(images, str | Path | bytes | Image.Image):
        return [images]
    if not images:
        raise InputError("no images given", "pass one image or a list of them")
    return list(images)
