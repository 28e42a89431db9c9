"""Errors a user can cause, and the typed causes of failed backend requests. Each error carries a one-line message
that names the problem and the fix."""

from __future__ import annotations

from enum import StrEnum


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


class Cause(StrEnum):
    """Why a request failed, as reports count it."""

    RATE_LIMITED = "rate limited (429)"
    SERVER_ERROR = "server error (5xx)"
    CLIENT_ERROR = "client error (4xx)"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    GARBAGE = "garbage reply"
    EMPTY = "empty answer"
    OUT_OF_MEMORY = "out of memory"
    BAD_INPUT = "bad input"
    OTHER = "other"


class BackendError(FaceLLMError):
    """A request a backend could not answer; `cause` says why."""

    def __init__(self, message: str, hint: str | None = None, cause: Cause = Cause.OTHER) -> None:
        super().__init__(message, hint)
        self.cause = cause


def cause_of(error: BaseException) -> Cause:
    """The typed cause of a failure (set where it was raised; out-of-memory and bad input known by type)."""
    cause = getattr(error, "cause", None)
    if isinstance(cause, Cause):
        return cause
    if _out_of_memory(error):
        return Cause.OUT_OF_MEMORY
    if isinstance(error, InputError):
        return Cause.BAD_INPUT
    return Cause.OTHER


def _out_of_memory(error: BaseException) -> bool:
    # torch.OutOfMemoryError (CUDA, MPS) and Python's MemoryError, without importing torch here.
    return isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError"
