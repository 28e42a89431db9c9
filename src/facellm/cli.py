"""The `facellm` command: thin subcommands over the library. User errors print one line and exit with code 2."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from facellm.errors import FaceLLMError
from facellm.eval.facexbench import SETTINGS
from facellm.faces.classifier import TASKS as CLASSIFIER_TASKS

EXIT_USER_ERROR = 2


class _Group(click.Group):
    """A click group that turns `FaceLLMError` into `error: ...` on stderr and exit code 2 (traceback with --debug)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except FaceLLMError as exc:
            if (ctx.obj or {}).get("debug"):
                raise
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_USER_ERROR)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.version_option(package_name="facellm")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """FaceLLM: build, train, evaluate and serve face-understanding multimodal LLMs."""
    ctx.ensure_object(dict)["debug"] = debug


def _model_options(function):
    """Options shared by every command that loads a model."""
    from facellm.model.loading import DEFAULT_MODEL, DTYPES

    options = [
        click.option("--model", "-m", default=DEFAULT_MODEL, show_default=True, help="Hub id or local folder."),
        click.option("--adapter", type=click.Path(path_type=Path), help="PEFT LoRA adapter folder to apply."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."),
        click.option("--dtype", type=click.Choice(DTYPES), default="auto", show_default=True),
        click.option("--max-new-tokens", type=int, default=256, show_default=True),
        click.option("--sample/--greedy", "do_sample", default=False, help="Sample instead of greedy decoding."),
        click.option("--temperature", type=float, default=0.7, show_default=True, help="Used with --sample."),
        click.option("--top-p", type=float, default=0.9, show_default=True, help="Used with --sample."),
        click.option("--seed", type=int, help="Random seed for reproducible sampling."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _load(model, adapter, device, dtype):
    from facellm.model import load_model

    return load_model(model, adapter=adapter, device=device, dtype=dtype)


def _settings(max_new_tokens, do_sample, temperature, top_p, seed):
    from facellm.model import GenerationSettings

    return GenerationSettings(max_new_tokens, do_sample, temperature, top_p, seed)


@cli.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--question", "-q", required=True, help="The question to ask about the image(s).")
@click.option("--stream/--no-stream", default=False, help="Print the answer as it is generated.")
@click.option("--ground", is_flag=True, help="Put measured face facts (pose, quality, attributes) before the question.")
@_model_options
def ask(images, question, stream, ground, model, adapter, device, dtype, max_new_tokens, do_sample, temperature,
        top_p, seed):  # fmt: skip
    """Ask a question about one or more images and print the answer (`--model specialist`: no LLM, face models)."""
    from facellm.images import read_image
    from facellm.model import generate
    from facellm.model import question as one_question
    from facellm.model import stream as stream_answer

    settings = _settings(max_new_tokens, do_sample, temperature, top_p, seed)
    pictures = [read_image(path) for path in images]  # read first: a bad image fails before the slow model load
    if model == "specialist":
        from facellm import specialist

        click.echo(specialist.answer(pictures, question))
        return
    if ground:
        from facellm.specialist import ground as with_facts

        question = with_facts(pictures, question)
    lm = _load(model, adapter, device, dtype)
    conversation = one_question(pictures, question)
    if stream:
        for piece in stream_answer(lm, conversation, settings):
            click.echo(piece, nl=False)
        click.echo()
    else:
        click.echo(generate(lm, [conversation], settings)[0])


@cli.command()
@click.argument("images", nargs=-1, type=click.Path(path_type=Path))
@click.option("--system", help="A system prompt that opens the conversation.")
@click.option("--ground", is_flag=True, help="Put measured face facts before each message that brings images.")
@_model_options
def chat(images, system, ground, model, adapter, device, dtype, max_new_tokens, do_sample, temperature, top_p,
         seed):  # fmt: skip
    """Talk about image(s) interactively; the conversation history is kept.

    Commands inside the chat: /image PATH adds an image to your next message, /reset clears the history,
    /quit (or Ctrl-D) leaves.
    """
    from facellm.images import read_image
    from facellm.model import Turn
    from facellm.model import stream as stream_answer

    settings = _settings(max_new_tokens, do_sample, temperature, top_p, seed)
    pending = [read_image(path) for path in images]
    lm = _load(model, adapter, device, dtype)
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
        if ground and pending:
            from facellm.specialist import ground as with_facts

            line = with_facts(pending, line)
        history.append(Turn("user", line, pending))
        pending = []
        click.echo("facellm> ", nl=False)
        pieces = []
        for piece in stream_answer(lm, history, settings):
            pieces.append(piece)
            click.echo(piece, nl=False)
        click.echo()
        history.append(Turn("assistant", "".join(pieces).strip()))


@cli.group("eval")
def eval_group() -> None:
    """Evaluate models: FaceXBench runs and reports, FairFace fairness, contamination check."""


def _backend_options(function):
    """Options that pick the model answering benchmark questions: a local model or an OpenAI-compatible API."""
    options = [
        click.option("--model", "-m", help="Local model: hub id or folder."),
        click.option("--adapter", type=click.Path(path_type=Path), help="PEFT adapter for the local model."),
        click.option("--device", default="auto", show_default=True),
        click.option("--dtype", default="auto", show_default=True),
        click.option("--batch-size", type=int, default=8, show_default=True, help="Local model batch size."),
        click.option(
            "--scoring",
            type=click.Choice(["generate", "likelihood"]),
            default="generate",
            show_default=True,
            help="likelihood: pick the option letter the local model finds most probable (no generation).",
        ),
        click.option("--api-base", help="OpenAI-compatible endpoint, e.g. https://api.openai.com/v1 (key from env)."),
        click.option("--api-model", help="Model name at the endpoint."),
        click.option("--concurrency", type=int, default=8, show_default=True, help="API requests in flight."),
        click.option("--rpm", type=float, help="API requests-per-minute limit."),
        click.option("--max-retries", type=int, default=5, show_default=True, help="API retries per request."),
        click.option("--ground", is_flag=True, help="Put measured face facts before every question."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _answerer(tokens, model, adapter, device, dtype, batch_size, scoring, api_base, api_model, concurrency, rpm,
              max_retries, ground):  # fmt: skip
    """The local, API or specialist answerer the backend options describe (grounded when asked)."""
    from facellm.specialist import GroundedAnswerer

    answerer = _plain_answerer(tokens, model, adapter, device, dtype, batch_size, scoring, api_base, api_model,
                               concurrency, rpm, max_retries)  # fmt: skip
    return GroundedAnswerer(answerer) if ground else answerer


def _plain_answerer(tokens, model, adapter, device, dtype, batch_size, scoring, api_base, api_model, concurrency,
                    rpm, max_retries):  # fmt: skip
    from facellm.eval.run import ApiAnswerer, LocalAnswerer

    if bool(model) == bool(api_base):
        raise FaceLLMError("give either --model (local) or --api-base with --api-model (API)", "pick one")
    if model == "specialist":
        from facellm.specialist import SpecialistAnswerer

        return SpecialistAnswerer()
    if batch_size < 1:
        raise FaceLLMError(f"--batch-size must be at least 1, got {batch_size}", "use 1 or more")
    if api_base:
        from facellm.api import ChatClient, EndpointConfig

        if scoring == "likelihood":
            raise FaceLLMError("--scoring likelihood needs a local --model", "use --scoring generate for APIs")
        config = EndpointConfig(api_base, api_model or "", concurrency=concurrency, requests_per_minute=rpm,
                                max_retries=max_retries)  # fmt: skip
        return ApiAnswerer(ChatClient(config), f"api:{api_model}", tokens)
    from facellm.model.loading import describe_model

    lm = _load(model, adapter, device, dtype)
    return LocalAnswerer(lm, describe_model(model, adapter), tokens, batch_size, scoring)


def _run_with_progress(questions, answerer, out, setting, identity, label):
    from tqdm import tqdm

    from facellm.eval.run import run_questions

    with tqdm(total=len(questions), desc=label, unit="q") as bar:
        return run_questions(questions, answerer, out, setting, identity, progress=bar.update)


def _say_answered(summary: dict, out: Path) -> None:
    click.echo(
        f"answered {summary['answered_total']}/{summary['questions']} questions "
        f"({summary['failed_now']} failed this run; rerun the same command to retry them); report in {out}"
    )


def _check_limit(limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise FaceLLMError(f"--limit must be at least 1, got {limit}", "drop it to run everything")


@eval_group.command("facexbench")
@click.option("--bench-dir", required=True, type=click.Path(path_type=Path), help="FaceXBench's benchmark folder.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Run folder (reused to resume).")
@click.option("--setting", type=click.Choice(SETTINGS), default="zero-shot", show_default=True)
@click.option("--only", help="Comma-separated sub-categories, e.g. age,gender,race.")
@click.option("--limit", type=int, help="First N questions of each file (quick runs).")
@click.option("--max-new-tokens", type=int, help="Answer length (default 16; 512 with --setting cot).")
@_backend_options
def eval_facexbench(bench_dir, out, setting, only, limit, max_new_tokens, **backend):
    """Answer FaceXBench questions with a local or API model, resumably, then write the report into OUT."""
    from facellm.eval.facexbench import load_benchmark
    from facellm.eval.report import markdown, write_report

    _check_limit(limit)
    wanted = {s.strip() for s in only.split(",") if s.strip()} if only else None
    questions = load_benchmark(bench_dir, only=wanted, limit=limit)
    tokens = max_new_tokens or (512 if setting == "cot" else 16)
    answerer = _answerer(tokens, **backend)
    identity = {"bench_dir": str(bench_dir), "scoring": backend["scoring"], "max_new_tokens": tokens,
                "grounded": backend["ground"]}  # fmt: skip
    summary = _run_with_progress(questions, answerer, out, setting, identity, "facexbench")
    reports = write_report(out / "results", out, answerer.name)
    click.echo(markdown(reports, answerer.name).split("\n## ")[0])
    _say_answered(summary, out)


@eval_group.command("fairface")
@click.option("--labels", required=True, type=click.Path(path_type=Path), help="FairFace label CSV.")
@click.option("--images", required=True, type=click.Path(path_type=Path), help="Folder the CSV's paths start from.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Run folder (reused to resume).")
@click.option("--tasks", default="age,gender,race", show_default=True, help="Comma-separated subset.")
@click.option("--limit", type=int, help="First N images of the CSV.")
@click.option("--max-new-tokens", type=int, default=16, show_default=True)
@_backend_options
def eval_fairface(labels, images, out, tasks, limit, max_new_tokens, **backend):
    """Age, gender and race accuracy on FairFace, per race group, with the largest gap and confusion matrices."""
    from facellm.eval.fairface import fairface_report, load_fairface
    from facellm.eval.run import load_done

    _check_limit(limit)
    wanted = tuple(t.strip() for t in tasks.split(",") if t.strip())
    questions, truth = load_fairface(labels, images, wanted, limit)
    answerer = _answerer(max_new_tokens, **backend)
    identity = {"labels": str(labels), "scoring": backend["scoring"], "max_new_tokens": max_new_tokens,
                "grounded": backend["ground"]}  # fmt: skip
    summary = _run_with_progress(questions, answerer, out, "zero-shot", identity, "fairface")
    report = fairface_report(questions, load_done(out), truth, out)
    for task, r in report["tasks"].items():
        worst = min(r["per_race"], key=r["per_race"].get)
        click.echo(f"{task:6s} {r['accuracy']:6.2f}% ({r['correct']}/{r['total']}), unparsed {r['unparsed']}, "
                   f"largest race gap {r['race_gap']:.2f} points (lowest: {worst})")  # fmt: skip
    _say_answered(summary, out)


@eval_group.command("overlap")
@click.option("--train", required=True, type=click.Path(path_type=Path), help="Image folder or dataset JSON/JSONL.")
@click.option("--bench-dir", required=True, type=click.Path(path_type=Path), help="FaceXBench's benchmark folder.")
@click.option("--image-root", type=click.Path(path_type=Path), help="Folder the dataset's image paths start from.")
@click.option("--max-distance", type=int, default=32, show_default=True, help="Bits (of 256) copies may differ by.")
@click.option("--out", type=click.Path(path_type=Path), help="Write the matches to this JSON file.")
def eval_overlap(train, bench_dir, image_root, max_distance, out):
    """Find benchmark images that also occur in a training set (perceptual hash)."""
    import json
    from collections import Counter

    from facellm.eval.facexbench import load_benchmark
    from facellm.eval.overlap import benchmark_images, find_overlap, hash_images, training_images

    if not 0 <= max_distance <= 256:
        raise FaceLLMError(f"--max-distance must be between 0 and 256, got {max_distance}", "use e.g. 32")
    train_paths, train_hashes, train_skipped = hash_images(training_images(train, image_root))
    bench_paths, bench_hashes, bench_skipped = hash_images(benchmark_images(bench_dir))
    matches = find_overlap(bench_paths, bench_hashes, train_paths, train_hashes, max_distance)
    files_of: dict[str, set[str]] = {}
    for q in load_benchmark(bench_dir):
        for path in q.image_paths:
            files_of.setdefault(str(path), set()).add(q.file)
    per_file = Counter(f for m in matches for f in files_of.get(m.bench_image, ()))
    click.echo(f"{len(matches)} of {len(bench_paths)} benchmark images occur in the training set "
               f"({len(train_paths)} images, max distance {max_distance} bits)")  # fmt: skip
    for name, count in per_file.most_common():
        click.echo(f"  {name}: {count}")
    for reason in train_skipped + bench_skipped:
        click.echo(f"skipped: {reason}", err=True)
    if out:
        payload = {"matches": [vars(m) for m in matches], "per_file": dict(per_file),
                   "skipped": train_skipped + bench_skipped}  # fmt: skip
        out.write_text(json.dumps(payload, indent=1), encoding="utf-8")
        click.echo(f"matches written to {out}")


@eval_group.command("report")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--extractor", type=click.Choice(["both", "compat", "strict"]), default="both", show_default=True)
@click.option("--model-name", help="Name printed in the report (default: the run's model).")
def eval_report(run: Path, extractor: str, model_name: str | None) -> None:
    """Score a run folder, or any folder of FaceXBench result JSONs (e.g. from VLMEvalKit), with both extractors."""
    import json

    from facellm.eval.report import official_text, write_report

    identity = run / "run.json"
    name = model_name or (json.loads(identity.read_text())["answerer"] if identity.exists() else run.name)
    results = run / "results" if (run / "results").is_dir() else run
    reports = write_report(results, run, name)
    for report in reports:
        if extractor in ("both", report.extractor):
            click.echo(f"== extractor: {report.extractor} (unparsed answers: {report.overall.unparsed})")
            click.echo(official_text(report, name))
    click.echo(f"report written to {run}/report.md, report.json, report.png, results.txt")


@cli.group("data")
def data_group() -> None:
    """Build FairFaceGPT-style QA datasets: build, filter, export, stats, Batch API files."""


def _source_options(function):
    from facellm.data.sources import SOURCES

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


def _prices(model: str | None, price_in: float | None, price_out: float | None):
    from facellm.data.build import Prices
    from facellm.data.teachers import KNOWN_PRICES

    known_in, known_out = KNOWN_PRICES.get(model or "", (0.0, 0.0))
    return Prices(known_in if price_in is None else price_in, known_out if price_out is None else price_out)


def _records_and_spec(source, images, labels, limit, aspects, prompts):
    from facellm.data.prompts import load_prompts
    from facellm.data.sources import load_source

    _check_limit(limit)
    spec = load_prompts(prompts)
    wanted = [a.strip() for a in aspects.split(",") if a.strip()] if aspects else None
    return load_source(source, images, labels, limit), spec, wanted


@data_group.command("build")
@_source_options
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Run folder (reused to resume).")
@click.option("--teacher", type=click.Choice(["template", "openai", "hf"]), default="template", show_default=True)
@click.option("--base-url", envvar="FACELLM_API_BASE", help="OpenAI-compatible endpoint (openai teacher).")
@click.option("--model", "-m", help="Teacher model: API model name, or hub id/folder for hf.")
@click.option("--mode", type=click.Choice(["per-aspect", "per-image"]), default="per-aspect", show_default=True)
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
def data_build(source, images, labels, limit, aspects, prompts, out, teacher, base_url, model, mode, concurrency, rpm,
               tpm, max_retries, timeout, batch_size, max_new_tokens, price_in, price_out, retry_failed,
               measure):  # fmt: skip
    """Ask a teacher about every (image, aspect) of a face collection; resumable, concurrent, filtered."""
    import json

    from tqdm import tqdm

    from facellm.data.build import build_dataset
    from facellm.data.filters import flag_records
    from facellm.data.stats import write_stats
    from facellm.data.store import QAStore

    records, spec, wanted = _records_and_spec(source, images, labels, limit, aspects, prompts)
    teacher_obj = _teacher(teacher, spec, base_url, model, concurrency, rpm, tpm, max_retries, timeout, batch_size,
                           max_new_tokens)  # fmt: skip
    prices = _prices(model, price_in, price_out)
    settings = {"source": source, "images": str(images), "labels": str(labels) if labels else None, "limit": limit,
                "aspects": wanted, "prompt_version": spec.version, "teacher": teacher_obj.name, "mode": mode,
                "base_url": base_url, "concurrency": concurrency, "rpm": rpm, "tpm": tpm,
                "prices_per_million": [prices.input, prices.output], "measure": measure}  # fmt: skip
    with QAStore(out) as store:
        (Path(out) / "build.json").write_text(json.dumps(settings, indent=1), encoding="utf-8")
        bar = tqdm(desc="data", unit="pair")

        def progress(summary) -> None:
            bar.total = summary.pending
            bar.set_postfix(done=summary.done, failed=summary.failed, cost=f"${summary.cost:.3f}", refresh=False)
            bar.update(summary.done + summary.failed - bar.n)  # tqdm redraws at most every 0.1 s

        try:
            summary = build_dataset(records, spec, teacher_obj, store, wanted, mode, retry_failed, prices,
                                    measured=measure_record if measure else None, progress=progress)  # fmt: skip
        except KeyboardInterrupt:
            bar.close()
            click.echo(f"stopped: every answer received so far is saved in {out}; rerun the same command to resume",
                       err=True)  # fmt: skip
            raise SystemExit(130) from None
        bar.close()
        store.set_flags(flag_records(store.records("done")))
        stats = write_stats(store)
    click.echo(
        f"{summary.done} pairs answered, {summary.failed} failed, {summary.skipped_images} images skipped "
        f"this run; the run holds {stats['pairs']['done']} pairs ({stats['pairs']['kept']} kept after filters), "
        f"cost so far US$ {stats['cost_usd']:.4f}"
    )
    if summary.duplicates:
        shown = "; ".join(f"{image} (repeated row)" if image == first else f"{image} = {first}"
                          for image, first in list(summary.duplicates.items())[:5])  # fmt: skip
        more = f" and {len(summary.duplicates) - 5} more" if len(summary.duplicates) > 5 else ""
        click.echo(f"{len(summary.duplicates)} duplicate image(s) not sent again (same content as an earlier row): "
                   f"{shown}{more}")  # fmt: skip
    if summary.failures:
        causes = ", ".join(f"{cause}: {n}" for cause, n in summary.failures.items())
        click.echo(f"failures by cause: {causes}; rerun with --retry-failed to try them again")
    click.echo(f"statistics in {out}/stats.md")


def measure_record(record) -> dict:
    """Measured facts of a record's image for attribute-aware prompts (face analysis of the largest face)."""
    from facellm.faces import analyze_image, measured_facts
    from facellm.images import read_image

    return measured_facts(analyze_image(read_image(record.path)))


def _teacher(kind, spec, base_url, model, concurrency, rpm, tpm, max_retries, timeout, batch_size, max_new_tokens):
    from facellm.data.teachers import HFTeacher, OpenAITeacher, TemplateTeacher

    if kind == "template":
        return TemplateTeacher(spec)
    if not model:
        raise FaceLLMError(f"the {kind} teacher needs --model", "e.g. --model gpt-4o-2024-11-20")
    if kind == "openai":
        from facellm.api import ChatClient, EndpointConfig

        if not base_url:
            raise FaceLLMError("the openai teacher needs --base-url", "e.g. --base-url https://api.openai.com/v1")
        config = EndpointConfig(base_url, model, concurrency=concurrency, requests_per_minute=rpm,
                                tokens_per_minute=tpm, max_retries=max_retries, timeout_s=timeout)  # fmt: skip
        return OpenAITeacher(ChatClient(config), max_tokens=max_new_tokens)
    return HFTeacher(_load(model, None, "auto", "auto"), batch_size=batch_size, max_new_tokens=max_new_tokens)


@data_group.command("filter")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--min-chars", type=int, default=40, show_default=True)
@click.option("--max-chars", type=int, default=4000, show_default=True)
def data_filter(run, min_chars, max_chars):
    """Recompute the quality flags of a run with new thresholds (no new requests)."""
    from collections import Counter

    from facellm.data.filters import FilterSettings, flag_records
    from facellm.data.store import open_existing

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
@click.option("--format", "fmt", type=click.Choice(["sharegpt", "llava", "hf"]), default="sharegpt", show_default=True)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Output folder.")
@click.option("--val", "val_fraction", type=float, default=0.05, show_default=True, help="Share of images for val.")
@click.option("--test", "test_fraction", type=float, default=0.0, show_default=True, help="Share of images for test.")
def data_export(run, fmt, out, val_fraction, test_fraction):
    """Export the kept pairs, split by image, with a dataset card."""
    from facellm.data.export import export_dataset
    from facellm.data.store import open_existing

    with open_existing(run) as store:
        counts = export_dataset(store, fmt, out, val_fraction, test_fraction)
    click.echo(
        f"exported {sum(counts.values())} pairs to {out} (" + ", ".join(f"{k} {n}" for k, n in counts.items()) + ")"
    )


@data_group.command("stats")
@click.argument("run", type=click.Path(path_type=Path))
def data_stats(run):
    """Counts per aspect and demographic group, failures by cause, flags, lengths, tokens and cost."""
    from facellm.data.stats import markdown, write_stats
    from facellm.data.store import open_existing

    with open_existing(run) as store:
        stats = write_stats(store)
    click.echo(markdown(stats))
    click.echo(f"written to {run}/stats.md, stats.json, answer_lengths.png, group_balance.png")


@data_group.command("batch-prepare")
@_source_options
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Run folder.")
@click.option("--model", "-m", required=True, help="Model the Batch API job will use, e.g. gpt-4o-2024-11-20.")
@click.option("--file", "batch_file", required=True, type=click.Path(path_type=Path), help="JSONL to write.")
@click.option("--max-new-tokens", type=int, default=700, show_default=True)
def data_batch_prepare(source, images, labels, limit, aspects, prompts, out, model, batch_file, max_new_tokens):
    """Write every pending request as an OpenAI Batch API input file (per-aspect mode)."""
    from facellm.data.batch import prepare_batch
    from facellm.data.store import QAStore

    records, spec, wanted = _records_and_spec(source, images, labels, limit, aspects, prompts)
    with QAStore(out) as store:
        count = prepare_batch(records, spec, model, store, batch_file, wanted, max_new_tokens)
    click.echo(f"{count} requests written to {batch_file}; upload it as a Batch API job, then run "
               f"`facellm data batch-ingest {out} OUTPUT.jsonl`")  # fmt: skip


@data_group.command("batch-ingest")
@click.argument("run", type=click.Path(path_type=Path))
@click.argument("output_file", type=click.Path(path_type=Path))
@click.option("--price-in", type=float, help="US$ per 1M prompt tokens (Batch API prices are half of live ones).")
@click.option("--price-out", type=float)
def data_batch_ingest(run, output_file, price_in, price_out):
    """Store the answers of a finished Batch API job."""
    from facellm.data.batch import ingest_batch
    from facellm.data.build import Prices
    from facellm.data.filters import flag_records
    from facellm.data.store import open_existing

    with open_existing(run) as store:
        counts = ingest_batch(store, output_file, Prices(price_in or 0.0, price_out or 0.0))
        store.set_flags(flag_records(store.records("done")))
    click.echo(f"ingested: {counts['done']} answered, {counts['failed']} failed, {counts['unknown']} unknown ids")


@cli.command("train")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="Training YAML (configs/train/).")
@click.option("--set", "overrides", multiple=True, help="Override a config key: --set learning_rate=2e-5.")
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in output_dir.")
def train_command(config_path, overrides, resume):
    """LoRA (or full) fine-tuning of an image-text-to-text model on a ShareGPT/LLaVA dataset."""
    from facellm.train.config import load_config
    from facellm.train.recipe import is_main_process, train

    if config_path is None and not overrides:
        raise FaceLLMError("no training config given", "pass --config configs/train/facellm-1b.yaml")
    config = load_config(config_path, overrides)
    summary = train(config, resume=resume)
    if not is_main_process():
        return
    samples = summary["samples"]
    skipped = ", ".join(f"{reason}: {n}" for reason, n in samples["skipped"].items()) or "none"
    click.echo(
        f"trained {summary['global_step']} steps on {summary['train_samples']} samples "
        f"(skipped rows: {skipped}; dropped by collator: {summary['dropped_by_collator']}); "
        f"final train loss {summary['train_loss']:.4f}; peak memory {summary['peak_memory_mb']} MB"
    )
    world = f" in {summary['world_size']} processes" if summary["world_size"] > 1 else ""
    click.echo(f"saved to {summary['output']}{world}; log, loss curve and summary in {config.output_dir}")


@cli.command("export")
@click.option("--base", required=True, help="Base model the adapter was trained on (hub id or folder).")
@click.option("--adapter", required=True, type=click.Path(path_type=Path), help="LoRA adapter folder.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Folder for the merged model.")
@click.option("--dtype", default="auto", show_default=True, help="Weights dtype of the merged model.")
@click.option("--push-to-hub", help="Also upload to this Hugging Face repo (needs network and a token).")
def export_command(base, adapter, out, dtype, push_to_hub):
    """Merge a LoRA adapter into its base model: a standalone checkpoint for `facellm ask` and transformers."""
    from facellm.train.export import merge_adapter

    target = merge_adapter(base, adapter, out, dtype, push_to_hub)
    click.echo(f"merged model written to {target}")


@cli.command("serve")
@click.option("--model", "-m", default=None, help="Hub id or local folder (default: Idiap/FaceLLM-1B).")
@click.option("--adapter", type=click.Path(path_type=Path), help="PEFT adapter to apply.")
@click.option("--offline", is_flag=True, help="Serve labelled template answers without loading any model.")
@click.option("--upstream", help="Answer with this OpenAI-compatible engine (e.g. vLLM at http://127.0.0.1:8001/v1).")
@click.option("--upstream-model", help="Model name at the upstream (default: the first it lists).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind (0.0.0.0 exposes it).")
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--api-key-env", help="Name of an environment variable holding the key every request must send.")
@click.option("--allow-remote-images", is_flag=True, help="Fetch http(s) image URLs (public addresses only).")
@click.option("--max-batch", type=int, default=8, show_default=True, help="Requests generated together.")
@click.option("--max-queue", type=int, default=64, show_default=True, help="Waiting requests before 429.")
@click.option("--max-tokens", type=int, default=2048, show_default=True, help="Largest max_tokens accepted.")
@click.option("--max-prompt-tokens", type=click.IntRange(min=1),
              help="Longest prompt accepted, images included (default: the model's context).")  # fmt: skip
@click.option("--device", default="auto", show_default=True)
@click.option("--dtype", default="auto", show_default=True)
@click.option("--ground", is_flag=True, help="Put measured face facts before every question.")
def serve_command(model, adapter, offline, upstream, upstream_model, host, port, api_key_env, allow_remote_images,
                  max_batch, max_queue, max_tokens, max_prompt_tokens, device, dtype, ground):  # fmt: skip
    """OpenAI-compatible chat-completions server with a web page at / (Ctrl-C stops it)."""
    import os
    import socket

    import uvicorn

    from facellm.model.loading import DEFAULT_MODEL
    from facellm.serve.app import create_app
    from facellm.serve.engine import Engine, ModelBackend, OfflineBackend
    from facellm.serve.requests import Limits

    api_key = None
    if api_key_env:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise FaceLLMError(f"environment variable {api_key_env} is empty or unset", "export it before serving")
    if sum(bool(x) for x in (offline, model, upstream)) > 1:
        raise FaceLLMError("--offline, --model and --upstream exclude each other", "give one of them")
    listening = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:  # bound before the slow model load, so a taken port is reported at once
        listening.bind((host, port))
    except OSError as exc:
        listening.close()
        raise FaceLLMError(f"cannot listen on {host}:{port} ({exc.strerror})",
                           "pick another --port, or stop what is using this one") from None  # fmt: skip
    if offline:
        backend = OfflineBackend()
    elif upstream:
        from facellm.serve.upstream import UpstreamBackend

        backend = UpstreamBackend(upstream, upstream_model, concurrency=max_batch)
    elif model == "specialist":
        from facellm.specialist import SpecialistBackend

        backend = SpecialistBackend()
    else:
        backend = ModelBackend(_load(model or DEFAULT_MODEL, adapter, device, dtype), max_prompt_tokens)
    if ground:
        from facellm.specialist import GroundedBackend

        backend = GroundedBackend(backend)
    limits = Limits(max_tokens=max_tokens, allow_remote_images=allow_remote_images)
    app = create_app(Engine(backend, max_batch=max_batch, max_queue=max_queue), limits, api_key)
    click.echo(f"serving {backend.name} on http://{host}:{port} (web page at /, API at /v1)", err=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[listening])


def _expand_images(paths) -> list[Path]:
    from facellm.data.sources import IMAGE_SUFFIXES

    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            found.append(path)
    return found


def _analyze_one(job: tuple[str, str, bool]) -> dict:
    from facellm.faces import analyze_image
    from facellm.images import read_image

    path, detector, with_attributes = job
    try:
        image = read_image(path)
        return {"image": path, **analyze_image(image, detector, with_attributes).as_dict()}
    except FaceLLMError as exc:
        return {"image": path, "error": str(exc)}


_landmarks_option = click.option(
    "--landmarks",
    "landmark_points",
    type=click.Choice(["68", "5"]),
    default=None,
    help="5: never load the 68-point model (non-commercial training data); default 68 or $FACELLM_LANDMARKS.",
)


@cli.command("analyze")
@click.argument("images", nargs=-1, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per image) instead of a table.")
@click.option("--detector", type=click.Choice(["auto", "hog", "cnn"]), default="auto", show_default=True)
@click.option("--workers", type=int, default=0, help="Processes for folders (default: one per CPU core).")
@click.option("--attributes", "with_attributes", is_flag=True, help="Add age, gender, race, expression probabilities.")
@_landmarks_option
@click.option("--licenses", is_flag=True, help="Print each bundled model's licence and training data, then exit.")
def analyze_command(images, as_json, detector, workers, with_attributes, landmark_points, licenses):
    """Faces in images (files or folders): box, landmarks, head pose, eye/mouth openness, quality."""
    import json

    from facellm.parallel import map_over_cores

    if licenses:
        from facellm.faces.models import BUNDLED_MODELS

        for name, licence, data in BUNDLED_MODELS:
            click.echo(f"{name}\n  licence: {licence}\n  trained on: {data}")
        return
    if not images:
        raise FaceLLMError("no images given", "pass image files or folders (or --licenses)")
    _use_landmarks(landmark_points)
    paths = _expand_images(images)
    if not paths:
        raise FaceLLMError("no images found in the given paths", "pass image files or folders holding them")
    if len(paths) == 1:
        missing = paths[0]
        if not missing.exists():
            raise FaceLLMError(f"image not found: {missing}", "check the path")
    results = map_over_cores(_analyze_one, [(str(p), detector, with_attributes) for p in paths], workers)
    if len(results) == 1 and "error" in results[0]:
        raise FaceLLMError(results[0]["error"])
    if as_json:
        click.echo(json.dumps(results if len(results) > 1 else results[0], indent=1))
    else:
        for result in results:
            _print_analysis(result)
    failed = [r for r in results if "error" in r]
    if failed and len(results) > 1:
        click.echo(f"{len(failed)} of {len(results)} images could not be read (listed above)", err=True)


def _pose_text(pose: dict | None) -> str:
    if pose is None:
        return "n/a (needs the 68-point model)"
    return f"{pose['label']} (yaw {pose['yaw']:.0f}, pitch {pose['pitch']:.0f}, roll {pose['roll']:.0f})"


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _use_landmarks(points: str | None) -> None:
    """Choose the landmark model for this process and the workers it starts (FACELLM_LANDMARKS)."""
    import os

    from facellm.faces.models import landmark_points

    if points:
        os.environ["FACELLM_LANDMARKS"] = points
    landmark_points()  # a bad FACELLM_LANDMARKS fails here, once, not on every image


def _print_analysis(result: dict) -> None:
    if "error" in result:
        click.echo(f"{result['image']}: skipped: {result['error']}")
        return
    click.echo(f"{result['image']}: {result['face_count']} face(s), {result['width']}x{result['height']} px")
    for i, face in enumerate(result["faces"]):
        box, pose, q = face["box"], face["pose"], face["quality"]
        click.echo(
            f"  face {i + 1}: box ({box['left']},{box['top']})-({box['right']},{box['bottom']}) [{box['detector']}] "
            f"pose {_pose_text(pose)} "
            f"eyes {_ratio(face['eye_openness'])} mouth {_ratio(face['mouth_openness'])} size {q['face_width']}px "
            f"brightness {q['brightness']:.0f} contrast {q['contrast']:.0f} sharpness {q['sharpness']:.0f}"
        )
        if face.get("attributes"):
            best = {name: max(probs.items(), key=lambda kv: kv[1]) for name, probs in face["attributes"].items()}
            click.echo("    attributes: " + ", ".join(f"{name} {label} ({p:.0%})" for name, (label, p) in best.items()))


@cli.command("verify")
@click.argument("images", nargs=-1, type=click.Path(path_type=Path))
@click.option("--pairs", "pairs_file", type=click.Path(path_type=Path), help="LFW-format pairs file.")
@click.option("--images", "images_dir", type=click.Path(path_type=Path), help="Image root for --pairs.")
@click.option("--threshold", type=float, default=0.6, show_default=True, help="Same-person distance for A B.")
@click.option("--jitters", type=click.IntRange(0, 100), default=0, show_default=True,
              help="Average each descriptor over this many perturbed copies (about N times slower).")  # fmt: skip
@click.option("--workers", type=int, default=0, help="Processes for --pairs (default: one per CPU core).")
@click.option("--json", "as_json", is_flag=True)
@_landmarks_option
def verify_command(images, pairs_file, images_dir, threshold, jitters, workers, as_json, landmark_points):
    """Same person or not: `verify A B`, or the LFW pair protocol with --pairs and --images."""
    import json

    import numpy as np

    _use_landmarks(landmark_points)
    from facellm.faces.embed import descriptors_of, evaluate_pairs, read_pairs

    if pairs_file:
        if images or not images_dir:
            raise FaceLLMError("--pairs needs --images DIR and no image arguments", "see facellm verify -h")
        pairs = read_pairs(pairs_file, images_dir)
        paths = sorted({p for _, a, b, _ in pairs for p in (a, b)})
        with click.progressbar(length=len(paths), label="descriptors", file=sys.stderr) as bar:
            found, skipped = descriptors_of(paths, jitters, workers, on_result=lambda: bar.update(1))
        for path, why in skipped.items():
            click.echo(f"skipped {path}: {why}", err=True)
        usable = [p for p in pairs if p[1] in found and p[2] in found]
        if len({f for f, *_ in usable}) < 2:
            raise FaceLLMError(
                f"only {len(usable)} of {len(pairs)} pairs have both images readable, in fewer than two folds",
                "check that --images is the folder that holds the pairs' images",
            )
        scored = evaluate_pairs(usable, found)
        result = {"pairs": len(usable), "pairs_skipped": len(pairs) - len(usable),
                  "accuracy": round(100 * scored.accuracy, 2),
                  "fold_accuracies": [round(100 * a, 2) for a in scored.fold_accuracies],
                  "thresholds": [round(t, 4) for t in scored.thresholds], "shrinks": scored.shrinks,
                  "jitters": jitters}  # fmt: skip
        click.echo(json.dumps(result, indent=1) if as_json else
                   f"accuracy {result['accuracy']}% over {len(usable)} pairs ({result['pairs_skipped']} skipped); "
                   f"per fold {result['fold_accuracies']}; learnt on the other folds: thresholds "
                   f"{result['thresholds']}, whitening shrinkage {scored.shrinks} (1.0 = plain distances)")  # fmt: skip
        return
    if len(images) != 2:
        raise FaceLLMError("verify needs two images (or --pairs FILE --images DIR)", "e.g. facellm verify a.jpg b.jpg")
    a, b = (_face_descriptor_of(p, jitters) for p in images)
    gap = float(np.linalg.norm(a - b))
    result = {"same_person": gap < threshold, "distance": round(gap, 4), "threshold": threshold}
    click.echo(json.dumps(result) if as_json else
               f"{'same person' if result['same_person'] else 'different people'}: distance {gap:.4f} "
               f"(threshold {threshold})")  # fmt: skip


def _face_descriptor_of(path: Path, jitters: int = 0):
    """The descriptor of the largest face in an image file; a one-line error naming the file when it has none."""
    from facellm.errors import NoFaceError
    from facellm.faces.embed import image_descriptor
    from facellm.images import read_image

    try:
        return image_descriptor(read_image(path), jitters=jitters)[0]
    except NoFaceError as exc:
        raise NoFaceError(f"no face in {path}", exc.hint) from None


@cli.group("faces")
def faces_group() -> None:
    """Face collections and predictors: cluster by identity, train the attribute predictors."""


@faces_group.command("train-attributes")
@click.option("--fairface", required=True, type=click.Path(path_type=Path), help="FairFace folder (CSV + images).")
@click.option("--train-limit", type=int, default=16000, show_default=True, help="FairFace train images to use.")
@click.option("--val-limit", type=int, default=2500, show_default=True, help="FairFace val images to score.")
@click.option("--epochs", type=int, default=16, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), help="Weights file (default: the packaged one).")
@click.option("--workers", type=int, default=0, help="Processes for feature extraction (default: CPU cores).")
def faces_train_attributes(fairface, train_limit, val_limit, epochs, out, workers):
    """Train the age/gender/race network on FairFace train; report accuracy on FairFace val (overall, per race)."""
    import csv

    from facellm.faces import attributes
    from facellm.labels import normalise

    def split(name: str, limit: int):
        labels = fairface / f"fairface_label_{name}.csv"
        if not labels.is_file():
            raise FaceLLMError(f"{labels} not found", "pass --fairface with fairface_label_{train,val}.csv inside")
        with open(labels, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))[:limit]
        click.echo(f"reading {len(rows)} {name} images (detection, alignment, descriptors)...")
        x, kept = attributes.extract([fairface / "fairface_img_margin025" / r["file"] for r in rows], workers)
        return x, [rows[i] for i in kept]

    def labels(rows) -> dict[str, list[str]]:
        return {a: [normalise(a, r[a]) for r in rows] for a in attributes.ATTRIBUTES}

    x_train, train_rows = split("train", train_limit)
    x_val, val_rows = split("val", val_limit)
    state = attributes.fit(x_train, labels(train_rows), epochs=epochs, say=click.echo)
    net = attributes.network_from_state(state)
    report = attributes.accuracy_report(net, x_val, labels(val_rows), labels(val_rows)["race"])
    card = attributes.model_card(
        f"FairFace train 1-{train_limit} ({len(train_rows)} readable images), {epochs} epochs",
        f"FairFace val 1-{val_limit} ({len(val_rows)} readable images)",
        report,
    )
    target = out or attributes.WEIGHTS
    attributes.save(state, target, card)
    for name, r in report.items():
        click.echo(f"{name:6s} {r['accuracy']:6.2f}% on {r['n']} val images; per race {r['per_race']}")
    click.echo(f"weights written to {target} (model card beside it)")


@faces_group.command("train-expression")
@click.option("--fer", type=click.Path(path_type=Path), help="FER2013 folder with labels.csv: train the grey model.")
@click.option("--rafdb", type=click.Path(path_type=Path),
              help="RAF-DB folder with labels.csv: fine-tune the FER2013 model into the colour one.")  # fmt: skip
@click.option("--epochs", type=int, help="Epochs (default: 10 for --fer, 8 for --rafdb).")
@click.option("--out", type=click.Path(path_type=Path), help="Weights file (default: the packaged one).")
def faces_train_expression(fer, rafdb, epochs, out):
    """Train the expression CNN on FER2013 Training (accuracy on PublicTest), or fine-tune it on RAF-DB's training
    split (accuracy on its held-out split)."""
    from facellm.faces import expression

    if (fer is None) == (rafdb is None):
        raise FaceLLMError("give one of --fer or --rafdb", "--fer trains the FER2013 model, --rafdb fine-tunes it")
    folder = fer or rafdb
    if not (folder / "labels.csv").is_file():
        raise FaceLLMError(f"{folder / 'labels.csv'} not found", "pass the folder that holds labels.csv and images/")
    say = lambda line: click.echo(line, err=True)  # noqa: E731
    if fer:
        state, report = expression.train_expression(folder / "labels.csv", epochs or 10, say=say)
        target, figure = out or expression.WEIGHTS, f"PublicTest accuracy {report['public_test_accuracy']}%"
    else:
        state, report = expression.train_rafdb(folder, epochs or 8, say=say)
        target, figure = out or expression.RAFDB_WEIGHTS, f"held-out accuracy {report['held_out_accuracy']}%"
    expression.save(state, report, target)
    click.echo(f"{figure}; weights written to {target}")


@faces_group.command("train-pose")
@click.option("--aflw", required=True, type=click.Path(path_type=Path), help="AFLW2000-3D folder with labels.csv.")
@click.option("--out", type=click.Path(path_type=Path), help="Weights file (default: the packaged one).")
@click.option("--workers", type=int, default=0, help="Processes for landmark extraction (default: one per core).")
def faces_train_pose(aflw, out, workers):
    """Train the head-pose networks on AFLW2000-3D landmarks; report 5-fold mean absolute error per axis."""
    from facellm.faces import pose

    if not (aflw / "labels.csv").is_file():
        raise FaceLLMError(f"{aflw / 'labels.csv'} not found", "pass --aflw with AFLW2000's labels.csv and images/")
    report = pose.train(aflw, out or pose.WEIGHTS, workers, say=lambda line: click.echo(line, err=True))
    click.echo(f"5-fold MAE (degrees) {report['mae_5fold_degrees']}, mean {report['mae_5fold_mean']}; "
               f"weights written to {out or pose.WEIGHTS}")  # fmt: skip


@faces_group.command("train-classifier")
@click.argument("task", type=click.Choice(sorted(CLASSIFIER_TASKS)))
@click.option("--data", required=True, type=click.Path(path_type=Path), help="The task's folder with labels.csv.")
@click.option("--epochs", type=int, default=15, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), help="Weights file (default: the packaged one).")
@click.option("--workers", type=int, default=0, help="Processes for face cropping (default: one per core).")
def faces_train_classifier(task, data, epochs, out, workers):
    """Train a face-crop classifier (liveness: NUAA, synthetic: real vs GAN faces) on its training split; report
    accuracy on the held-out split (faces/splits.py)."""
    from facellm.faces import classifier

    report = classifier.train(task, data, epochs, out, workers, say=lambda line: click.echo(line, err=True))
    click.echo(f"held-out accuracy {report['held_out_accuracy']}% on {report['held_out_images']} images "
               f"{report['held_out_per_class']}; weights written to {report['weights']}")  # fmt: skip


@faces_group.command("cluster")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--threshold", type=float, default=0.5, show_default=True, help="Distance that links two faces.")
@click.option("--json", "as_json", is_flag=True)
def faces_cluster(folder, threshold, as_json):
    """Group the images of a folder by identity (Chinese whispers over face descriptors)."""
    import json

    import dlib

    paths = _expand_images([folder])
    if not paths:
        raise FaceLLMError(f"no images in {folder}", "pass a folder of face images")
    kept, vectors, skipped = [], [], []
    for path in paths:
        try:
            vectors.append(dlib.vector(_face_descriptor_of(path).tolist()))
            kept.append(path)
        except FaceLLMError as exc:
            skipped.append(str(exc))
    labels = dlib.chinese_whispers_clustering(vectors, threshold) if vectors else []
    clusters: dict[int, list[str]] = {}
    for path, label in zip(kept, labels):
        clusters.setdefault(label, []).append(str(path))
    ordered = sorted(clusters.values(), key=len, reverse=True)
    if as_json:
        click.echo(json.dumps({"clusters": ordered, "skipped": skipped}, indent=1))
    else:
        for i, members in enumerate(ordered, 1):
            click.echo(f"identity {i} ({len(members)} images): " + ", ".join(Path(m).name for m in members))
        for reason in skipped:
            click.echo(f"skipped: {reason}", err=True)


@cli.command("demo")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/demo"), show_default=True)
@click.option("--images", type=int, default=8, show_default=True, help="Training faces (the rest evaluate).")
@click.option("--eval-images", type=int, default=4, show_default=True, help="Evaluation faces, kept apart.")
@click.option("--fairface", type=click.Path(path_type=Path), help="A FairFace folder to draw faces from instead.")
@click.option("--base-url", help="OpenAI-compatible teacher endpoint (default: the offline template teacher).")
@click.option("--model", "-m", help="Teacher model name at --base-url.")
@click.option("--train-steps", type=int, default=100, show_default=True)
def demo_command(out, images, eval_images, fairface, base_url, model, train_steps):
    """The whole FaceLLM method offline on CPU: faces -> dataset -> LoRA -> merged model -> evaluation -> report."""
    from facellm.demo import DemoSettings, run_demo

    if bool(base_url) != bool(model):
        raise FaceLLMError("a teacher needs both --base-url and --model", "give both, or neither for the offline one")
    settings = DemoSettings(out, images, eval_images, fairface, base_url, model, train_steps)
    report = run_demo(settings, say=lambda line: click.echo(line, err=True))
    click.echo(f"demo finished; report: {report}")


@cli.command("reproduce")
@click.option("--size", type=click.Choice(["1b", "8b", "38b"]), required=True)
@click.option("--fairface", type=click.Path(path_type=Path), default=Path("data/fairface"), show_default=True)
@click.option("--bench-dir", type=click.Path(path_type=Path), default=Path("data/facexbench/benchmark"),
              show_default=True)  # fmt: skip
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/reproduce"), show_default=True)
@click.option("--base-url", default="https://api.openai.com/v1", show_default=True, help="Teacher endpoint.")
@click.option("--teacher-model", default="gpt-4o-2024-11-20", show_default=True)
@click.option("--price-in", type=float, help="US$ per 1M prompt tokens (default: known price of the model).")
@click.option("--price-out", type=float)
@click.option("--dry-run", is_flag=True, help="Print the plan, request count and cost estimate; run nothing.")
def reproduce_command(size, fairface, bench_dir, out, base_url, teacher_model, price_in, price_out, dry_run):
    """The paper's pipeline at real scale with the real models (GPUs and network needed)."""
    import shlex

    from facellm.reproduce import PROMPT_TOKENS, execute, plan

    prices = _prices(teacher_model, price_in, price_out)
    steps = plan(size, fairface, bench_dir, out, base_url, teacher_model, prices.input, prices.output)
    click.echo(f"teacher requests: {steps.requests:,} (images x aspects); estimated teacher cost US$ "
               f"{steps.cost:,.2f} at {prices.input}/{prices.output} $ per 1M tokens, assuming ~{PROMPT_TOKENS} "
               f"prompt tokens per request")  # fmt: skip
    click.echo("plan:")
    for command in steps.commands:
        click.echo("  " + shlex.join(command))
    from facellm.plan import describe, memory_plan

    click.echo("memory plan (per GPU, 8 GPUs of 80 GiB; `facellm plan` for other machines):")
    click.echo(describe(memory_plan(size, gpus=8, gpu_memory_gib=80.0)))
    for problem in steps.problems:
        click.echo(f"missing: {problem}", err=True)
    if dry_run:
        return
    if steps.problems:
        raise FaceLLMError(f"{len(steps.problems)} prerequisite(s) missing (listed above)", "fix them or use --dry-run")
    execute(steps.commands, say=click.echo)


@cli.command("plan")
@click.option("--size", type=click.Choice(["1b", "8b", "38b"]), required=True, help="Released InternVL3-hf shape.")
@click.option("--gpus", type=int, default=1, show_default=True, help="GPUs for DDP, FSDP, ZeRO-3 and tensor parallel.")
@click.option("--gpu-memory", type=float, default=80.0, show_default=True, help="GiB per GPU.")
@click.option("--micro-batch", type=int, help="Per-GPU batch (default: the paper's, 10 for 1B/8B, 2 for 38B).")
@click.option("--seq-len", type=int, default=2048, show_default=True, help="Tokens per sample (the paper's cutoff).")
@click.option("--dtype", type=click.Choice(["bf16", "fp32"]), default="bf16", show_default=True)
@click.option("--no-checkpointing", is_flag=True, help="Plan without gradient checkpointing.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON (a `fits` boolean per strategy).")
def plan_command(size, gpus, gpu_memory, micro_batch, seq_len, dtype, no_checkpointing, as_json):
    """Memory per GPU for LoRA training (single, DDP, FSDP, ZeRO-3) and inference at a released shape."""
    import json

    from facellm.plan import describe, memory_plan

    plan = memory_plan(size, gpus, gpu_memory, micro_batch, seq_len, 2 if dtype == "bf16" else 4,
                       not no_checkpointing)  # fmt: skip
    click.echo(json.dumps(plan.as_dict(), indent=1) if as_json else describe(plan))


@cli.group()
def dev() -> None:
    """Developer tools: offline tiny checkpoint, released-shape checkpoints, sample faces."""


@dev.command("make-shape-model")
@click.option("--shape", type=click.Choice(["internvl3-1b", "internvl3-8b", "internvl3-38b"]), required=True)
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option("--seed", type=int, default=0, show_default=True)
def dev_make_shape_model(shape, out_dir, seed):
    """A random-initialised checkpoint of a released InternVL3-hf shape (config + processor only for 8B/38B)."""
    from facellm.testing.shape_model import make_shape_checkpoint

    out, weights = make_shape_checkpoint(shape, out_dir, seed)
    if weights:
        click.echo(f"{shape} with random bf16 weights written to {out} (loads with facellm.model.load_model)")
    else:
        click.echo(f"{shape}: config and processor written to {out}; no weights (too big to build here; enough for "
                   f"`facellm plan` and for building the model on a GPU machine)")  # fmt: skip


@dev.command("make-tiny-model")
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option("--seed", type=int, default=0, show_default=True)
def make_tiny_model(out_dir: Path, seed: int) -> None:
    """Build a tiny random InternVL checkpoint offline in OUT_DIR (for smoke tests; its answers are gibberish)."""
    from facellm.testing import make_tiny_checkpoint

    if out_dir.exists() and not out_dir.is_dir():
        raise FaceLLMError(f"{out_dir} exists and is not a folder", "choose another output path")
    make_tiny_checkpoint(out_dir, seed=seed)
    click.echo(f"tiny checkpoint written to {out_dir}")


@dev.command("samples")
def samples() -> None:
    """List the shipped sample faces (FairFace, CC BY 4.0) with their labels."""
    from facellm.samples import sample_faces

    for face in sample_faces():
        click.echo(f"{face.path}\t{face.age}\t{face.gender}\t{face.race}")


def main() -> None:
    """Console-script entry point."""
    sys.exit(cli.main(prog_name="facellm", standalone_mode=True))


if __name__ == "__main__":
    main()
