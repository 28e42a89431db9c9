"""The specialist backend on FaceXBench-format questions built from ../shared/data, beside FaceLLM's published
FaceXBench accuracy for the same sub-tasks.

The questions are FaceXBench's own (../shared/facexbench/benchmark: question text, options with their adjacent-bin
distractors and "None of the above", correct letter) with each image replaced by a ../shared/data image that has the
question's answer as its label (for "None of the above", a label no option names):
  age / gender / race   fairface_single_mcq_{age,gender,race}_test.json (100 questions each) on FairFace val images
                        (the attribute network was trained on FairFace train only)
  expression            affectnet_single_mcq.json on FER2013 PublicTest images (FER2013 has no "contempt": those
                        8 questions are left out)
  hr_fr                 lfw_multiple_mcq.json (4-6 images: which two match, which show the first image's person,
                        how many same-person pairs or identities, ...) on LFW images grouped to fit each answer;
                        questions answered "None of the above" are left out (their grouping is not determined)
  LFW pairs yes/no      "Are these the same person?" (A) Yes (B) No on LFW View-2 pairs (fold 1, every 3rd pair)
The images differ from FaceXBench's, so the comparison is indicative only.

Run: python bench/specialist_vs_facellm.py
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import shutil
import tempfile
import time
from pathlib import Path

from facellm.eval.facexbench import load_benchmark
from facellm.eval.report import load_predictions, score
from facellm.eval.run import run_questions
from facellm.faces.embed import read_pairs
from facellm.images import read_image
from facellm.labels import normalise
from facellm.specialist import SpecialistAnswerer, answer

SHARED = Path(__file__).resolve().parents[2] / "shared"
PUBLISHED = (
    Path(__file__).resolve().parents[1] / "src" / "facellm" / "eval" / "published" / "facellm_subtasks_published.csv"
)
FER_NAMES = {"anger": "angry"}  # AffectNet's spelling -> FER2013's


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=200, help="LFW pairs for the same-person row")
    args = parser.parse_args()
    with open(PUBLISHED, newline="") as f:
        published = {r["subtask"]: r for r in csv.DictReader(f)}
    fairface = SHARED / "data" / "fairface"
    with open(fairface / "fairface_label_val.csv", newline="") as f:
        val = [(fairface / "fairface_img_margin025" / r["file"], r) for r in csv.DictReader(f)]
    fer = SHARED / "data" / "fer2013"
    with open(fer / "labels.csv", newline="") as f:
        public = [(fer / r["path"], r) for r in csv.DictReader(f) if r["usage"] == "PublicTest"]
    source = SHARED / "facexbench" / "benchmark"
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "bench"
        for task in ("age", "gender", "race"):
            rebuild(source / f"fairface_single_mcq_{task}_test.json", folder, val,
                    lambda r, t=task: normalise(t, r[t]), lambda text, t=task: normalise(t, text))  # fmt: skip
        rebuild(source / "affectnet_single_mcq.json", folder, public, lambda r: r["expression"],
                lambda text: FER_NAMES.get(text, text))  # fmt: skip
        rebuild_identity(source / "lfw_multiple_mcq.json", folder, SHARED / "data" / "lfw" / "images")
        questions = load_benchmark(folder)
        started = time.perf_counter()
        run_questions(questions, SpecialistAnswerer(), Path(tmp) / "run")
        per_question = (time.perf_counter() - started) / len(questions)
        report, _ = score(load_predictions(Path(tmp) / "run" / "results"), "strict")
        for name, tally in report.subcategory.items():
            results[name] = (tally.accuracy, tally.total)
    pairs = read_pairs(SHARED / "data" / "lfw" / "pairs.txt", SHARED / "data" / "lfw" / "images")[: 3 * args.pairs : 3]
    right = sum(
        answer([read_image(a), read_image(b)], "Are these the same person?\n(A) Yes\n(B) No\n").startswith("A") == same
        for _, a, b, same in pairs
    )
    results["LFW pairs yes/no"] = (100 * right / len(pairs), len(pairs))
    print(f"specialist on CPU, {1000 * per_question:.0f} ms per attribute/expression question")
    print("| sub-task | specialist (FaceXBench-format, our images) | FaceLLM-1B | FaceLLM-8B | FaceLLM-38B |")
    print("|---|---|---|---|---|")
    for name, (accuracy, total) in results.items():
        p = published.get(name, {})
        print(f"| {name} | {accuracy:.1f}% ({total} q) | {p.get('FaceLLM-1B', '-')} | {p.get('FaceLLM-8B', '-')} | "
              f"{p.get('FaceLLM-38B', '-')} |")  # fmt: skip


def rebuild(questions_file: Path, out: Path, pool: list, label_of, answer_label, seed: int = 0) -> None:
    """FaceXBench question file -> the same questions on images from `pool` (path, row) whose label is the answer;
    each image is used once; questions whose answer no pool image has are left out."""
    rng = random.Random(seed)
    pool = pool[:]
    rng.shuffle(pool)
    payload = json.loads(questions_file.read_text())
    kept = {}
    for number, q in payload["questions"].items():
        options = [o for o in q["options"] if o.lower() != "none of the above"]
        if q["answer"].lower() == "none of the above":
            named = {_label(answer_label, o) for o in options}
            index = next((i for i, (_, row) in enumerate(pool) if label_of(row) not in named), None)
        else:
            wanted = _label(answer_label, q["answer"])
            index = next((i for i, (_, row) in enumerate(pool) if label_of(row) == wanted), None)
        if index is None:
            continue
        path, _ = pool.pop(index)
        name = f"images/{questions_file.stem}/question_{number}{path.suffix}"
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, out / name)
        kept[number] = {**q, "image_paths": [name]}
    (out / questions_file.name).write_text(json.dumps({**payload, "questions": kept}), encoding="utf-8")


def rebuild_identity(questions_file: Path, out: Path, lfw: Path, seed: int = 0) -> None:
    """FaceXBench's LFW identity questions on LFW images grouped so that each question's answer is true."""
    rng = random.Random(seed)
    people = {d.name: sorted(d.glob("*.jpg")) for d in sorted(lfw.iterdir()) if d.is_dir()}
    payload = json.loads(questions_file.read_text())
    kept = {}
    for number, q in payload["questions"].items():
        groups = identity_groups(q["question_text"], q["answer"], len(q["image_paths"]))
        if groups is None:
            continue
        sizes = {g: groups.count(g) for g in set(groups)}
        names = [n for n in people if len(people[n]) >= 1]
        rng.shuffle(names)
        chosen = {}
        for group, size in sorted(sizes.items(), key=lambda gs: -gs[1]):
            name = next(n for n in names if len(people[n]) >= size and n not in chosen.values())
            chosen[group] = name
        taken = {g: rng.sample(people[chosen[g]], sizes[g]) for g in sizes}
        paths = []
        for k, group in enumerate(groups, 1):
            source = taken[group].pop()
            name = f"images/{questions_file.stem}/question_{number}_{k}{source.suffix}"
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, out / name)
            paths.append(name)
        kept[number] = {**q, "image_paths": paths}
    (out / questions_file.name).write_text(json.dumps({**payload, "questions": kept}), encoding="utf-8")


def identity_groups(question: str, answer_text: str, n: int) -> list[int] | None:
    """An identity group per image that makes `answer_text` the true answer, or None when it cannot be told."""
    text, numbers = question.lower(), [int(x) for x in re.findall(r"\d+", answer_text)]
    singles = iter(range(100, 200))
    if "none of the above" in answer_text.lower():
        return None
    if "how many pairs" in text and len(numbers) == 1 and 2 * numbers[0] <= n:
        groups = [k // 2 for k in range(2 * numbers[0])]
        return groups + [next(singles) for _ in range(n - len(groups))]
    if re.search(r"how many (unique|different|distinct)", text) and numbers and 1 <= numbers[0] <= n:
        return [0] * (n - numbers[0] + 1) + [next(singles) for _ in range(numbers[0] - 1)]
    if "first image" in text and "how many" in text and numbers and numbers[0] < n:
        return [0] * (numbers[0] + 1) + [next(singles) for _ in range(n - numbers[0] - 1)]
    if "first image" in text or "which two images" in text:
        members = set(numbers) | ({1} if "first image" in text else set())
        return [0 if k in members else next(singles) for k in range(1, n + 1)]
    if "different from that person" in text:
        return [next(singles) if k in numbers else 0 for k in range(1, n + 1)]
    return None


def _label(convert, text: str) -> str | None:
    try:
        return convert(text)
    except Exception:  # noqa: BLE001 - an option that names no label of this data (e.g. "Both", "contempt")
        return None


if __name__ == "__main__":
    main()
