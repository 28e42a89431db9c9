"""The library's front door: one typed function per job. Each command of `facellm` parses its flags, calls one of
these and prints what it returns; a notebook calls them directly (`import facellm`).

Images may be given as a path, raw bytes or an opened PIL image. Models may be given by name (a hub id, a local
folder, `specialist`), as a `BackendSpec` (an OpenAI-compatible endpoint, a batch size...), or as a backend already
built, so that a notebook loads a model once and asks it many questions.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from facellm.backends.base import Backend, BackendSpec, Prompt
from facellm.conversation import GenerationSettings, question
from facellm.errors import InputError, NoFaceError
from facellm.images import ImageSource, read_image
from facellm.model.loading import DEFAULT_MODEL

if TYPE_CHECKING:
    from facellm.data.build import BuildSummary
    from facellm.eval.facexbench import Question
    from facellm.eval.report import Report
    from facellm.faces.analyze import ImageAnalysis
    from facellm.train.config import TrainConfig

Model = str | BackendSpec | Backend
"""A model by name (hub id, folder, `specialist`), a `BackendSpec`, or a backend already built."""


@dataclass(frozen=True)
class Answer:
    """A model's answer to one question about images."""

    text: str
    model: str  # the name of the backend that answered


@dataclass(frozen=True)
class Verification:
    """Whether the largest faces of two images show the same person."""

    same_person: bool
    distance: float  # between the two faces' identity descriptors
    threshold: float  # same person below this distance
    faces: tuple[int, int]  # faces found in each image (the largest one is compared)


@dataclass(frozen=True)
class PairsVerification:
    """The LFW pair protocol over a pairs file: each fold scored with a threshold learnt on the other folds."""

    accuracy: float  # percent, over the folds
    pairs: int  # pairs scored
    pairs_skipped: int  # pairs with an image that could not be read or has no face
    fold_accuracies: list[float]  # percent, per fold
    thresholds: list[float]
    shrinks: list[float]  # whitening shrinkage per fold (1.0 = plain distances)
    jitters: int
    skipped: dict[str, str] = field(default_factory=dict)  # image -> why it was skipped


@dataclass(frozen=True)
class RunCounts:
    """What one pass over a question set did; a rerun of the same run folder answers only what is missing."""

    questions: int
    answered_now: int
    failed_now: int  # rerun to retry them
    answered_total: int
    seconds: float


@dataclass(frozen=True)
class Evaluation:
    """A FaceXBench run: its counts and its scores by both extractors (official-compatible and strict)."""

    model: str
    out: Path  # the run folder: predictions, results/, report.md, report.json, report.png, results.txt
    counts: RunCounts
    reports: list[Report]

    @property
    def accuracy(self) -> float:
        """Overall accuracy (percent) by the official-compatible extractor."""
        return self.reports[0].overall.accuracy


@dataclass(frozen=True)
class FairFaceTask:
    """Accuracy on one FairFace task, per race group, with the largest gap between groups."""

    accuracy: float
    correct: int
    total: int
    unparsed: int
    per_race: dict[str, float]
    race_gap: float
    classes: list[str]
    confusion: list[list[int]]  # rows: truth; columns: answers, the last one unreadable answers

    @property
    def lowest_race(self) -> str:
        return min(self.per_race, key=lambda race: self.per_race[race])


@dataclass(frozen=True)
class FairFaceEvaluation:
    model: str
    out: Path
    counts: RunCounts
    tasks: dict[str, FairFaceTask]


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
class TrainSummary:
    """A finished training run."""

    output: Path  # the adapter (LoRA) or model folder
    global_step: int
    train_samples: int
    eval_samples: int
    skipped_rows: dict[str, int]  # rows of the dataset left out, by reason
    dropped_by_collator: int
    train_loss: float
    logged_losses: list[float]
    seconds: float
    world_size: int
    tokens_seen: int
    padding_fraction: float
    peak_memory_mb: float
    precision: str


def analyze(
    image: ImageSource,
    *,
    detector: str = "auto",
    attributes: bool = False,
    landmarks: int | None = None,
    count_people: bool = False,
) -> ImageAnalysis:
    """Every face of one image: box, landmarks, head pose, eye and mouth openness, quality; with `attributes`, the
    probabilities of age group, gender, race and expression; with `count_people`, the crowd model's estimate of the
    people in the image (`.people`). `landmarks`: 68 or 5 points (None: FACELLM_LANDMARKS, else 68)."""
    from facellm.faces.analyze import analyze_image
    from facellm.faces.crowd import predict as count

    picture = read_image(image)
    found = analyze_image(picture, detector, attributes, landmarks)
    if count_people:
        found.people = count(picture)
    return found


def verify(
    first: ImageSource, second: ImageSource, *, threshold: float = 0.6, jitters: int = 0, landmarks: int | None = None
) -> Verification:
    """Same person or not: the distance between the identity descriptors of each image's largest face."""
    import numpy as np

    from facellm.faces.detect import detect_faces
    from facellm.faces.embed import image_descriptor

    if threshold <= 0:
        raise InputError(f"threshold must be above 0, got {threshold}", "use e.g. 0.6")
    pictures = [read_image(image) for image in (first, second)]
    descriptors = []
    for image, picture in zip((first, second), pictures):
        try:
            descriptors.append(image_descriptor(picture, jitters=jitters, points=landmarks)[0])
        except NoFaceError as exc:
            named = f" in {image}" if isinstance(image, str | Path) else " in one of the images"
            raise NoFaceError(f"no face{named}", exc.hint) from None
    gap = float(np.linalg.norm(descriptors[0] - descriptors[1]))
    faces = (len(detect_faces(pictures[0])), len(detect_faces(pictures[1])))
    return Verification(gap < threshold, round(gap, 4), threshold, faces)


def verify_pairs(
    pairs_file: str | Path,
    images_dir: str | Path,
    *,
    jitters: int = 0,
    workers: int = 0,
    landmarks: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PairsVerification:
    """The LFW pair protocol on a pairs file (LFW's pairs.txt format) over the images under `images_dir`; pairs whose
    images cannot be read or show no face are skipped and listed. `progress(done, total)` after each image."""

    from facellm.faces.embed import descriptors_of, evaluate_pairs, read_pairs

    pairs = read_pairs(pairs_file, images_dir)
    if not Path(images_dir).is_dir():
        raise InputError(f"image folder {images_dir} not found", "pass the folder that holds the pairs' images")
    paths = sorted({p for _, a, b, _ in pairs for p in (a, b)})
    done = itertools.count(1)
    on_image = (lambda: progress(next(done), len(paths))) if progress else None
    found, skipped = descriptors_of(paths, jitters, workers, on_image, landmarks)
    usable = [p for p in pairs if p[1] in found and p[2] in found]
    if len({fold for fold, *_ in usable}) < 2:
        raise InputError(
            f"only {len(usable)} of {len(pairs)} pairs have both images readable, in fewer than two folds",
            "check that the image folder is the one that holds the pairs' images",
        )
    scored = evaluate_pairs(usable, found)
    return PairsVerification(
        accuracy=round(100 * scored.accuracy, 2),
        pairs=len(usable),
        pairs_skipped=len(pairs) - len(usable),
        fold_accuracies=[round(100 * a, 2) for a in scored.fold_accuracies],
        thresholds=[round(t, 4) for t in scored.thresholds],
        shrinks=scored.shrinks,
        jitters=jitters,
        skipped={str(path): why for path, why in skipped.items()},
    )


def load(model: Model = DEFAULT_MODEL, *, adapter: str | Path | None = None, device: str = "auto") -> Backend:
    """A backend to answer with, built once: pass it to `ask` or `evaluate` to reuse a loaded model."""
    from facellm.backends import build_backend

    if isinstance(model, Backend):
        return model
    spec = model if isinstance(model, BackendSpec) else BackendSpec(model, Path(adapter) if adapter else None, device)
    backend = build_backend(spec)
    backend.check_ready()
    return backend


def ask(
    images: ImageSource | Sequence[ImageSource],
    text: str,
    *,
    model: Model = DEFAULT_MODEL,
    ground: bool = False,
    settings: GenerationSettings | None = None,
) -> Answer:
    """Ask a question about one image or several; `model="specialist"` answers from the face models alone (no LLM),
    `ground=True` puts the measured face facts before an LLM's question."""
    from facellm.backends import build_backend

    if not text.strip():
        raise InputError("the question is empty", "ask something about the image(s)")
    pictures = [read_image(i) for i in _image_list(images)]  # read first: a bad image fails before a model loads
    if isinstance(model, Backend):
        backend = model
    else:
        spec = model if isinstance(model, BackendSpec) else BackendSpec(model)
        backend = build_backend(replace(spec, ground=spec.ground or ground))
    (reply,) = backend.answer([Prompt(question(pictures, text))], settings or GenerationSettings())
    if isinstance(reply, Exception):
        raise reply
    return Answer(reply.text, backend.name)


def evaluate(
    bench_dir: str | Path,
    out: str | Path,
    *,
    model: Model,
    setting: str = "zero-shot",
    only: Sequence[str] | None = None,
    limit: int | None = None,
    max_new_tokens: int | None = None,
    new_identity: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Evaluation:
    """Answer FaceXBench's questions (its benchmark folder) with a model, resumably in the run folder `out`, and write
    the report there. `only`: some sub-categories (e.g. ["age", "gender"]); `limit`: the first N of each file;
    `progress(done, total)` after each answer."""
    from facellm.eval.facexbench import load_benchmark
    from facellm.eval.report import write_report
    from facellm.eval.run import answer_tokens
    from facellm.runs import folder_hash

    _check_limit(limit)
    questions = load_benchmark(bench_dir, only=set(only) if only else None, limit=limit)
    tokens = answer_tokens(setting, max_new_tokens)
    extra = {"grounded": _grounded(model), "benchmark": folder_hash(bench_dir)}
    counts, backend = _answer_all(questions, model, Path(out), setting, tokens, extra, new_identity, progress)
    reports = write_report(Path(out) / "results", out, backend.name)
    return Evaluation(backend.name, Path(out), counts, reports)


def evaluate_fairface(
    labels: str | Path,
    images: str | Path,
    out: str | Path,
    *,
    model: Model,
    tasks: Sequence[str] = ("age", "gender", "race"),
    limit: int | None = None,
    max_new_tokens: int = 16,
    new_identity: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> FairFaceEvaluation:
    """Age, gender and race accuracy on FairFace (its label CSV and the folder its paths start from), per race
    group, with the largest gap and confusion matrices; resumable in the run folder `out`."""
    from facellm.eval.fairface import fairface_report, load_fairface
    from facellm.eval.run import load_done
    from facellm.runs import file_hash

    _check_limit(limit)
    questions, truth = load_fairface(labels, images, tuple(tasks), limit)
    extra = {"grounded": _grounded(model), "labels": file_hash(labels)}
    counts, backend = _answer_all(questions, model, Path(out), "zero-shot", max_new_tokens, extra, new_identity, progress)
    report = fairface_report(questions, load_done(Path(out)), truth, out)
    scored = {task: FairFaceTask(**values) for task, values in report["tasks"].items()}
    return FairFaceEvaluation(backend.name, Path(out), counts, scored)


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
    from facellm.backends import backend_name, build_backend
    from facellm.data.build import build_dataset as ask_teacher
    from facellm.data.build import (
        build_identity,
        check_run_folder,
        checked_aspects,
        measure_record,
        prices_for,
        start_new_run,
    )
    from facellm.data.filters import flag_records
    from facellm.data.sources import load_source
    from facellm.data.stats import write_stats
    from facellm.data.store import QAStore
    from facellm.prompts import load_prompts
    from facellm.runs import file_hash

    _check_limit(limit)
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
        (run / "build.json").write_text(_json(settings), encoding="utf-8")
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


def train(config: TrainConfig | str | Path | None, overrides: Sequence[str] = (), *, resume: bool = False) -> TrainSummary:
    """LoRA (or full) fine-tuning: `config` is a training YAML, a shipped config's name (facellm-1b, facellm-8b,
    facellm-38b, tiny-cpu) or a `TrainConfig`; `overrides` are `key=value` strings (e.g. "learning_rate=2e-5")."""
    from facellm.train.config import TrainConfig, load_config
    from facellm.train.recipe import train as fine_tune

    if config is None and not overrides:
        raise InputError("no training config given", "pass a shipped config's name (e.g. facellm-1b) or a YAML file")
    if isinstance(config, TrainConfig) and overrides:
        raise InputError("overrides apply to a config file or name", "change the TrainConfig itself (model_copy)")
    chosen = config if isinstance(config, TrainConfig) else load_config(config, tuple(overrides))
    found = fine_tune(chosen, resume=resume)
    return TrainSummary(
        output=Path(found["output"]),
        global_step=found["global_step"],
        train_samples=found["train_samples"],
        eval_samples=found["eval_samples"],
        skipped_rows=dict(found["samples"]["skipped"]),
        dropped_by_collator=found["dropped_by_collator"],
        train_loss=found["train_loss"],
        logged_losses=found["logged_losses"],
        seconds=found["seconds"],
        world_size=found["world_size"],
        tokens_seen=found["tokens_seen"],
        padding_fraction=found["padding_fraction"],
        peak_memory_mb=found["peak_memory_mb"],
        precision=found["precision"],
    )


def _image_list(images: ImageSource | Sequence[ImageSource]) -> list[ImageSource]:
    if isinstance(images, str | Path | bytes) or not isinstance(images, Sequence):
        return [images]  # one image (a path, raw bytes or a PIL image)
    if not images:
        raise InputError("no images given", "pass one image or a list of them")
    return list(images)


def _check_limit(limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise InputError(f"limit must be at least 1, got {limit}", "leave it out to run everything")


def _grounded(model: Model) -> bool:
    return isinstance(model, BackendSpec) and model.ground


def _answer_all(
    questions: list[Question],
    model: Model,
    out: Path,
    setting: str,
    tokens: int,
    extra: dict,
    new_identity: bool,
    progress: Callable[[int, int], None] | None,
) -> tuple[RunCounts, Backend]:
    """Every question answered into the run folder; the backend is built only after the run folder passes its
    identity check, so a refused rerun never loads a model."""
    from facellm.backends import backend_name, build_backend
    from facellm.eval.run import check_run_folder, run_identity, run_questions

    if isinstance(model, Backend):
        backend = model
        check_run_folder(out, run_identity(backend.name, backend.scoring, setting, tokens, extra), new_identity)
    else:
        spec = model if isinstance(model, BackendSpec) else BackendSpec(model)
        check_run_folder(out, run_identity(backend_name(spec), spec.scoring, setting, tokens, extra), new_identity)
        backend = build_backend(spec)
        backend.check_ready()
    done = itertools.count(1)
    on_answer = (lambda _: progress(next(done), len(questions))) if progress else None
    counts = run_questions(questions, backend, out, setting, tokens, extra, new_identity, progress=on_answer)
    return RunCounts(**counts), backend


def _json(value: object) -> str:
    import json

    return json.dumps(value, indent=1)


__all__ = [
    "Answer",
    "DatasetBuild",
    "Evaluation",
    "FairFaceEvaluation",
    "FairFaceTask",
    "Model",
    "PairsVerification",
    "RunCounts",
    "TrainSummary",
    "Verification",
    "analyze",
    "ask",
    "build_dataset",
    "evaluate",
    "evaluate_fairface",
    "load",
    "train",
    "verify",
    "verify_pairs",
]
