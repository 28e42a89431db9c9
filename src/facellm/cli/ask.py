"""`facellm ask` and `facellm chat`: questions about images, to any backend."""

from __future__ import annotations

from pathlib import Path

import click

from facellm.api import ask as answer_question
from facellm.backends import BackendSpec, Prompt, build_backend
from facellm.cli.common import generation, model_options
from facellm.cli.root import cli
from facellm.errors import FaceLLMError
from facellm.images import read_image
from facellm.model import Turn
from facellm.model import question as one_question
from facellm.specialist import ground as with_facts


@cli.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--question", "-q", required=True, help="The question to ask about the image(s).")
@click.option("--stream/--no-stream", default=False, help="Print the answer as it is generated.")
@click.option("--ground", is_flag=True, help="Put measured face facts (pose, quality, attributes) before the question.")
@model_options
def ask(
    images, question, stream, ground, model, adapter, device, dtype, max_new_tokens, do_sample, temperature, top_p, seed
) -> None:
    """Ask a question about one or more images and print the answer (`--model specialist`: no LLM, face models)."""

    settings = generation(max_new_tokens, do_sample, temperature, top_p, seed)
    spec = BackendSpec(model, adapter, device, dtype, ground=ground)
    if not stream:
        click.echo(answer_question(list(images), question, model=spec, settings=settings).text)
        return
    pictures = [read_image(path) for path in images]  # read first: a bad image fails before the slow model load
    for piece in build_backend(spec).stream(Prompt(one_question(pictures, question)), settings):
        click.echo(piece, nl=False)
    click.echo()


@cli.command()
@click.argument("images", nargs=-1, type=click.Path(path_type=Path))
@click.option("--system", help="A system prompt that opens the conversation.")
@click.option("--ground", is_flag=True, help="Put measured face facts before each message that brings images.")
@model_options
def chat(
    images, system, ground, model, adapter, device, dtype, max_new_tokens, do_sample, temperature, top_p, seed
) -> None:
    """Talk about image(s) interactively; the conversation history is kept.

    Commands inside the chat: /image PATH adds an image to your next message, /reset clears the history,
    /quit (or Ctrl-D) leaves.
    """

    settings = generation(max_new_tokens, do_sample, temperature, top_p, seed)
    pending = [read_image(path) for path in images]
    backend = build_backend(BackendSpec(model, adapter, device, dtype))
    history = [Turn("system", system)] if system else []
    click.echo("Chat started: /image PATH adds an image, /reset clears history, /quit leaves.", err=True)
    while True:
        try:
            line = click.prompt("you", prompt_suffix="> ", default="", show_default=False).strip()
        except (EOFError, click.Abort):
            break
        if not line:
            continue
        if line in ("/quit", "/exit"):
            break
        if line == "/reset":
            history = [Turn("system", system)] if system else []
            click.echo("(history cleared)", err=True)
            continue
        if line.startswith("/image "):
            try:
                pending.append(read_image(line.removeprefix("/image ").strip()))
                click.echo(f"(image added; {len(pending)} waiting for your next message)", err=True)
            except FaceLLMError as exc:  # a bad image must not end the conversation
                click.echo(f"error: {exc}", err=True)
            continue
        if line.startswith("/") and not line.startswith("//"):
            click.echo(
                f"error: unknown command {line.split()[0]}; use /image PATH, /reset or /quit "
                "(start a message with // to send one that begins with /)",
                err=True,
            )
            continue
        line = line[1:] if line.startswith("//") else line
        if ground and pending:
            line = with_facts(pending, line)
        history.append(Turn("user", line, pending))
        pending = []
        click.echo("facellm> ", nl=False)
        pieces = []
        for piece in backend.stream(Prompt(list(history)), settings):
            pieces.append(piece)
            click.echo(piece, nl=False)
        click.echo()
        history.append(Turn("assistant", "".join(pieces).strip()))
