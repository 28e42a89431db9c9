"""`facellm eval`: FaceXBench and FairFace runs of any backend, reports, and the contamination check."""

from __future__ import annotations

from pathlib import Path

import click

from facellm.api import RunCounts, check_overlap, evaluate, evaluate_fairface
from facellm.backends import BackendSpec
from facellm.cli.common import backend_options, check_limit, progress_bar
from facellm.cli.root import cli
from facellm.errors import FaceLLMError
from facellm.eval.facexbench import SETTINGS
from facellm.eval.report import EXTRACTORS, markdown, official_text, write_report


@cli.group("eval")
def eval_group() -> None:
    """Evaluate models: FaceXBench runs and reports, FairFace fairness, contamination check."""


def _spec(backend: dict) -> BackendSpec:
    """The backend the eval flags describe (they carry BackendSpec's own field names, cli/common.py)."""
    spec = BackendSpec(**backend)
    if bool(spec.model) == bool(spec.api_base):
        raise FaceLLMError(
            "give either --model (local, or `specialist`) or --base-url with --api-model (API)", "pick one"
        )
    return spec


def _say_answered(counts: RunCounts, out: Path) -> None:
    click.echo(
        f"answered {counts.answered_total}/{counts.questions} questions "
        f"({counts.failed_now} failed this run; rerun the same command to retry them); report in {out}"
    )


@eval_group.command("facexbench")
@click.option("--bench-dir", required=True, type=click.Path(path_type=Path), help="FaceXBench's benchmark folder.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Run folder (reused to resume).")
@click.option("--setting", type=click.Choice(SETTINGS), default="zero-shot", show_default=True)
@click.option("--only", help="Comma-separated sub-categories, e.g. age,gender,race.")
@click.option("--limit", type=int, help="First N questions of each file (quick runs).")
@click.option("--max-new-tokens", type=int, help="Answer length (default 16; 512 with --setting cot).")
@backend_options
def eval_facexbench(bench_dir, out, setting, only, limit, max_new_tokens, **backend) -> None:
    """Answer FaceXBench questions with a local or API model, resumably, then write the report into OUT."""

    check_limit(limit)
    wanted = [s.strip() for s in only.split(",") if s.strip()] if only else None
    new_identity = backend.pop("new_identity")
    with progress_bar("facexbench", "q") as progress:
        run = evaluate(
            bench_dir,
            out,
            model=_spec(backend),
            setting=setting,
            only=wanted,
            limit=limit,
            max_new_tokens=max_new_tokens,
            new_identity=new_identity,
            progress=progress,
        )
    click.echo(markdown(run.reports, run.model).split("\n## ")[0])
    _say_answered(run.counts, out)


@eval_group.command("fairface")
@click.option("--labels", required=True, type=click.Path(path_type=Path), help="FairFace label CSV.")
@click.option("--images", required=True, type=click.Path(path_type=Path), help="Folder the CSV's paths start from.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Run folder (reused to resume).")
@click.option("--tasks", default="age,gender,race", show_default=True, help="Comma-separated subset.")
@click.option("--limit", type=int, help="First N images of the CSV.")
@click.option("--max-new-tokens", type=int, default=16, show_default=True)
@backend_options
def eval_fairface(labels, images, out, tasks, limit, max_new_tokens, **backend) -> None:
    """Age, gender and race accuracy on FairFace, per race group, with the largest gap and confusion matrices."""

    check_limit(limit)
    wanted = tuple(t.strip() for t in tasks.split(",") if t.strip())
    new_identity = backend.pop("new_identity")
    with progress_bar("fairface", "q") as progress:
        run = evaluate_fairface(
            labels,
            images,
            out,
            model=_spec(backend),
            tasks=wanted,
            limit=limit,
            max_new_tokens=max_new_tokens,
            new_identity=new_identity,
            progress=progress,
        )
    for task, r in run.tasks.items():
        click.echo(
            f"{task:6s} {r.accuracy:6.2f}% ({r.correct}/{r.total}), unparsed {r.unparsed}, "
            f"largest race gap {r.race_gap:.2f} points (lowest: {r.lowest_race})"
        )
    _say_answered(run.counts, out)


@eval_group.command("overlap")
@click.option("--train", required=True, type=click.Path(path_type=Path), help="Image folder or dataset JSON/JSONL.")
@click.option("--bench-dir", required=True, type=click.Path(path_type=Path), help="FaceXBench's benchmark folder.")
@click.option("--image-root", type=click.Path(path_type=Path), help="Folder the dataset's image paths start from.")
@click.option("--max-distance", type=int, default=32, show_default=True, help="Bits (of 256) copies may differ by.")
@click.option("--out", type=click.Path(path_type=Path), help="Write the matches to this JSON file.")
def eval_overlap(train, bench_dir, image_root, max_distance, out) -> None:
    """Find benchmark images that also occur in a training set (perceptual hash)."""
    import json
    from dataclasses import asdict

    if not 0 <= max_distance <= 256:
        raise FaceLLMError(f"--max-distance must be between 0 and 256, got {max_distance}", "use e.g. 32")
    found = check_overlap(train, bench_dir, image_root=image_root, max_distance=max_distance)
    click.echo(
        f"{len(found.matches)} of {found.bench_images} benchmark images occur in the training set "
        f"({found.train_images} images, max distance {max_distance} bits)"
    )
    for name, count in found.per_file.items():
        click.echo(f"  {name}: {count}")
    for reason in found.skipped:
        click.echo(f"skipped: {reason}", err=True)
    if out:
        payload = {"matches": [asdict(m) for m in found.matches], "per_file": found.per_file, "skipped": found.skipped}
        out.write_text(json.dumps(payload, indent=1), encoding="utf-8")
        click.echo(f"matches written to {out}")


@eval_group.command("report")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--extractor", type=click.Choice(["both", *EXTRACTORS]), default="both", show_default=True)
@click.option("--model-name", help="Name printed in the report (default: the run's model).")
def eval_report(run: Path, extractor: str, model_name: str | None) -> None:
    """Score a run folder, or any folder of FaceXBench result JSONs (e.g. from VLMEvalKit), with both extractors."""
    import json

    identity = run / "run.json"
    name = model_name or (json.loads(identity.read_text())["answerer"] if identity.exists() else run.name)
    results = run / "results" if (run / "results").is_dir() else run
    reports = write_report(results, run, name)
    for report in reports:
        if extractor in ("both", report.extractor):
            click.echo(f"== extractor: {report.extractor} (unparsed answers: {report.overall.unparsed})")
            click.echo(official_text(report, name))
    click.echo(f"report written to {run}/report.md, report.json, report.png, results.txt")
