"""`facellm data`: build FairFaceGPT-style QA datasets with any teacher backend; filter, export, stats, Batch API."""

from __future__ import annotations

from pathlib import Path

import click

from facellm.api import build_dataset, export_dataset
from facellm.backends import BackendSpec
from facellm.cli.common import check_limit, progress_bar, renamed
from facellm.cli.root import cli, close_progress_bars
from facellm.data.batch import ingest_batch, prepare_batch
from facellm.data.build import MODES, TEACHERS, BuildSummary, Prices, checked_aspects
from facellm.data.export import FORMATS
from facellm.data.filters import FilterSettings, flag_records
from facellm.data.sources import SOURCES, load_source
from facellm.data.stats import markdown, write_stats
from facellm.data.store import QAStore, open_existing
from facellm.errors import FaceLLMError
from facellm.prompts import load_prompts


@cli.group("data")
def data_group() -> None:
    """Build FairFaceGPT-style QA datasets: build, filter, export, stats, Batch API files."""


def _source_options(function):

    options = [
        click.option("--source", type=click.Choice(SOURCES), default="fairface", show_default=True),
        click.option("--images", required=True, type=click.Path(path_type=Path), help="Image root folder."),
        click.option("--labels", type=click.Path(path_type=Path), help="Label file (FairFace CSV, CelebA, manifest)."),
        click.option("--limit", type=int, help="First N images only."),
        click.option("--aspects", help="Comma-separated subset of the prompt file's aspects."),
        click.option("--prompts", type=click.Path(path_type=Path), help="Prompt YAML (default: fairfacegpt-v1)."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _records_and_spec(source, images, labels, limit, aspects, prompts):

    check_limit(limit)
    spec = load_prompts(prompts)
    wanted = [a.strip() for a in aspects.split(",") if a.strip()] if aspects else None
    checked_aspects(spec, wanted)
    return load_source(source, images, labels, limit), spec, wanted


@data_group.command("build")
@_source_options
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Run folder (reused to resume).")
@click.option("--teacher", type=click.Choice(TEACHERS), default="template", show_default=True)
@click.option("--base-url", envvar="FACELLM_API_BASE", help="OpenAI-compatible endpoint (openai teacher).")
@click.option("--api-model", help="Teacher model name at --base-url (openai teacher).")
@click.option("--model", "-m", help="Teacher model for the hf teacher: hub id or folder.")
@click.option("--mode", type=click.Choice(MODES), default="per-aspect", show_default=True)
@click.option("--concurrency", type=int, default=16, show_default=True, help="Requests in flight (openai).")
@click.option("--rpm", type=float, help="Requests-per-minute limit.")
@click.option("--tpm", type=float, help="Tokens-per-minute limit.")
@click.option("--max-retries", type=int, default=5, show_default=True)
@click.option("--timeout", type=float, default=120.0, show_default=True, help="Seconds per request.")
@click.option("--batch-size", type=int, default=8, show_default=True, help="Batch size (hf teacher).")
@click.option("--max-new-tokens", type=int, default=700, show_default=True, help="Answer length per aspect.")
@click.option("--price-in", type=float, help="US$ per 1M prompt tokens (default: known price of --model, else 0).")
@click.option("--price-out", type=float, help="US$ per 1M completion tokens.")
@click.option("--retry-failed", is_flag=True, help="Also retry requests that failed in earlier runs.")
@click.option("--measure", is_flag=True, help="Add measured head pose, quality and face count to the prompts.")
@click.option(
    "--new-identity",
    is_flag=True,
    help="OUT holds a run with other settings: move it to OUT/previous/ and start this one.",
)
def data_build(
    source,
    images,
    labels,
    limit,
    aspects,
    prompts,
    out,
    teacher,
    base_url,
    api_model,
    model,
    mode,
    concurrency,
    rpm,
    tpm,
    max_retries,
    timeout,
    batch_size,
    max_new_tokens,
    price_in,
    price_out,
    retry_failed,
    measure,
    new_identity,
) -> None:
    """Ask a teacher about every (image, aspect) of a face collection; resumable, concurrent, filtered."""
    check_limit(limit)
    if teacher == "openai" and model and not api_model:
        click.echo("note: the openai teacher's model is now --api-model; --model names an hf teacher", err=True)
        api_model, model = model, None
    teacher_spec = _teacher_spec(teacher, base_url, api_model or model, concurrency, rpm, tpm, max_retries, timeout)
    teacher_spec.batch_size = batch_size
    with progress_bar("data", "pair") as step:

        def progress(summary: BuildSummary) -> None:
            step(summary.done + summary.failed, summary.pending)

        try:
            run = build_dataset(
                images,
                out,
                labels=labels,
                source=source,
                teacher=teacher_spec,
                prompts=prompts,
                aspects=[a.strip() for a in aspects.split(",") if a.strip()] if aspects else None,
                limit=limit,
                mode=mode,
                max_new_tokens=max_new_tokens,
                measure=measure,
                retry_failed=retry_failed,
                new_identity=new_identity,
                price_in=price_in,
                price_out=price_out,
                progress=progress,
            )
        except KeyboardInterrupt:
            close_progress_bars()
            click.echo(
                f"stopped: every answer received so far is saved in {out}; rerun the same command to resume", err=True
            )
            raise SystemExit(130) from None
    summary = run.this_run
    if run.moved_earlier:
        click.echo(f"the earlier run (other settings) is kept in {run.moved_earlier}", err=True)
    click.echo(
        f"{summary.done} pairs answered, {summary.failed} failed, {summary.skipped_images} images skipped "
        f"this run; the run holds {run.pairs} pairs ({run.kept} kept after filters), "
        f"cost so far US$ {run.cost_usd:.4f}"
    )
    if summary.duplicates:
        shown = "; ".join(
            f"{image} (repeated row)" if image == first else f"{image} = {first}"
            for image, first in list(summary.duplicates.items())[:5]
        )
        more = f" and {len(summary.duplicates) - 5} more" if len(summary.duplicates) > 5 else ""
        click.echo(
            f"{len(summary.duplicates)} duplicate image(s) not sent again (same content as an earlier row): "
            f"{shown}{more}"
        )
    if summary.failures:
        causes = ", ".join(f"{cause}: {n}" for cause, n in summary.failures.items())
        click.echo(f"failures by cause: {causes}; rerun with --retry-failed to try them again")
    click.echo(f"statistics in {out}/stats.md")


def _teacher_spec(kind, base_url, model, concurrency, rpm, tpm, max_retries, timeout) -> BackendSpec:
    """The backend a `--teacher` kind and its flags describe."""

    if kind == "template":
        return BackendSpec("template")
    if not model:
        flag = "--api-model" if kind == "openai" else "--model"
        raise FaceLLMError(f"the {kind} teacher needs {flag}", f"e.g. {flag} gpt-4o-2024-11-20")
    if kind == "openai":
        if not base_url:
            raise FaceLLMError("the openai teacher needs --base-url", "e.g. --base-url https://api.openai.com/v1")
        return BackendSpec(
            api_base=base_url,
            api_model=model,
            concurrency=concurrency,
            rpm=rpm,
            tpm=tpm,
            max_retries=max_retries,
            timeout_s=timeout,
        )
    return BackendSpec(model)


@data_group.command("filter")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--min-chars", type=int, default=40, show_default=True)
@click.option("--max-chars", type=int, default=4000, show_default=True)
def data_filter(run, min_chars, max_chars) -> None:
    """Recompute the quality flags of a run with new thresholds (no new requests)."""
    from collections import Counter

    with open_existing(run) as store:
        flags = flag_records(store.records("done"), FilterSettings(min_chars, max_chars))
        store.set_flags(flags)
    counts = Counter(f for found in flags.values() for f in found)
    kept = sum(not found for found in flags.values())
    click.echo(
        f"{kept} of {len(flags)} pairs pass; flags: " + (", ".join(f"{k} {n}" for k, n in counts.items()) or "none")
    )


@data_group.command("export")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="sharegpt", show_default=True)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Output folder.")
@click.option("--val", "val_fraction", type=float, default=0.05, show_default=True, help="Share of images for val.")
@click.option("--test", "test_fraction", type=float, default=0.0, show_default=True, help="Share of images for test.")
def data_export(run, fmt, out, val_fraction, test_fraction) -> None:
    """Export the kept pairs, split by image, with a dataset card."""

    counts = export_dataset(run, out, format=fmt, val_fraction=val_fraction, test_fraction=test_fraction).pairs
    click.echo(
        f"exported {sum(counts.values())} pairs to {out} (" + ", ".join(f"{k} {n}" for k, n in counts.items()) + ")"
    )


@data_group.command("stats")
@click.argument("run", type=click.Path(path_type=Path))
def data_stats(run) -> None:
    """Counts per aspect and demographic group, failures by cause, flags, lengths, tokens and cost."""

    with open_existing(run) as store:
        stats = write_stats(store)
    click.echo(markdown(stats))
    click.echo(f"written to {run}/stats.md, stats.json, answer_lengths.png, group_balance.png")


@data_group.command("batch-prepare")
@_source_options
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Run folder.")
@click.option("--api-model", "model", help="Model the Batch API job will use, e.g. gpt-4o-2024-11-20.")
@renamed("--model", "--api-model", "model")
@click.option("--file", "batch_file", required=True, type=click.Path(path_type=Path), help="JSONL to write.")
@click.option("--max-new-tokens", type=int, default=700, show_default=True)
def data_batch_prepare(source, images, labels, limit, aspects, prompts, out, model, batch_file, max_new_tokens) -> None:
    """Write every pending request as an OpenAI Batch API input file (per-aspect mode)."""

    if not model:
        raise FaceLLMError("batch-prepare needs --api-model", "e.g. --api-model gpt-4o-2024-11-20")
    records, spec, wanted = _records_and_spec(source, images, labels, limit, aspects, prompts)
    with QAStore(out) as store:
        count = prepare_batch(records, spec, model, store, batch_file, wanted, max_new_tokens)
    click.echo(
        f"{count} requests written to {batch_file}; upload it as a Batch API job, then run "
        f"`facellm data batch-ingest {out} OUTPUT.jsonl`"
    )


@data_group.command("batch-ingest")
@click.argument("run", type=click.Path(path_type=Path))
@click.argument("output_file", type=click.Path(path_type=Path))
@click.option("--price-in", type=float, help="US$ per 1M prompt tokens (Batch API prices are half of live ones).")
@click.option("--price-out", type=float)
def data_batch_ingest(run, output_file, price_in, price_out) -> None:
    """Store the answers of a finished Batch API job."""

    with open_existing(run) as store:
        counts = ingest_batch(store, output_file, Prices(price_in or 0.0, price_out or 0.0))
        store.set_flags(flag_records(store.records("done")))
    click.echo(f"ingested: {counts['done']} answered, {counts['failed']} failed, {counts['unknown']} unknown ids")
