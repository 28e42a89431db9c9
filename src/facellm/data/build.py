"""Build a FairFaceGPT-style QA set: every (image, aspect) not yet done goes to the teacher; answers go to the store.

Two request modes: `per-aspect` (the paper: one request per image and aspect) and `per-image` (one request returns
all aspects as a JSON object, validated; an image whose JSON fails falls back to per-aspect requests). A pool of
workers keeps `teacher.concurrency` requests in flight and writes each answer the moment it arrives.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field

from facellm.data.prompts import PromptSpec
from facellm.data.sources import FaceRecord
from facellm.data.store import QARecord, QAStore, image_hash, record_key
from facellm.data.teachers import Reply, Request, Teacher, TeacherError
from facellm.errors import FaceLLMError, InputError
from facellm.images import read_image

MODES = ("per-aspect", "per-image")


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
    failures: dict[str, int] = field(default_factory=dict)


@dataclass
class _Job:
    record: FaceRecord
    image_hash: str
    aspects: list[str]


def build_dataset(
    records: list[FaceRecord],
    spec: PromptSpec,
    teacher: Teacher,
    store: QAStore,
    aspects: list[str] | None = None,
    mode: str = "per-aspect",
    retry_failed: bool = False,
    prices: Prices | None = None,
    measured: Callable[[FaceRecord], dict] | None = None,
    progress: Callable[[BuildSummary], None] | None = None,
) -> BuildSummary:
    """Run the teacher over every pending (image, aspect); safe to interrupt and rerun at any point."""
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r}", f"use one of {', '.join(MODES)}")
    wanted = aspects or list(spec.aspects)
    unknown = set(wanted) - set(spec.aspects)
    if unknown:
        raise InputError(f"unknown aspect(s): {', '.join(sorted(unknown))}", f"use {', '.join(spec.aspects)}")
    summary = BuildSummary(images=len(records))
    jobs = _pending_jobs(records, spec, teacher, store, wanted, retry_failed, summary)
    summary.pending = sum(len(j.aspects) for j in jobs)
    store.set_meta("build", {"prompt_version": spec.version, "teacher": teacher.name, "mode": mode})
    context = _Context(spec, teacher, store, mode, prices or Prices(), measured, summary, progress)
    asyncio.run(context.run(jobs))
    return summary


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
class _Context:
    spec: PromptSpec
    teacher: Teacher
    store: QAStore
    mode: str
    prices: Prices
    measured: Callable[[FaceRecord], dict] | None
    summary: BuildSummary
    progress: Callable[[BuildSummary], None] | None

    async def run(self, jobs: list[_Job]) -> None:
        queue: asyncio.Queue[_Job] = asyncio.Queue()
        for job in jobs:
            queue.put_nowait(job)
        async with self.teacher:
            workers = [asyncio.create_task(self._worker(queue)) for _ in range(max(1, self.teacher.concurrency))]
            try:
                await asyncio.gather(*workers)
            finally:
                for worker in workers:
                    worker.cancel()

    async def _worker(self, queue: asyncio.Queue) -> None:
        while not queue.empty():
            job = queue.get_nowait()
            await self._do(job)

    async def _do(self, job: _Job) -> None:
        try:
            image = read_image(job.record.path)
        except FaceLLMError as exc:
            self.store.skip(job.record.image, str(exc))
            self.summary.skipped_images += 1
            self._tick()
            return
        self.store.unskip(job.record.image)
        measured = self.measured(job.record) if self.measured else {}
        if self.mode == "per-image" and len(job.aspects) > 1:
            leftover = await self._per_image(job, image, measured)
            if not leftover:
                return
            self.summary.fallbacks += 1
            job = _Job(job.record, job.image_hash, leftover)
        await asyncio.gather(*(self._per_aspect(job, image, measured, a) for a in job.aspects))

    async def _per_aspect(self, job: _Job, image, measured: dict, aspect: str) -> None:
        user = self.spec.user_prompt(aspect, job.record.known, measured)
        try:
            reply = await self.teacher.answer(
                Request(self.spec.system, user, image, aspect, job.record.known, measured)
            )
        except TeacherError as exc:
            self._save(job, aspect, "per-aspect", measured, error=str(exc))
            return
        self._save(job, aspect, "per-aspect", measured, reply=reply)

    async def _per_image(self, job: _Job, image, measured: dict) -> list[str]:
        """Ask once for all aspects; store the valid ones and return the aspects still to do."""
        user = self.spec.per_image_prompt(job.record.known, measured)
        try:
            reply = await self.teacher.answer(Request(self.spec.system, user, image, None, job.record.known, measured))
        except TeacherError:
            return job.aspects
        answers = parse_per_image(reply.text, job.aspects)
        share = max(1, len(answers))
        for aspect, text in answers.items():
            part = Reply(
                text, reply.prompt_tokens // share, reply.completion_tokens // share, reply.image_bytes // share
            )
            self._save(job, aspect, "per-image", measured, reply=part)
        return [a for a in job.aspects if a not in answers]

    def _save(self, job: _Job, aspect: str, mode: str, measured: dict, reply: Reply | None = None, error=None):
        record = QARecord(
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
        if reply is not None:
            record.answer = reply.text.strip()
            record.prompt_tokens, record.completion_tokens = reply.prompt_tokens, reply.completion_tokens
            record.image_bytes = reply.image_bytes
            record.cost = self.prices.cost(reply.prompt_tokens, reply.completion_tokens)
            self.summary.done += 1
            self.summary.cost += record.cost
        else:
            record.status, record.error = "failed", error
            self.summary.failed += 1
            cause = failure_cause(error or "")
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


def failure_cause(error: str) -> str:
    """A short failure category for reports: http 429, http 5xx, timeout, connection, garbage, empty, other."""
    lowered = error.lower()
    for needle, cause in (
        ("http 429", "rate limited (429)"),
        ("http 5", "server error (5xx)"),
        ("timeout", "timeout"),
        ("connecterror", "connection"),
        ("unexpected reply", "garbage reply"),
        ("empty answer", "empty answer"),
        ("no text", "empty answer"),
        ("refused the request", "client error (4xx)"),
    ):
        if needle in lowered:
            return cause
    return "other"
