"""The `facellm` command group. User errors (`FaceLLMError`) print one line and exit with code 2."""

from __future__ import annotations

import sys

import click

from facellm.errors import FaceLLMError

EXIT_USER_ERROR = 2


class _Group(click.Group):
    """A click group that turns `FaceLLMError` into `error: ...` on stderr and exit code 2 (traceback with --debug)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except FaceLLMError as exc:
            if (ctx.obj or {}).get("debug"):
                raise
            close_progress_bars()
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_USER_ERROR)


def close_progress_bars() -> None:
    """Close every progress bar still drawn (ours, or a library's such as the Trainer's), so that what follows
    starts on a line of its own."""
    tqdm = sys.modules.get("tqdm")
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", ())):
        bar.close()


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.version_option(package_name="facellm")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """FaceLLM: build, train, evaluate and serve face-understanding multimodal LLMs."""
    ctx.ensure_object(dict)["debug"] = debug
