"""Evaluation: FaceXBench and FairFace runs of any model, resumable in a run folder."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from facellm.api.answers import Model
from facellm.backends import backend_name, build_backend
from facellm.backends.base import Backend, BackendSpec
from facellm.errors import InputError
from facellm.eval.facexbench import load_benchmark
from facellm.eval.fairface import fairface_report, load_fairface
from facellm.eval.overlap import Match, benchmark_images, find_overlap, hash_images, training_images
from facellm.eval.report import write_report
from facellm.eval.run import answer_tokens, check_run_folder, load_done, run_identity, run_questions
from facellm.runs import file_hash, folder_hash

if TYPE_CHECKING:
    from facellm.eval.facexbench import Question
    from facellm.eval.report import Report


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

    check_limit(limit)
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

    check_limit(limit)
    questions, truth = load_fairface(labels, images, tuple(tasks), limit)
    extra = {"grounded": _grounded(model), "labels": file_hash(labels)}
    counts, backend = _answer_all(
        questions, model, Path(out), "zero-shot", max_new_tokens, extra, new_identity, progress
    )
    report = fairface_report(questions, load_done(Path(out)), truth, out)
    scored = {task: FairFaceTask(**values) for task, values in report["tasks"].items()}
    return FairFaceEvaluation(backend.name, Path(out), counts, scored)


@dataclass(frozen=True)
class Overlap:
    """Benchmark images that also occur in a training set (perceptual hash within `max_distance` bits)."""

    matches: list[Match]
    per_file: dict[str, int]  # question file -> its images found in the training set, most first
    train_images: int
    bench_images: int
    max_distance: int
    skipped: list[str]  # images that could not be read, with why


def check_overlap(
    train: str | Path, bench_dir: str | Path, *, image_root: str | Path | None = None, max_distance: int = 32
) -> Overlap:
    """The contamination check: which of FaceXBench's images (its benchmark folder) occur in a training set (an
    image folder, or a ShareGPT/LLaVA dataset whose image paths start from `image_root`)."""
    if not 0 <= max_distance <= 256:
        raise InputError(f"max_distance must be between 0 and 256, got {max_distance}", "use e.g. 32")
    train_paths, train_hashes, train_skipped = hash_images(training_images(train, image_root))
    bench_paths, bench_hashes, bench_skipped = hash_images(benchmark_images(bench_dir))
    matches = find_overlap(bench_paths, bench_hashes, train_paths, train_hashes, max_distance)
    files_of: dict[str, set[str]] = {}
    for q in load_benchmark(bench_dir):
        for path in q.image_paths:
            files_of.setdefault(str(path), set()).add(q.file)
    per_file = Counter(f for m in matches for f in files_of.get(m.bench_image, ()))
    return Overlap(
        matches,
        dict(per_file.most_common()),
        len(train_paths),
        len(bench_paths),
        max_distance,
        train_skipped + bench_skipped,
    )


def check_limit(limit: int | None) -> None:
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
