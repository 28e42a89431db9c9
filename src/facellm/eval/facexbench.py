"""FaceXBench questions: load the benchmark's JSON files and build prompts the way its official runner does.

FaceXBench (Narayan et al., 2025; github.com/Kartik-3004/facexbench) ships one JSON file per source dataset with
`category`, `sub-category`, `num_images`, optional `context` (tools questions), `prepend_text` (task description),
`postpend_text` (answer-format instruction) and `questions` {id: {image_paths, question_text, options,
correct_answer_option, answer}}. Image paths are relative to the benchmark folder.

The official runner (`evaluate.py`) builds each text as: the file's context (tools only), the prepend text (in-context
setting only), the question, the postpend text, then one "(A) option" line per option; the images go first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from facellm.conversation import option_letters
from facellm.errors import InputError

SETTINGS = ("zero-shot", "in-context", "cot")
# The official aggregation script's grouping (categories and their sub-categories).
CATEGORIES = {
    "bias_fairness": ("age", "gender", "race"),
    "attributes_expression": ("expression", "attributes"),
    "face_localization": ("headpose", "segmentation", "crowd_counting"),
    "face_recognition": ("hr_fr", "lr_fr", "celebrity_identification"),
    "fas_deepfakes": ("fas", "deepfakes"),
    "tools_use": ("tools_retrieval",),
}
COT_INSTRUCTION = (
    "Think step by step about the visual evidence, then give your final choice on the last line as "
    "'Answer: X', where X is the option letter."
)


@dataclass(frozen=True)
class Question:
    """One FaceXBench multiple-choice question with the fields of its file that shape the prompt and the report."""

    file: str
    qid: str
    category: str
    subcategory: str
    dataset: str
    num_images: str  # "single", "multiple" or "zero" (tools questions; they still carry a placeholder image)
    images: tuple[str, ...]  # as written in the file, relative to the benchmark folder
    text: str
    options: tuple[str, ...]
    correct: str  # option letter
    context: str = ""
    prepend_text: str = ""
    postpend_text: str = ""
    root: Path = Path(".")

    @property
    def image_paths(self) -> list[Path]:
        return [self.root / p for p in self.images]

    @property
    def key(self) -> str:
        """Unique id across the benchmark: file and question id."""
        return f"{self.file}#{self.qid}"

    @property
    def letters(self) -> list[str]:
        return option_letters(len(self.options))


def load_benchmark(bench_dir: str | Path, only: set[str] | None = None, limit: int | None = None) -> list[Question]:
    """All questions of every `*.json` in `bench_dir` (sorted by file), optionally only some sub-categories.

    `limit` keeps the first N questions of each file, so a quick run still touches every task.
    """
    root = Path(bench_dir)
    if not root.is_dir():
        raise InputError(f"benchmark folder not found: {root}", "pass --bench-dir with FaceXBench's benchmark folder")
    files = sorted(root.glob("*.json"))
    if not files:
        raise InputError(f"no FaceXBench JSON files in {root}", "pass the folder that holds *_mcq*.json")
    questions: list[Question] = []
    for path in files:
        questions.extend(_load_file(path, root, only, limit))
    if only and not questions:
        known = sorted({s for subs in CATEGORIES.values() for s in subs})
        raise InputError(f"no questions for --only {','.join(sorted(only))}", f"use sub-categories from {known}")
    return questions


def _load_file(path: Path, root: Path, only: set[str] | None, limit: int | None) -> list[Question]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        subcategory = data["sub-category"]
        if only and subcategory not in only:
            return []
        items = list(data["questions"].items())[:limit]
        return [
            Question(
                file=path.name,
                qid=str(qid),
                category=data["category"],
                subcategory=subcategory,
                dataset=data.get("dataset", ""),
                num_images=data.get("num_images", "unknown"),
                images=tuple(q.get("image_paths", [])),
                text=q["question_text"],
                options=tuple(str(o) for o in q["options"]),
                correct=q["correct_answer_option"],
                context=data.get("context", "") or "",
                prepend_text=data.get("prepend_text", "") or "",
                postpend_text=data.get("postpend_text", "") or "",
                root=root,
            )
            for qid, q in items
        ]
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"not a FaceXBench question file: {path} ({exc!r})", "remove it from the folder") from None


# Bump when build_prompt's output changes: a run folder's identity includes it (facellm.runs).
PROMPT_VERSION = "facexbench-runner-1"


def build_prompt(question: Question, setting: str = "zero-shot") -> str:
    """The question text sent with the images, following the official runner; `cot` swaps the answer format."""
    if setting not in SETTINGS:
        raise InputError(f"unknown setting {setting!r}", f"use one of {', '.join(SETTINGS)}")
    parts = []
    if question.category == "tools_use" and question.context:
        parts.append(question.context)
    if setting == "in-context" and question.prepend_text:
        parts.append(question.prepend_text)
    parts.append(question.text)
    instruction = COT_INSTRUCTION if setting == "cot" else question.postpend_text
    if instruction:
        parts.append(instruction)
    options = "".join(f"({letter}) {option}\n" for letter, option in zip(question.letters, question.options))
    return "\n".join(parts) + "\n" + options
