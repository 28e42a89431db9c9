"""Build a FairFaceGPT-style QA set: every (image, aspect) not yet done goes to the teacher; answers go to the store.

The teacher is any backend (`facellm.backends`): the offline template teacher, an OpenAI-compatible endpoint or a
local model. Two request modes: `per-aspect` (the paper: one request per image and aspect) and `per-image` (one
request returns all aspects as a JSON object, validated; an image whose JSON fails falls back to per-aspect
requests, and the unusable reply is kept with its cost). Work goes to the backend through `answer_stream` (chunks
of what it batches or keeps in flight, several chunks at once where it allows); each answer is committed as soon
as its chunk returns.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from facellm.backends.base import Backend, Prompt, Reply, answer_stream
from facellm.conversation import GenerationSettings, Turn
from facellm.data.sources import FaceRecord
from facellm.data.store import QARecord, QAStore, image_hash, record_key
from facellm.errors import BackendError, Cause, FaceLLMError, InputError, cause_of
from facellm.faces import analyze_image, measured_facts
from facellm.images import read_image
from facellm.prompts import PromptSpec
from facellm.runs import check_identity, start_new_identity

MODES = ("per-aspect", "per-image")
TEACHERS = ("template", "openai", "hf")
# US$ per million tokens (input, output), from OpenAI's published prices; override with --price-in/--price-out.
KNOWN_PRICES = {"gpt-4o-2024-11-20": (2.50, 10.00), "gpt-4o": (2.50, 10.00), "gpt-4o-mini": (0.15, 0.60)}
# A per-image request answers every aspect at once: it may use this many times the per-aspect answer length.
PER_IMAGE_TOKENS = 8
# What a data run folder holds (moved together by --new-identity).
RUN_FILES = (
    "qa.sqlite",
    "qa.sqlite-wal",
    "qa.sqlite-shm",
    "build.json",
    "stats.json",
    "stats.md",
    "answer_lengths.png",
    "group_balance.png",
)


@dataclass
class Prices:
    """US$ per million input and output tokens."""

    input: float = 0.0
    output: float = 0.0

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1e6


@dataclass
class BuildSummary:
    images: int = 0
    pending: int = 0
    done: int = 0
    failed: int = 0
    skipped_images: int = 0
    duplicates: dict[str, str] = field(default_factory=dict)  # image -> earlier image with the same content
    fallbacks: int = 0
    cost: float = 0.0
    failures: dict[str, int] = field(default_factory=dict)  # Cause value -> count


@dataclass
class _Job:
    record: FaceRecord
    image_hash: str
    aspects: list[str]


def build_dataset(
    records: list[FaceRecord],
    spec: PromptSpec,
    teacher: Backend,
    store: QAStore,
    aspects: list[str] | None = None,
    mode: str = "per-aspect",
    retry_failed: bool = False,
    prices: Prices | None = None,
    measured: Callable[[FaceRecord], dict] | None = None,
    progress: Callable[[BuildSummary], None] | None = None,
    max_new_tokens: int = 700,
    identity: dict | None = None,
) -> BuildSummary:
    """Run the teacher over every pending (image, aspect); safe to interrupt and rerun at any point.

    The run's identity (teacher, prompt version, mode, answer length, measured facts, plus `identity`, e.g. the
    label file's hash) must match the store's earlier one (`facellm.runs`)."""
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r}", f"use one of {', '.join(MODES)}")
    wanted = checked_aspects(spec, aspects)
    run_identity = build_identity(teacher.name, spec, mode, max_new_tokens, measured is not None, identity)
    check_identity(store.meta("identity"), run_identity, store.run_dir)
    store.set_meta("identity", run_identity)
    summary = BuildSummary(images=len(records))
    jobs = _pending_jobs(records, spec, teacher, store, wanted, retry_failed, summary)
    summary.pending = sum(len(j.aspects) for j in jobs)
    _Builder(spec, teacher, store, mode, prices or Prices(), measured, summary, progress, max_new_tokens).run(jobs)
    return summary


def checked_aspects(spec: PromptSpec, aspects: list[str] | None) -> list[str]:
    """The aspects asked for (all of the prompt file's when None); InputError naming any the file lacks."""
    unknown = sorted(set(aspects or ()) - set(spec.aspects))
    if unknown:
        raise InputError(f"unknown aspect(s): {', '.join(unknown)}", f"use {', '.join(spec.aspects)}")
    return aspects or list(spec.aspects)


def build_identity(
    teacher: str, spec: PromptSpec, mode: str, max_new_tokens: int, measured: bool, extra: dict | None = None
) -> dict:
    """The settings that change a data run's answers (see `facellm.runs`); `teacher` is the teacher backend's name."""
    return {
        "teacher": teacher,
        "prompt_version": spec.version,
        "mode": mode,
        "max_new_tokens": max_new_tokens,
        "measured": measured,
        **(extra or {}),
    }


def start_new_run(run_dir: Path, identity: dict) -> Path | None:
    """`--new-identity`: move an earlier data run with another identity out of `run_dir`; returns where."""
    return start_new_identity(run_dir, RUN_FILES, _previous_identity(run_dir), identity)


def check_run_folder(run_dir: Path, identity: dict) -> None:
    """Refuse at once (before a teacher is built or loaded) a rerun into `run_dir` with other settings."""
    check_identity(_previous_identity(run_dir), identity, run_dir)


def _previous_identity(run_dir: Path) -> dict | None:
    if not (run_dir / "qa.sqlite").is_file():
        return None
    with QAStore(run_dir) as store:  # closed before any of its files move
        return store.meta("identity")


def prices_for(model: str | None, price_in: float | None = None, price_out: float | None = None) -> Prices:
    """Given prices, else the known price of `model`, else zero."""
    known_in, known_out = KNOWN_PRICES.get(model or "", (0.0, 0.0))
    return Prices(known_in if price_in is None else price_in, known_out if price_out is None else price_out)


def measure_record(record: FaceRecord) -> dict:
    """Measured facts of a record's image for attribute-aware prompts (face analysis of the largest face)."""

    return measured_facts(analyze_image(read_image(record.path)))


def _pending_jobs(records, spec, teacher, store, aspects, retry_failed, summary) -> list[_Job]:
    statuses = store.statuses()
    skip = {"done", "batched"} | (set() if retry_failed else {"failed"})  # batched: waiting in a Batch API job
    jobs: list[_Job] = []
    first_of: dict[str, str] = {}  # image content hash -> the first record's image
    for record in records:
        try:
            if not record.path.is_file():
                raise FaceLLMError(f"image not found: {record.path}", "check --images")
            digest = image_hash(record.path)
        except (FaceLLMError, OSError) as exc:
            store.skip(record.image, str(exc))
            summary.skipped_images += 1
            continue
        if digest in first_of:  # a repeated row or the same picture twice: its answers are already being asked for
            summary.duplicates[record.image] = first_of[digest]
            continue
        first_of[digest] = record.image
        todo = [a for a in aspects if statuses.get(record_key(digest, a, spec.version, teacher.name)) not in skip]
        if todo:
            jobs.append(_Job(record, digest, todo))
    return jobs


@dataclass
class _Builder:
    spec: PromptSpec
    teacher: Backend
    store: QAStore
    mode: str
    prices: Prices
    measured: Callable[[FaceRecord], dict] | None
    summary: BuildSummary
    progress: Callable[[BuildSummary], None] | None
    max_new_tokens: int

    measured_of: dict[str, dict] = field(default_factory=dict)  # image hash -> facts (measured once per image)

    def run(self, jobs: list[_Job]) -> None:
        """Per-image requests first (in that mode), then per-aspect requests for what is left; every answer is
        stored the moment its chunk returns."""
        if self.mode == "per-image":
            jobs = self._per_image(jobs)
        asks = (
            ((job, measured, aspect), self._prompt(job, image, measured, aspect))
            for job, image, measured in self._ready(jobs)
            for aspect in job.aspects
        )
        for (job, measured, aspect), reply in self._answer(asks, self.max_new_tokens):
            self._save(job, aspect, "per-aspect", measured, reply)

    def _ready(self, jobs: list[_Job]):
        """(job, image, measured facts) for each job whose image can be read; the others are recorded as skipped."""
        for job in jobs:
            try:
                image = read_image(job.record.path)
            except FaceLLMError as exc:
                self.store.skip(job.record.image, str(exc))
                self.summary.skipped_images += 1
                self._tick()
                continue
            self.store.unskip(job.record.image)
            if job.image_hash not in self.measured_of:
                self.measured_of[job.image_hash] = self.measured(job.record) if self.measured else {}
            yield job, image, self.measured_of[job.image_hash]

    def _per_image(self, jobs: list[_Job]) -> list[_Job]:
        """Ask once per image for all aspects; store the valid answers and return what is still to ask per aspect."""
        leftover = [job for job in jobs if len(job.aspects) <= 1]
        many = [job for job in jobs if len(job.aspects) > 1]
        ready = self._ready(many)
        asks = (((job, measured), self._prompt(job, image, measured, None)) for job, image, measured in ready)
        for (job, measured), reply in self._answer(asks, self.max_new_tokens * PER_IMAGE_TOKENS):
            answers = {} if isinstance(reply, Exception) else parse_per_image(reply.text, job.aspects)
            if not answers and isinstance(reply, Reply):  # paid for but unusable: kept, with its cost
                record = self._record(job, job.aspects[0], "per-image", measured)
                self._charge(record, reply)
                self.store.put_unusable(record, reply.text)
            share = max(1, len(answers))
            for aspect, text in answers.items():
                part = Reply(
                    text, reply.prompt_tokens // share, reply.completion_tokens // share, reply.image_bytes // share
                )
                self._save(job, aspect, "per-image", measured, part)
            rest = [a for a in job.aspects if a not in answers]
            if rest:
                self.summary.fallbacks += 1
                leftover.append(_Job(job.record, job.image_hash, rest))
        return leftover

    def _prompt(self, job: _Job, image, measured: dict, aspect: str | None) -> Prompt:
        known = job.record.known
        user = (
            self.spec.per_image_prompt(known, measured)
            if aspect is None
            else self.spec.user_prompt(aspect, known, measured)
        )
        turns = [Turn("system", self.spec.system), Turn("user", user, [image])]
        return Prompt(turns, facts={"aspect": aspect, "known": known, "measured": measured})

    def _answer(self, asks, max_new_tokens: int):
        return answer_stream(self.teacher, asks, GenerationSettings(max_new_tokens=max_new_tokens))

    def _record(self, job: _Job, aspect: str, mode: str, measured: dict) -> QARecord:
        return QARecord(
            key=record_key(job.image_hash, aspect, self.spec.version, self.teacher.name),
            image_hash=job.image_hash,
            image=job.record.image,
            root=str(job.record.root),
            aspect=aspect,
            prompt_version=self.spec.version,
            teacher=self.teacher.name,
            mode=mode,
            question=self.spec.aspects[aspect].stored_question,
            known=job.record.known,
            measured=measured,
        )

    def _charge(self, record: QARecord, reply: Reply) -> None:
        record.prompt_tokens, record.completion_tokens = reply.prompt_tokens, reply.completion_tokens
        record.image_bytes = reply.image_bytes
        record.cost = self.prices.cost(reply.prompt_tokens, reply.completion_tokens)
        self.summary.cost += record.cost

    def _save(self, job: _Job, aspect: str, mode: str, measured: dict, reply: Reply | Exception) -> None:
        record = self._record(job, aspect, mode, measured)
        if isinstance(reply, Reply) and not reply.text.strip():
            self._charge(record, reply)
            reply = BackendError("the teacher returned no text", "raise --max-new-tokens", Cause.EMPTY)
        if isinstance(reply, Reply):
            self._charge(record, reply)
            record.answer = reply.text.strip()
            self.summary.done += 1
        else:
            cause = cause_of(reply).value
            record.status, record.error, record.cause = "failed", str(reply), cause
            self.summary.failed += 1
            self.summary.failures[cause] = self.summary.failures.get(cause, 0) + 1
        self.store.put(record)
        self._tick()

    def _tick(self) -> None:
        if self.progress:
            self.progress(self.summary)


def parse_per_image(text: str, aspects: list[str]) -> dict[str, str]:
    """The valid aspect answers of a per-image JSON reply (non-empty strings under known keys); {} if not JSON."""
    body = text.strip()
    if body.startswith("```"):
        body = body.strip("`").removeprefix("json").strip()
    start, end = body.find("{"), body.rfind("}")
    try:
        data = json.loads(body[start : end + 1]) if start >= 0 else None
    except json.JSONDecodeError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {a: data[a].strip() for a in aspects if isinstance(data.get(a), str) and data[a].strip()}
