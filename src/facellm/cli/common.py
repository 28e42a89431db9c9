"""Flags and small helpers shared by several command modules."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from facellm.backends.local import SCORINGS
from facellm.data.sources import IMAGE_SUFFIXES
from facellm.errors import FaceLLMError
from facellm.model import GenerationSettings
from facellm.model.loading import DEFAULT_MODEL, DTYPES

if TYPE_CHECKING:
    from facellm.conversation import GenerationSettings


def renamed(old: str, new: str, dest: str) -> Callable:
    """A hidden option that keeps an old flag name working for `new` (same value) and says so once on stderr."""

    def note(ctx: click.Context, param: click.Parameter, value: object) -> None:
        if value is not None:
            click.echo(f"note: {old} is now {new}; the old name will be removed", err=True)
            ctx.params[dest] = value  # `new`, not typed, then keeps it (click never overwrites a slot with a default)

    own_name = "renamed_" + old.lstrip("-").replace("-", "_")
    return click.option(old, own_name, hidden=True, expose_value=False, callback=note)


def _apply(function, options):
    for option in reversed(options):
        function = option(function)
    return function


def model_options(function: Callable) -> Callable:
    """A model to answer (hub id, folder, or `specialist`) and its decoding options: `ask`, `chat`."""

    return _apply(
        function,
        [
            click.option(
                "--model",
                "-m",
                default=DEFAULT_MODEL,
                show_default=True,
                help="Hub id or local folder, or `specialist` (face-analysis models, no LLM).",
            ),
            click.option("--adapter", type=click.Path(path_type=Path), help="PEFT LoRA adapter folder to apply."),
            click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."),
            click.option("--dtype", type=click.Choice(DTYPES), default="auto", show_default=True),
            click.option("--max-new-tokens", type=int, default=256, show_default=True),
            click.option("--sample/--greedy", "do_sample", default=False, help="Sample instead of greedy decoding."),
            click.option("--temperature", type=float, default=0.7, show_default=True, help="Used with --sample."),
            click.option("--top-p", type=float, default=0.9, show_default=True, help="Used with --sample."),
            click.option("--seed", type=int, help="Random seed for reproducible sampling."),
        ],
    )


def backend_options(function: Callable) -> Callable:
    """The model answering benchmark questions: local (or `specialist`), or an OpenAI-compatible API."""

    return _apply(
        function,
        [
            click.option("--model", "-m", help="Local model: hub id or folder, or `specialist`."),
            click.option("--adapter", type=click.Path(path_type=Path), help="PEFT adapter for the local model."),
            click.option("--device", default="auto", show_default=True),
            click.option("--dtype", default="auto", show_default=True),
            click.option("--batch-size", type=int, default=8, show_default=True, help="Local model batch size."),
            click.option(
                "--scoring",
                type=click.Choice(SCORINGS),
                default="generate",
                show_default=True,
                help="likelihood: pick the option letter the local model finds most probable (no generation).",
            ),
            click.option(
                "--base-url",
                "api_base",
                help="OpenAI-compatible endpoint, e.g. https://api.openai.com/v1 (key from env).",
            ),
            renamed("--api-base", "--base-url", "api_base"),
            click.option("--api-model", help="Model name at the endpoint."),
            click.option("--concurrency", type=int, default=8, show_default=True, help="API requests in flight."),
            click.option("--rpm", type=float, help="API requests-per-minute limit."),
            click.option("--max-retries", type=int, default=5, show_default=True, help="API retries per request."),
            click.option("--ground", is_flag=True, help="Put measured face facts before every question."),
            click.option(
                "--new-identity",
                is_flag=True,
                help="OUT holds a run with other settings: move it to OUT/previous/ and start this one.",
            ),
        ],
    )


def generation(
    max_new_tokens: int, do_sample: bool, temperature: float, top_p: float, seed: int | None
) -> GenerationSettings:

    return GenerationSettings(max_new_tokens, do_sample, temperature, top_p, seed)


def check_limit(limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise FaceLLMError(f"--limit must be at least 1, got {limit}", "drop it to run everything")


def expand_images(paths: Iterable[str | Path]) -> list[Path]:
    """Image files, with folders replaced by the images inside them (recursively, sorted)."""

    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            found.append(path)
    return found


def report_skipped(reasons: list[str], shown: int = 3) -> None:
    """Skipped items on stderr: every one when few, else the count and the first `shown` (a wrong folder must not
    bury the one line that says so under thousands)."""
    for reason in reasons if len(reasons) <= 2 * shown else reasons[:shown]:
        click.echo(f"skipped {reason}", err=True)
    if len(reasons) > 2 * shown:
        click.echo(f"skipped {len(reasons)} items in all ({len(reasons) - shown} more not shown)", err=True)


@contextmanager
def progress_bar(label: str, unit: str) -> Iterator[Callable[[int, int], None]]:
    """The `progress(done, total)` callback the library's functions take, drawing a progress bar on stderr from its
    first call on (an input refused before any work starts leaves only its error line)."""
    from tqdm import tqdm

    bars: list[tqdm] = []

    def progress(done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(desc=label, unit=unit, total=total))
        bars[0].total = total
        bars[0].update(done - bars[0].n)

    try:
        yield progress
    finally:
        for bar in bars:
            bar.close()


landmarks_option = click.option(
    "--landmarks",
    "landmark_points",
    type=click.Choice(["68", "5"]),
    default=None,
    help="5: never load the 68-point model (non-commercial training data); default 68 or $FACELLM_LANDMARKS.",
)
