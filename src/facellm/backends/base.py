"""The one backend interface: something that answers conversations about images.

Data teachers, evaluation, `ask`, `chat` and the server all talk to a `Backend`. A backend answers a batch of
`Prompt`s with one `Reply` per prompt, or the exception that failed that prompt; it can stream one answer, and it
says its name. `answer_safely` is the one error policy every caller uses: a failed batch never ends a run, an
out-of-memory batch is retried once in halves, any other failed batch is retried one prompt at a time, and every
failure carries a typed `Cause`. `answer_stream` is the one way batch work (eval, data) feeds a backend: chunks of
`chunk_size` prompts, up to `parallel_chunks` of them in flight, replies handed back as each chunk finishes.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from facellm.conversation import Conversation, GenerationSettings, option_letters
from facellm.errors import Cause, cause_of


@dataclass
class Prompt:
    """One request: the conversation, plus what is known about it as data (never re-read from the text).

    `options`: a multiple-choice question's options in order (letters A, B, ...), as the benchmark file lists them.
    `facts`: what a data run knows about the image (`aspect`, `known` labels, `measured` facts).
    `checked_tokens`: set once a backend's `check` accepted the prompt, its length then; the backend answering it
    need not check, render or count it again."""

    turns: Conversation
    options: tuple[str, ...] | None = None
    facts: dict = field(default_factory=dict)
    checked_tokens: int | None = None

    @property
    def images(self) -> list:
        return [image for turn in self.turns for image in turn.images]

    @property
    def letters(self) -> list[str]:
        return option_letters(len(self.options or ()))


@dataclass
class Reply:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    image_bytes: int = 0


@dataclass
class BackendSpec:
    """Everything a user's flags can say about the backend to use."""

    model: str | None = None  # hub id, folder, or a name in NAMED
    adapter: Path | None = None
    device: str = "auto"
    dtype: str = "auto"
    batch_size: int = 8
    scoring: str = "generate"
    max_prompt_tokens: int | None = None
    api_base: str | None = None  # an OpenAI-compatible endpoint instead of a local model
    api_model: str | None = None
    concurrency: int = 8
    rpm: float | None = None
    tpm: float | None = None
    max_retries: int = 5
    timeout_s: float = 120.0
    proxy: bool = False  # api_base as a serving upstream: no retries, its status passed on, model name optional
    ground: bool = False
    prompts: object | None = None  # the data run's PromptSpec (the template backend answers from it)


class Backend:
    """What every backend provides. Subclasses implement `answer`; the rest has sensible defaults."""

    name = "backend"
    chunk_size = 16  # how many prompts callers hand over at once (a batch, or requests kept in flight)
    parallel_chunks = 1  # chunks `answer_stream` keeps in flight (more than 1 only where calls share one limit)
    measures_faces = False  # True: answers from the face models itself, so grounding would add nothing
    scoring = "generate"  # or "likelihood": the option letter the model finds most probable (part of a run's identity)

    @classmethod
    def from_spec(cls, spec: BackendSpec) -> Backend:
        """Built by name from a `BackendSpec` (override when the backend needs some of its flags)."""
        return cls()

    def answer(self, prompts: Sequence[Prompt], settings: GenerationSettings) -> list[Reply | Exception]:
        """One reply per prompt, in order; a slot may hold the exception that failed that prompt alone."""
        raise NotImplementedError

    def check_ready(self) -> None:
        """Raise `InputError` when this backend cannot answer at all (e.g. an endpoint that cannot be reached), so
        that a run is refused before it starts; default: nothing to check."""

    def stream(
        self, prompt: Prompt, settings: GenerationSettings, cancel: threading.Event | None = None
    ) -> Iterator[str]:
        """Pieces of one answer (default: the whole answer at once)."""
        (reply,) = self.answer([prompt], settings)
        if isinstance(reply, Exception):
            raise reply
        yield reply.text

    def prepare(self, prompt: Prompt) -> Prompt:
        """The prompt as this backend will answer it, with any work done once per request already done (a grounded
        backend's face analysis); answering a prepared prompt does not repeat that work. Default: the prompt."""
        return prompt

    def check(self, prompt: Prompt, settings: GenerationSettings) -> int:
        """The prompt's length in tokens; `InputError` naming the problem when it cannot be answered."""
        return self.prompt_tokens(prompt)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def prompt_tokens(self, prompt: Prompt) -> int:
        return sum(len(turn.text.split()) for turn in prompt.turns)


def answer_safely(backend: Backend, prompts: Sequence[Prompt], settings: GenerationSettings) -> list[Reply | Exception]:
    """`backend.answer` under the one error policy (see the module docstring); never raises for a failed item."""
    if not prompts:
        return []
    first = _attempt(backend, prompts, settings)
    if not isinstance(first, Exception):
        return first
    if len(prompts) == 1:
        return [first]
    middle = len(prompts) // 2  # out of memory: smaller once; what fails again is recorded, not split further
    parts = [prompts[:middle], prompts[middle:]] if cause_of(first) is Cause.OUT_OF_MEMORY else [[p] for p in prompts]
    replies: list[Reply | Exception] = []
    for part in parts:
        result = _attempt(backend, part, settings)
        replies += [result] * len(part) if isinstance(result, Exception) else result
    return replies


def answer_stream(backend: Backend, items: Iterable[tuple], settings: GenerationSettings) -> Iterator[tuple]:
    """Answer a stream of (tag, prompt) pairs, yielding (tag, reply or exception) per prompt. Prompts are drawn
    from `items` only as chunk slots free up, so a long run holds a few chunks in memory. With `parallel_chunks`
    > 1, chunks are handed back as they finish (not in order), so a slow request (a retry after a timeout) holds
    back only its own chunk while the others keep the backend busy."""
    iterator = iter(items)
    size, depth = max(1, backend.chunk_size), max(1, backend.parallel_chunks)

    def next_chunk() -> list:
        return list(itertools.islice(iterator, size))

    if depth == 1:
        while chunk := next_chunk():
            yield from zip((tag for tag, _ in chunk), answer_safely(backend, [p for _, p in chunk], settings))
        return
    with ThreadPoolExecutor(depth, thread_name_prefix="facellm-chunks") as pool:
        pending: dict = {}  # future -> its chunk
        while True:
            while len(pending) < depth and (chunk := next_chunk()):
                pending[pool.submit(answer_safely, backend, [p for _, p in chunk], settings)] = chunk
            if not pending:
                return
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                yield from zip((tag for tag, _ in pending.pop(future)), future.result())


def _attempt(backend: Backend, prompts: Sequence[Prompt], settings: GenerationSettings) -> list | Exception:
    """The backend's replies, or the exception that failed the whole call."""
    try:
        return list(backend.answer(prompts, settings))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # also a Rust panic from a tokenizer (derives from BaseException)
        return as_exception(exc)


def as_exception(exc: BaseException) -> Exception:
    """`exc` as an ordinary exception (a pyo3 PanicException derives from BaseException and would pass handlers)."""
    return exc if isinstance(exc, Exception) else RuntimeError(f"{type(exc).__name__}: {exc}")
