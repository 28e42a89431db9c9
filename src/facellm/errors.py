"""Errors a user can cause. Each carries a one-line message that names the problem and the fix."""

from __future__ import annotations


class FaceLLMError(Exception):
    """Base class for user-facing errors: the CLI prints the message on one line and exits with code 2."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message}; {hint}" if hint else message)


class ImageError(FaceLLMError):
    """An image could not be read: missing, not an image, truncated, too large."""


class ModelLoadError(FaceLLMError):
    """A model, processor or adapter could not be loaded."""


class InputError(FaceLLMError):
    """Arguments that do not make sense together (empty question, bad option values)."""


class NoFaceError(FaceLLMError):
    """An image that needs a face (verification, identity questions) shows none the detectors can find."""


class ResearchModelsOff(ModelLoadError):
    """A model trained on research-only data was needed while FACELLM_RESEARCH_MODELS=0."""
