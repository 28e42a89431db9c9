"""Run a local or API model over multiple-choice questions (FaceXBench, FairFace), resumably, in FaceXBench's layout.

A run folder holds `run.json` (what was run; no secrets), `predictions.jsonl` (one line per answered or failed
question, appended as work finishes, so a crash loses at most one chunk), `results/*.json` (the benchmark files
with a `prediction` per question, readable by the official aggregation script) and the report files.
A rerun with the same folder skips every question that already has a prediction and retries failed ones.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from PIL import Image

from facellm.errors import FaceLLMError, InputError
from facellm.eval.facexbench import Question, build_prompt
from facellm.images import read_image

Item = tuple[list[Image.Image], str]  # the images and the prompt text of one question


class Answerer(Protocol):
    """Anything that answers a list of (images, prompt) items; a failed item's slot holds its exception."""

    name: str
    chunk_size: int

    def answer(self, items: Sequence[Item]) -> list[str | Exception]: ...


@dataclass
class LocalAnswerer:
    """A local model through the model layer: batched generation, or likelihood of the option letters."""

    lm: object  # LoadedModel
    name: str
    max_new_tokens: int = 16
    batch_size: int = 8
    scoring: str = "generate"  # or "likelihood"

    @property
    def chunk_size(self) -> int:
        return self.batch_size * 4

    def answer(self, items: Sequence[Item]) -> list[str | Exception]:
        from facellm.model import GenerationSettings, choose_option, generate, question

        conversations = [question(images, text) for images, text in items]
        if self.scoring == "likelihood":
            letters = [_letters_in(text) for _, text in items]
            return list(choose_option(self.lm, conversations, letters, batch_size=self.batch_size))
        settings = GenerationSettings(max_new_tokens=self.max_new_tokens)
        return list(generate(self.lm, conversations, settings, batch_size=self.batch_size))


@dataclass
class ApiAnswerer:
    """An OpenAI-compatible endpoint through the shared client; requests run concurrently."""

    client: object  # ChatClient
    name: str
    max_new_tokens: int = 16

    @property
    def chunk_size(self) -> int:
        return self.client.config.concurrency * 4

    def answer(self, items: Sequence[Item]) -> list[str | Exception]:
        from facellm.api import to_openai_messages
        from facellm.model import question

        messages = [to_openai_messages(question(images, text)) for images, text in items]
        replies = self.client.complete_many(messages, max_tokens=self.max_new_tokens)
        return [r if isinstance(r, Exception) else r.text for r in replies]


def _letters_in(prompt: str) -> list[str]:
    """Option letters listed at the end of a built prompt, as "(A) ..." lines."""
    return [line[1] for line in prompt.splitlines() if len(line) > 3 and line[0] == "(" and line[2] == ")"]


def run_questions(
    questions: Sequence[Question],
    answerer: Answerer,
    out_dir: str | Path,
    setting: str = "zero-shot",
    identity: dict | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Answer every question not yet answered in `out_dir`, then rewrite `results/`; returns counts."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    identity = {"answerer": answerer.name, "setting": setting, **(identity or {})}
    _check_identity(out, identity)
    done = load_done(out)
    pending = [q for q in questions if q.key not in done]
    # Questions with the same number of images batch together with the least padding.
    pending.sort(key=lambda q: (len(q.images), q.file, _int(q.qid)))
    started, failed = time.monotonic(), 0
    with open(out / "predictions.jsonl", "a", encoding="utf-8") as log:
        for start in range(0, len(pending), answerer.chunk_size):
            chunk = pending[start : start + answerer.chunk_size]
            records = _answer_chunk(chunk, answerer, setting)
            for record in records:
                log.write(json.dumps(record, ensure_ascii=False) + "\n")
                failed += "error" in record
            log.flush()
            if progress:
                progress(len(chunk))
    elapsed = time.monotonic() - started
    done = load_done(out)
    write_results(questions, done, out / "results")
    return {
        "questions": len(questions),
        "answered_now": len(pending) - failed,
        "failed_now": failed,
        "answered_total": sum(q.key in done for q in questions),
        "seconds": round(elapsed, 2),
    }


def _answer_chunk(chunk: Sequence[Question], answerer: Answerer, setting: str) -> list[dict]:
    """Read images (a bad one fails only its question), answer the rest, return one record per question."""
    records: dict[str, dict] = {}
    ready: list[tuple[Question, Item]] = []
    for q in chunk:
        try:
            images = [read_image(p) for p in q.image_paths]
        except FaceLLMError as exc:
            records[q.key] = _record(q, error=str(exc))
            continue
        ready.append((q, (images, build_prompt(q, setting))))
    # A batch may not mix questions with and without images.
    for with_images in (True, False):
        group = [(q, item) for q, item in ready if bool(item[0]) == with_images]
        if not group:
            continue
        try:
            answers = answerer.answer([item for _, item in group])
        except FaceLLMError as exc:
            answers = [exc] * len(group)
        for (q, _), answer in zip(group, answers):
            records[q.key] = _record(q, error=str(answer)) if isinstance(answer, Exception) else _record(q, answer)
    return [records[q.key] for q in chunk]


def _record(q: Question, prediction: str | None = None, error: str | None = None) -> dict:
    record = {"key": q.key, "file": q.file, "qid": q.qid}
    if error is not None:
        record["error"] = error
    else:
        record["prediction"] = prediction
    return record


def load_done(out: Path) -> dict[str, str]:
    """Predictions already in the run folder, by question key (a later line wins; failed lines are not done)."""
    done: dict[str, str] = {}
    path = out / "predictions.jsonl"
    if not path.exists():
        return done
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a crash; its question is simply answered again
        if "prediction" in record:
            done[record["key"]] = record["prediction"]
    return done


def write_results(questions: Sequence[Question], done: dict[str, str], results_dir: Path) -> None:
    """One JSON per benchmark file, in FaceXBench's layout, with `prediction` on every answered question."""
    results_dir.mkdir(parents=True, exist_ok=True)
    by_file: dict[str, list[Question]] = {}
    for q in questions:
        by_file.setdefault(q.file, []).append(q)
    for name, items in by_file.items():
        first = items[0]
        data = {
            "category": first.category,
            "sub-category": first.subcategory,
            "dataset": first.dataset,
            "question_type": "MCQ",
            "num_images": first.num_images,
            "prepend_text": first.prepend_text,
            "postpend_text": first.postpend_text,
            "questions": {},
        }
        if first.context:
            data["context"] = first.context
        for q in items:
            entry = {
                "image_paths": list(q.images),
                "question_text": q.text,
                "options": list(q.options),
                "correct_answer_option": q.correct,
            }
            if q.key in done:
                entry["prediction"] = done[q.key]
            data["questions"][q.qid] = entry
        (results_dir / name).write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")


def _check_identity(out: Path, identity: dict) -> None:
    path = out / "run.json"
    if path.exists():
        previous = json.loads(path.read_text(encoding="utf-8"))
        clashes = {k for k in ("answerer", "setting", "scoring") if previous.get(k) != identity.get(k)}
        if clashes:
            detail = ", ".join(f"{k}: {previous.get(k)!r} vs {identity.get(k)!r}" for k in sorted(clashes))
            raise InputError(f"{out} holds another run ({detail})", "choose another --out folder")
    path.write_text(json.dumps(identity, indent=1), encoding="utf-8")


def _int(text: str) -> int:
    return int(text) if text.isdigit() else 0
