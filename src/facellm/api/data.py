"""Datasets: a FairFaceGPT-style QA set from a teacher, and its export for trainers."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from facellm.api.answers import Model
from facellm.api.evaluation import check_limit
from facellm.backends import backend_name, build_backend
from facellm.backends.base import Backend, BackendSpec
from facellm.data.build import build_dataset as ask_teacher
from facellm.data.build import (
    build_identity,
    check_run_folder,
    checked_aspects,
    measure_record,
    prices_for,
    start_new_run,
)
from facellm.data.export import export_dataset as write_splits
from facellm.data.filters import flag_records
from facellm.data.sources import load_source
from facellm.data.stats import write_stats
from facellm.data.store import QAStore, open_existing
from facellm.errors import InputError
from facellm.prompts import load_prompts
from facellm.runs import file_hash

if TYPE_CHECKING:
    from facellm.data.build import BuildSummary


@dataclass(frozen=True)
class DatasetBuild:
    """A data run after `build_dataset`: what this call did and what the run folder holds."""

    out: Path
    this_run: BuildSummary  # answered, failed, skipped, duplicates, failures by cause, cost of this call
    pairs: int  # question/answer pairs the run folder holds
    kept: int  # of them, those that pass the quality filters
    cost_usd: float  # of the whole run folder so far
    moved_earlier: Path | None = None  # with new_identity: where an earlier run with other settings was moved


@dataclass(frozen=True)
class DatasetExport:
    """A data run's kept pairs written in a trainer's format, split by image."""

    out: Path
    pairs: dict[str, int]  # per split: train, val, test (empty splits left out)


def build_dataset(
    images: str | Path,
    out: str | Path,
    *,
    labels: str | Path | None = None,
    source: str = "fairface",
    teacher: Model = "template",
    prompts: str | Path | None = None,
    aspects: Sequence[str] | None = None,
    limit: int | None = None,
    mode: str = "per-aspect",
    max_new_tokens: int = 700,
    measure: bool = False,
    retry_failed: bool = False,
    new_identity: bool = False,
    price_in: float | None = None,
    price_out: float | None = None,
    progress: Callable[[BuildSummary], None] | None = None,
) -> DatasetBuild:
    """Ask a teacher about every (image, aspect) of a labelled face collection: a FairFaceGPT-style QA set in the run
    folder `out`, resumable after any interruption, with quality flags and statistics.

    `teacher`: `template` (offline, from the labels), a local model, or `BackendSpec(api_base=..., api_model=...)`
    for an OpenAI-compatible endpoint. `measure`: add measured head pose, quality and face count to the prompts."""

    check_limit(limit)
    spec = load_prompts(prompts)
    wanted = list(aspects) if aspects else None
    checked_aspects(spec, wanted)
    records = load_source(source, images, labels, limit)
    if isinstance(teacher, Backend):
        raise InputError("build_dataset takes the teacher by name or BackendSpec", "e.g. teacher='template'")
    teacher_spec = teacher if isinstance(teacher, BackendSpec) else BackendSpec(teacher)
    if teacher_spec.model == "template":
        teacher_spec.prompts = spec
    named = teacher_spec.api_model or teacher_spec.model
    prices = prices_for(named, price_in, price_out)
    extra = {"source": source, "labels": file_hash(labels) if labels else None}
    identity = build_identity(backend_name(teacher_spec), spec, mode, max_new_tokens, measure, extra)
    run = Path(out)
    moved = start_new_run(run, identity) if new_identity else None
    check_run_folder(run, identity)  # before a teacher model loads
    answerer = build_backend(teacher_spec)
    answerer.check_ready()
    settings = {
        "source": source,
        "images": str(images),
        "labels": str(labels) if labels else None,
        "limit": limit,
        "aspects": wanted,
        "prompt_version": spec.version,
        "teacher": answerer.name,
        "mode": mode,
        "base_url": teacher_spec.api_base,
        "concurrency": teacher_spec.concurrency,
        "rpm": teacher_spec.rpm,
        "tpm": teacher_spec.tpm,
        "prices_per_million": [prices.input, prices.output],
        "measure": measure,
    }
    with QAStore(run) as store:
        (run / "build.json").write_text(json.dumps(settings, indent=1), encoding="utf-8")
        summary = ask_teacher(
            records,
            spec,
            answerer,
            store,
            wanted,
            mode,
            retry_failed,
            prices,
            measured=measure_record if measure else None,
            progress=progress,
            max_new_tokens=max_new_tokens,
            identity=extra,
        )
        store.set_flags(flag_records(store.records("done")))
        stats = write_stats(store)
    return DatasetBuild(run, summary, stats["pairs"]["done"], stats["pairs"]["kept"], stats["cost_usd"], moved)


def export_dataset(
    run: str | Path,
    out: str | Path,
    *,
    format: str = "sharegpt",
    val_fraction: float = 0.05,
    test_fraction: float = 0.0,
) -> DatasetExport:
    """Write a data run's kept pairs as ShareGPT (LLaMA-Factory, `facellm train`), LLaVA or a `datasets` folder, split
    by image (an image's pairs never sit in two splits), with a dataset card."""

    with open_existing(run) as store:
        counts = write_splits(store, format, out, val_fraction, test_fraction)
    return DatasetExport(Path(out), counts)
