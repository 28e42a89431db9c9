"""Run a local or API model over multiple-choice questions (FaceXBench, FairFace), resumably, in FaceXBench's layout.

A run folder holds `run.json` (what was run; no secrets), `predictions.jsonl` (one line per answered or failed
question, appended as work finishes, so a crash loses at most one chunk), `results/*.json` (the benchmark files
with a `prediction` per question, readable by the official aggregation script) and the report files.
A rerun with the same folder skips every question that already has a prediction and retries failed ones; one with
other settings is refused (`facellm.runs`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from facellm.backends.base import Backend, Prompt, answer_stream
from facellm.conversation import GenerationSettings, question
from facellm.errors import FaceLLMError, cause_of
from facellm.eval.facexbench import PROMPT_VERSION, Question, build_prompt
from facellm.images import read_image
from facellm.runs import check_identity, start_new_identity

RUN_FILES = ("run.json", "predictions.jsonl", "results")


# Answer length by setting: a letter (and a few words) for zero-shot, room to reason for chain-of-thought.
ANSWER_TOKENS = {"zero-shot": 16, "cot": 512}


def answer_tokens(setting: str, asked: int | None = None) -> int:
    """The answer length a run asks for: `asked` when given, else the setting's default (ANSWER_TOKENS)."""
    return asked or ANSWER_TOKENS.get(setting, ANSWER_TOKENS["zero-shot"])


def run_questions(
    questions: Sequence[Question],
    backend: Backend,
    out_dir: str | Path,
    setting: str = "zero-shot",
    max_new_tokens: int | None = None,
    identity: dict | None = None,
    new_identity: bool = False,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Answer every question not yet answered in `out_dir`, then rewrite `results/`; returns counts.

    `max_new_tokens`: the answer length (default: the setting's, `answer_tokens`). `identity`: what else changes the
    answers (benchmark files, grounding); with the backend, setting, scoring, prompt version and answer length it must
    match the folder's earlier run (see `facellm.runs`)."""
    max_new_tokens = answer_tokens(setting, max_new_tokens)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    identity = run_identity(backend.name, backend.scoring, setting, max_new_tokens, identity)
    _settle_identity(out, identity, new_identity)
    settings = GenerationSettings(max_new_tokens=max_new_tokens)
    done = load_done(out)
    pending = [q for q in questions if q.key not in done]
    # Questions with the same number of images batch together with the least padding.
    pending.sort(key=lambda q: (len(q.images), q.file, _int(q.qid)))
    started, failed = time.monotonic(), 0
    with open(out / "predictions.jsonl", "a", encoding="utf-8") as log:

        def save(record: dict) -> None:  # each answer is on disk before the next is asked for
            nonlocal failed
            log.write(json.dumps(record, ensure_ascii=False) + "\n")
            log.flush()
            failed += "error" in record
            if progress:
                progress(1)

        for q, reply in answer_stream(backend, _prompts(pending, setting, save), settings):
            save(_record(q, error=reply) if isinstance(reply, Exception) else _record(q, reply.text))
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


def _prompts(pending: Sequence[Question], setting: str, save: Callable[[dict], None]):
    """(question, prompt) for each question whose images can be read; the others are saved as failed at once."""
    for q in pending:
        try:
            images = [read_image(p) for p in q.image_paths]
        except FaceLLMError as exc:
            save(_record(q, error=exc))
            continue
        yield q, Prompt(question(images, build_prompt(q, setting)), options=tuple(q.options))


def _record(q: Question, prediction: str | None = None, error: Exception | None = None) -> dict:
    record: dict[str, str | None] = {"key": q.key, "file": q.file, "qid": q.qid}
    if error is not None:
        record["error"], record["cause"] = str(error), cause_of(error).value
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
        data: dict[str, Any] = {
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


def run_identity(answerer: str, scoring: str, setting: str, max_new_tokens: int, extra: dict | None = None) -> dict:
    """Everything that changes a run's answers: the answerer's name, its scoring, the prompt setting and version, the
    answer length, and `extra` (benchmark files, grounding)."""
    return {
        "answerer": answerer,
        "setting": setting,
        "scoring": scoring,
        "max_new_tokens": max_new_tokens,
        "prompt_version": PROMPT_VERSION,
        **(extra or {}),
    }


def check_run_folder(out: Path, identity: dict, new_identity: bool = False) -> None:
    """Refuse at once (before any model loads) a rerun into `out` with other settings; writes nothing."""
    if not new_identity:
        check_identity(_previous_identity(Path(out)), identity, Path(out))


def _previous_identity(out: Path) -> dict | None:
    path = out / "run.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _settle_identity(out: Path, identity: dict, new_identity: bool) -> None:
    path = out / "run.json"
    previous = _previous_identity(out)
    if new_identity and start_new_identity(out, RUN_FILES, previous, identity):
        previous = None
    check_identity(previous, identity, out)
    path.write_text(json.dumps(identity, indent=1), encoding="utf-8")


def _int(text: str) -> int:
    return int(text) if text.isdigit() else 0
