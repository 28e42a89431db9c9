"""`facellm demo` (the whole method offline) and `facellm reproduce` (the paper at real scale)."""

from __future__ import annotations

import contextlib
import io
import shlex
from collections.abc import Callable
from pathlib import Path

import click

from facellm.cli.common import renamed
from facellm.cli.root import cli
from facellm.data.build import prices_for
from facellm.demo import DemoSettings, run_demo
from facellm.errors import FaceLLMError, InputError
from facellm.plan import SIZES, describe
from facellm.reproduce import PLANNED_GPU_MEMORY_GIB, PLANNED_GPUS, PROMPT_TOKENS, memory, plan


@cli.command("demo")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/demo"), show_default=True)
@click.option("--images", type=int, default=8, show_default=True, help="Training faces (the rest evaluate).")
@click.option("--eval-images", type=int, default=4, show_default=True, help="Evaluation faces, kept apart.")
@click.option("--fairface", type=click.Path(path_type=Path), help="A FairFace folder to draw faces from instead.")
@click.option("--base-url", help="OpenAI-compatible teacher endpoint (default: the offline template teacher).")
@click.option("--api-model", help="Teacher model name at --base-url.")
@renamed("--model", "--api-model", "api_model")
@click.option("--train-steps", type=int, default=100, show_default=True)
def demo_command(out, images, eval_images, fairface, base_url, api_model, train_steps) -> None:
    """The whole FaceLLM method offline on CPU: faces -> dataset -> LoRA -> merged model -> evaluation -> report."""

    if bool(base_url) != bool(api_model):
        raise FaceLLMError(
            "a teacher needs both --base-url and --api-model", "give both, or neither for the offline one"
        )
    settings = DemoSettings(out, images, eval_images, fairface, base_url, api_model, train_steps)
    report = run_demo(settings, say=lambda line: click.echo(line, err=True))
    click.echo(f"demo finished; report: {report}")


@cli.command("reproduce")
@click.option("--size", type=click.Choice(SIZES), required=True)
@click.option("--fairface", type=click.Path(path_type=Path), default=Path("data/fairface"), show_default=True)
@click.option(
    "--bench-dir", type=click.Path(path_type=Path), default=Path("data/facexbench/benchmark"), show_default=True
)
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/reproduce"), show_default=True)
@click.option("--base-url", default="https://api.openai.com/v1", show_default=True, help="Teacher endpoint.")
@click.option("--api-model", "teacher_model", default="gpt-4o-2024-11-20", show_default=True, help="Teacher model.")
@renamed("--teacher-model", "--api-model", "teacher_model")
@click.option("--price-in", type=float, help="US$ per 1M prompt tokens (default: known price of the model).")
@click.option("--price-out", type=float)
@click.option("--dry-run", is_flag=True, help="Print the plan, request count and cost estimate; run nothing.")
def reproduce_command(size, fairface, bench_dir, out, base_url, teacher_model, price_in, price_out, dry_run) -> None:
    """The paper's pipeline at real scale with the real models (GPUs and network needed)."""

    prices = prices_for(teacher_model, price_in, price_out)
    steps = plan(size, fairface, bench_dir, out, base_url, teacher_model, prices.input, prices.output)
    click.echo(
        f"teacher requests: {steps.requests:,} (images x aspects); estimated teacher cost US$ "
        f"{steps.cost:,.2f} at {prices.input}/{prices.output} $ per 1M tokens, assuming ~{PROMPT_TOKENS} "
        f"prompt tokens per request"
    )
    click.echo("plan:")
    for command in steps.commands:
        click.echo("  " + shlex.join(command))

    click.echo(
        f"memory plan (per GPU, {PLANNED_GPUS} GPUs of {PLANNED_GPU_MEMORY_GIB:g} GiB; "
        "`facellm plan` for other machines):"
    )
    click.echo(describe(memory(size)))
    for problem in steps.problems:
        click.echo(f"missing: {problem}", err=True)
    if dry_run:
        return
    if steps.problems:
        raise FaceLLMError(f"{len(steps.problems)} prerequisite(s) missing (listed above)", "fix them or use --dry-run")
    execute(steps.commands, say=click.echo)


def check_commands(commands: list[list[str]]) -> None:
    """Parse every planned command with the real CLI (unknown or renamed flags fail here, nothing runs)."""
    for command in commands:
        said = io.StringIO()  # --help stops after parsing; the help text itself is not wanted
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(said):
            code = cli.main([*command[1:], "--help"], prog_name="facellm", standalone_mode=False)
        if code:  # a usage error, printed as one line by the root group
            raise InputError(
                f"the plan's command `{shlex.join(command)}` does not parse ({said.getvalue().strip()})",
                "report this: the plan and the CLI disagree",
            )


def execute(commands: list[list[str]], say: Callable[[str], None]) -> None:
    """Run the planned commands in this process, in order; stop at the first that fails."""
    check_commands(commands)
    for command in commands:
        say("$ " + shlex.join(command))
        code = cli.main(command[1:], prog_name="facellm", standalone_mode=False)
        if code:
            raise InputError(
                f"`{shlex.join(command)}` failed (exit code {code})",
                "fix the problem it printed, then rerun: finished steps resume",
            )
