"""Backends: whatever answers conversations about images, behind one interface (`base.Backend`).

`build_backend` is the one place a user's flags become a backend: a named backend (`NAMED`), an OpenAI-compatible
endpoint (`api_base`), or else a local Hugging Face model (hub id or folder); `ground` wraps any of them.
Adding a backend: one module with a `Backend` subclass (a `from_spec(spec)` classmethod when it needs flags), and
one line in `NAMED`.
"""

from __future__ import annotations

import importlib

from facellm.backends.base import Backend, BackendSpec, Prompt, Reply, answer_safely
from facellm.backends.grounded import Grounded
from facellm.backends.local import LocalBackend
from facellm.backends.openai_client import ChatClient, EndpointConfig
from facellm.backends.openai_compatible import OpenAIBackend
from facellm.backends.upstream import UpstreamBackend
from facellm.errors import Cause, InputError, cause_of
from facellm.model import load_model
from facellm.model.loading import describe_model

# Backends chosen by name with --model NAME; each value is "module:class".
NAMED = {
    "specialist": "facellm.backends.specialist:SpecialistBackend",
    "template": "facellm.backends.template:TemplateBackend",
    "offline": "facellm.backends.offline:OfflineBackend",
}

__all__ = [
    "NAMED",
    "Backend",
    "BackendSpec",
    "Cause",
    "Prompt",
    "Reply",
    "answer_safely",
    "backend_name",
    "build_backend",
    "cause_of",
]


def build_backend(spec: BackendSpec) -> Backend:
    """The backend the flags describe; a one-line `InputError` when they do not describe exactly one."""
    backend = _plain(spec)
    if spec.ground and not backend.measures_faces:
        return Grounded(backend)
    return backend


def backend_name(spec: BackendSpec) -> str:
    """The name of the backend `build_backend(spec)` builds, known before anything loads: run folders are checked
    against it first, so a refused rerun never loads weights. (Not for `proxy` upstreams, named by the upstream.)"""
    check_spec(spec)
    if spec.model in NAMED:
        named = _named(spec.model)
        name, measures_faces = named.name, named.measures_faces
    elif spec.api_base:
        name, measures_faces = f"openai:{spec.api_model or ''}", False
    else:
        assert spec.model is not None  # check_spec: a model or an endpoint
        name, measures_faces = "hf:" + describe_model(spec.model, spec.adapter), False
    return f"{name}+grounded" if spec.ground and not measures_faces else name


def check_spec(spec: BackendSpec) -> None:
    """The flag combinations no backend can take, refused before anything is built."""
    if bool(spec.model) == bool(spec.api_base):
        raise InputError(
            "give either a model (hub id, folder or one of " + ", ".join(NAMED) + ") or an OpenAI-compatible endpoint",
            "pick one",
        )
    if spec.api_base and not spec.api_model and not spec.proxy:
        raise InputError("--base-url needs --api-model", "pass the model name the endpoint serves")
    if spec.scoring == "likelihood" and (spec.api_base or spec.model in NAMED):
        raise InputError("--scoring likelihood needs a local --model", "use --scoring generate")
    if spec.model and spec.model not in NAMED and spec.batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {spec.batch_size}", "use 1 or more")


def _named(model: str) -> type[Backend]:
    module, _, cls = NAMED[model].partition(":")
    return getattr(importlib.import_module(module), cls)


def _plain(spec: BackendSpec) -> Backend:
    check_spec(spec)
    if spec.model in NAMED:
        return _named(spec.model).from_spec(spec)
    if spec.api_base and spec.proxy:
        return UpstreamBackend(spec.api_base, spec.api_model, concurrency=spec.concurrency)
    if spec.api_base:
        config = EndpointConfig(
            spec.api_base,
            spec.api_model or "",
            concurrency=spec.concurrency,
            requests_per_minute=spec.rpm,
            tokens_per_minute=spec.tpm,
            max_retries=spec.max_retries,
            timeout_s=spec.timeout_s,
        )
        return OpenAIBackend(ChatClient(config))

    assert spec.model is not None  # check_spec: a model or an endpoint
    lm = load_model(spec.model, adapter=spec.adapter, device=spec.device, dtype=spec.dtype)
    return LocalBackend(lm, batch_size=spec.batch_size, scoring=spec.scoring, max_prompt_tokens=spec.max_prompt_tokens)
