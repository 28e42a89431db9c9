"""`SpecialistBackend`: face questions answered by the face-analysis models (`facellm.specialist`), no LLM.

The face models are CPU-bound and dlib's run on one core, so a batch of questions is spread over a pool of worker
processes (one per core, started once); a single question is answered here."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import Future

from facellm.backends.base import Backend, Prompt, Reply
from facellm.conversation import GenerationSettings
from facellm.parallel import worker_pool
from facellm.specialist import answer


class SpecialistBackend(Backend):
    name = "specialist (face-analysis models, not an LLM)"
    measures_faces = True

    def __init__(self, workers: int = 0) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.chunk_size = 8 * self.workers

    def answer(self, prompts: Sequence[Prompt], settings: GenerationSettings) -> list[Reply | Exception]:
        jobs = [(p.images, p.turns[-1].text, p.options) for p in prompts]
        if self.workers < 2 or len(jobs) < 2:
            return [_answer(job) for job in jobs]

        futures = [worker_pool(self.workers).submit(_answer, job) for job in jobs]
        return [_outcome(future) for future in futures]


def _outcome(future: Future[Reply]) -> Reply | Exception:
    """A worker's reply, or the exception that failed that question alone."""
    error = future.exception()
    if error is None:
        return future.result()
    if isinstance(error, Exception):
        return error
    raise error  # KeyboardInterrupt and the like end the run


def _answer(job: tuple) -> Reply:

    images, text, options = job
    return Reply(answer(images, text, options))
