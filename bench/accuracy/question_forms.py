"""FaceXBench-format questions about a yes/no property of each image (attack or bona fide, fake or real), built
from labelled images with the wording and option layout of FaceXBench's fas and deepfakes files.

The truth of every option is computed here from the images' labels by templates, independently of the specialist's
option reader (src/facellm/specialist/meaning.py), so a misreading there costs accuracy here.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Words:
    positive: str  # "attack" / "fake": the class the forms call positive
    negative: str  # "bonafide" / "real"
    forms: tuple  # (question, kind, images, side) rows; side: which class the question asks for


FAS = Words(
    "attack",
    "bonafide",
    (
        ("Is this image depicting a spoof attack?", "yesno", 1, "attack"),
        ("Does this image show a bonafide person?", "yesno", 1, "bonafide"),
        ("Is this image a bonafide person or its a spoof attack?", "class", 1, None),
        ("Which image shows a bonafide person?", "set", 2, "bonafide"),
        ("Which image is spoof attacked?", "set", 2, "attack"),
        ("Which statement best describes the images?", "labels", 2, None),
        ("How many images are bonafide?", "count", 3, "bonafide"),
        ("How many images are spoof attacked?", "count", 3, "attack"),
        ("Which images are not bonafide?", "set", 3, "attack"),
        ("Which images depict bonafide individuals?", "set", 3, "bonafide"),
    ),
)
DEEPFAKES = Words(
    "fake",
    "real",
    (
        ("Which image is real?", "set", 2, "real"),
        ("Are these images real or fake?", "labels", 2, None),
        ("Which images are deepfakes?", "set", 3, "fake"),
        ("Which images are not deepfakes?", "set", 3, "real"),
        ("Which among these images are fake?", "set", 3, "fake"),
        ("How many images are deepfakes?", "count", 3, "fake"),
        ("How many images are real?", "count", 3, "real"),
        ("Which images are real and which are fake?", "labels", 3, None),
    ),
)


def _set_text(numbers: list[int], n: int) -> str:
    if n == 2 and len(numbers) == 2:
        return "Both Images"
    return " and ".join(f"Image {k}" for k in numbers)


def _labels_text(labels: list[str], words: Words) -> str:
    """FaceXBench's ways of writing a label per image: "Both images are attacks", "Image 1 is fake, Image 2 is real",
    "Images 1 and 3 are fake, Image 2 is real", "All images are real"."""
    n = len(labels)
    plural = {
        words.positive: f"{words.positive}s" if words.positive == "attack" else words.positive,
        words.negative: words.negative,
    }
    if len(set(labels)) == 1:
        return f"{'Both' if n == 2 else 'All'} images are {plural[labels[0]]}"
    if n == 2:
        return f"Image 1 is {labels[0]} and Image 2 is {labels[1]}"
    groups = []
    for label in (words.positive, words.negative):
        members = [k for k in range(1, n + 1) if labels[k - 1] == label]
        if len(members) == 1:
            groups.append(f"Image {members[0]} is {label}")
        elif members:
            groups.append(f"Images {' and '.join(map(str, members))} are {plural[label]}")
    return ", ".join(groups)


def build(pool: dict[str, list], words: Words, count: int, seed: int = 0) -> list[dict]:
    """`count` questions (FaceXBench question dicts with image paths) from `pool` {label: [path, ...]}; an image
    appears at most once per question (a small held-out pool serves several questions)."""
    rng = random.Random(seed)
    questions = []
    for number in range(count):
        text, kind, n, side = words.forms[number % len(words.forms)]
        labels = [rng.choice((words.positive, words.negative)) for _ in range(n)]
        # in sorted order: a set's order of strings changes from run to run (hash randomisation)
        drawn = {label: rng.sample(pool[label], labels.count(label)) for label in sorted(set(labels))}
        paths = [str(drawn[label].pop()) for label in labels]
        options, answer = _options(kind, labels, side, words, rng)
        rng.shuffle(options)
        questions.append(
            {
                "image_paths": paths,
                "question_text": text,
                "options": options,
                "correct_answer_option": "ABCD"[options.index(answer)],
                "answer": answer,
            }
        )
    return questions


def _options(kind: str, labels: list[str], side: str | None, words: Words, rng: random.Random):
    n = len(labels)
    if kind == "yesno":
        return ["Yes", "No"], "Yes" if labels[0] == side else "No"
    if kind == "class":
        names = {"bonafide": "Bonafide", "attack": "Attack", "real": "Real", "fake": "Fake"}
        return [names[words.negative], names[words.positive]], names[labels[0]]
    if kind == "count":
        return [str(k) for k in range(4)], str(labels.count(side))
    if kind == "labels":
        every = [list(c) for c in itertools.product((words.positive, words.negative), repeat=n)]
        others = [c for c in every if c != labels]
        choices = [labels, *rng.sample(others, 3)]
        return [_labels_text(c, words) for c in choices], _labels_text(labels, words)
    members = [k for k in range(1, n + 1) if labels[k - 1] == side]
    subsets = [list(c) for r in range(1, n + 1) for c in itertools.combinations(range(1, n + 1), r)]
    if not members:  # no image fits: FaceXBench writes "None of the above" then
        return ["None of the above", *[_set_text(s, n) for s in rng.sample(subsets, 3)]], "None of the above"
    others = [_set_text(s, n) for s in subsets if s != members]
    distractors = rng.sample(others, 3) if len(others) >= 3 else [*others, "None of the above"]
    return [_set_text(members, n), *distractors], _set_text(members, n)


def write_file(out, name: str, template: dict, questions: list[dict]) -> int:
    """Write questions (with image paths anywhere) as one FaceXBench file in `out`, images copied beside it."""
    import json
    import shutil
    from pathlib import Path

    kept = {}
    for number, q in enumerate(questions, 1):
        paths = []
        for k, source in enumerate(q["image_paths"], 1):
            target = Path(out) / "images" / name / f"question_{number}_{k}{Path(source).suffix}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)
            paths.append(str(target.relative_to(out)))
        kept[str(number)] = {**q, "image_paths": paths}
    Path(out, f"{name}.json").write_text(json.dumps({**template, "questions": kept}), encoding="utf-8")
    return len(kept)


def pose_questions(source: dict, faces: list[tuple[str, dict]]) -> list[dict]:
    """FaceXBench's single-image head-pose questions (axis, answer bin, its options) on faces [(path, angles)]
    whose angle on the question's axis lies in the answer bin; a face is used once per axis."""
    import re

    used: set = set()
    questions = []
    for q in source["questions"].values():
        axis = next(a for a in ("yaw", "pitch", "roll") if a in q["question_text"])
        low, high = (float(v) for v in re.findall(r"-?\d+", q["answer"]))
        face = next((p for p, angles in faces if low <= angles[axis] < high and (p, axis) not in used), None)
        if face is not None:
            used.add((face, axis))
            questions.append({**q, "image_paths": [face]})
    return questions


def crowd_questions(source: dict, images: list[tuple[str, int]], ranges: bool, seed: int = 0) -> list[dict]:
    """FaceXBench's crowd-count question texts on images [(path, count)], options rebuilt around each count as
    FaceXBench writes them: four nearby counts, or four adjacent 5-wide ranges ("22 to 26")."""
    rng = random.Random(seed)
    texts = [q["question_text"] for q in source["questions"].values()]
    questions = []
    for number, (path, count) in enumerate(images):
        if ranges:
            start = count - rng.randrange(5)
            shift = rng.randrange(4)
            bins = [(start + 5 * (k - shift), start + 5 * (k - shift) + 4) for k in range(4)]
            options = [f"{a} to {b}" for a, b in bins]
            answer = options[shift]
        else:
            distractors = rng.sample([c for c in range(count - 5, count + 6) if c != count and c > 0], 3)
            options, answer = [count, *distractors], count
        rng.shuffle(options)
        questions.append(
            {
                "image_paths": [path],
                "question_text": texts[number % len(texts)],
                "options": options,
                "correct_answer_option": "ABCD"[options.index(answer)],
                "answer": str(answer),
            }
        )
    return questions
