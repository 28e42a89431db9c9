"""`facellm serve`: the OpenAI-compatible server and web page in front of any backend."""

from __future__ import annotations

from pathlib import Path

import click

from facellm.backends import BackendSpec, build_backend
from facellm.cli.common import renamed
from facellm.cli.root import cli
from facellm.errors import FaceLLMError
from facellm.model.loading import DEFAULT_MODEL
from facellm.serve.engine import Engine
from facellm.serve.requests import Limits


@cli.command("serve")
@click.option("--model", "-m", default=None, help="Hub id or local folder (default: Idiap/FaceLLM-1B).")
@click.option("--adapter", type=click.Path(path_type=Path), help="PEFT adapter to apply.")
@click.option("--offline", is_flag=True, help="Serve labelled template answers without loading any model.")
@click.option(
    "--base-url", "upstream", help="Answer with this OpenAI-compatible engine (e.g. vLLM at http://127.0.0.1:8001/v1)."
)
@renamed("--upstream", "--base-url", "upstream")
@click.option("--api-model", "upstream_model", help="Model name at --base-url (default: the first it lists).")
@renamed("--upstream-model", "--api-model", "upstream_model")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind (0.0.0.0 exposes it).")
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--api-key-env", help="Name of an environment variable holding the key every request must send.")
@click.option("--allow-remote-images", is_flag=True, help="Fetch http(s) image URLs (public addresses only).")
@click.option("--max-batch", type=int, default=8, show_default=True, help="Requests generated together.")
@click.option("--max-queue", type=int, default=64, show_default=True, help="Waiting requests before 429.")
@click.option("--max-tokens", type=int, default=2048, show_default=True, help="Largest max_tokens accepted.")
@click.option(
    "--max-prompt-tokens",
    type=click.IntRange(min=1),
    help="Longest prompt accepted, images included (default: the model's context).",
)
@click.option("--device", default="auto", show_default=True)
@click.option("--dtype", default="auto", show_default=True)
@click.option("--ground", is_flag=True, help="Put measured face facts before every question.")
def serve_command(
    model,
    adapter,
    offline,
    upstream,
    upstream_model,
    host,
    port,
    api_key_env,
    allow_remote_images,
    max_batch,
    max_queue,
    max_tokens,
    max_prompt_tokens,
    device,
    dtype,
    ground,
) -> None:
    """OpenAI-compatible chat-completions server with a web page at / (Ctrl-C stops it)."""
    import errno
    import os
    import socket

    import uvicorn

    from facellm.serve.app import create_app

    api_key = None
    if api_key_env:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise FaceLLMError(f"environment variable {api_key_env} is empty or unset", "export it before serving")
    if sum(bool(x) for x in (offline, model, upstream)) > 1:
        raise FaceLLMError("--offline, --model and --base-url exclude each other", "give one of them")
    if not 1 <= port <= 65535:
        raise FaceLLMError(f"--port {port} is not a TCP port", "pick a port from 1 to 65535, e.g. --port 8000")
    listening = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:  # bound before the slow model load, so a taken port is reported at once
        listening.bind((host, port))
    except (OSError, OverflowError) as exc:
        listening.close()
        if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
            hint = "pick another --port, or stop what is using this one"
        else:
            hint = "pass a --host address this machine has (127.0.0.1, 0.0.0.0 or one of its interfaces)"
        raise FaceLLMError(f"cannot listen on {host}:{port} ({getattr(exc, 'strerror', None) or exc})", hint) from None
    if offline:
        model = "offline"
    spec = BackendSpec(
        model=None if upstream else model or DEFAULT_MODEL,
        adapter=adapter,
        device=device,
        dtype=dtype,
        batch_size=max_batch,
        max_prompt_tokens=max_prompt_tokens,
        api_base=upstream,
        api_model=upstream_model,
        concurrency=max_batch,
        proxy=True,
        ground=ground,
    )
    backend = build_backend(spec)
    limits = Limits(max_tokens=max_tokens, allow_remote_images=allow_remote_images)
    app = create_app(Engine(backend, max_batch=max_batch, max_queue=max_queue), limits, api_key)
    click.echo(f"serving {backend.name} on http://{host}:{port} (web page at /, API at /v1)", err=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[listening])
