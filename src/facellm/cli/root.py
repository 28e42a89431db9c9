"""The `facellm` command group. User errors (`FaceLLMError`, and flags click refuses) print one line and exit with
code 2."""

from __future__ import annotations

import sys

import click

from facellm.errors import FaceLLMError

EXIT_USER_ERROR = 2


class _Group(click.Group):
    """A click group that turns `FaceLLMError` and click's usage errors (unknown option, bad value, missing argument)
    into one `error: ...` line on stderr and exit code 2 (traceback with --debug)."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except click.exceptions.NoArgsIsHelpError:
            raise  # a bare group: click prints its help
        except (FaceLLMError, click.UsageError) as exc:
            if (ctx.obj or {}).get("debug"):
                raise
            close_progress_bars()
            if isinstance(exc, click.UsageError):
                where = exc.ctx.command_path if exc.ctx else ctx.command_path
                click.echo(f"error: {exc.format_message().rstrip('.')}; see '{where} --help'", err=True)
            else:
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
