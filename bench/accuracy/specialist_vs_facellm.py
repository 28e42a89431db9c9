"""The specialist backend on FaceXBench-format questions built from ../shared/data, beside FaceLLM's published
FaceXBench accuracy for the same sub-tasks; every row on images its models never saw.

Where FaceXBench's own file fits (question text, options with their adjacent-bin distractors and "None of the
above", correct letter), each image is replaced by a ../shared/data image whose label is the question's answer:
  age / gender / race   fairface_single_mcq_{age,gender,race}_test.json on FairFace val (attributes: FairFace train)
  expression            affectnet_single_mcq.json on FER2013 PublicTest (grey; FER has no "contempt": left out) and
                        rafdb_single_mcq_train.json on the held-out fifth of RAF-DB (colour model: the other four)
  hr_fr                 lfw_multiple_mcq.json on LFW images grouped to fit each answer ("None of the above" left out)
  lr_fr                 tinyface_multiple_mcq.json the same way on LFW images shrunk to 20 x 20 px
  headpose              aflw2000_single_mcq_test.json on the AFLW2000 fold the pose model never saw
  crowd_counting        shanghaitech_single_mcq{,_range}.json texts on held-out ShanghaiTech B images, options
                        rebuilt around each image's count as FaceXBench writes them
For anti-spoofing and deepfakes the per-image labels behind FaceXBench's multi-image answers are not in its files,
so bench/accuracy/question_forms.py writes questions in their wording and option layout from labelled held-out images
(NUAA subjects 7-9; every 5th real/StyleGAN face). Splits: src/facellm/faces/splits.py.
  LFW pairs yes/no      "Are these the same person?" (A) Yes (B) No on LFW View-2 pairs (fold 1, every 3rd pair)
The images differ from FaceXBench's, so the comparison is indicative only.

Run: python -m bench.accuracy.specialist_vs_facellm [--only headpose-row,...]
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

from PIL import Image

from bench.accuracy import question_forms
from bench.paths import ROOT, SHARED
from facellm.backends.specialist import SpecialistBackend
from facellm.eval.facexbench import load_benchmark
from facellm.eval.report import load_predictions, score
from facellm.eval.run import run_questions
from facellm.faces import splits
from facellm.faces.embed import read_pairs
from facellm.images import read_image
from facellm.labels import normalise
from facellm.specialist import answer

PUBLISHED = ROOT / "src" / "facellm" / "eval" / "published" / "facellm_subtasks_published.csv"
REPEAT = 3  # each single-image question file is asked 3 times over different images: 300 questions, not 100
FER_NAMES = {"anger": "angry"}  # AffectNet's spelling -> FER2013's


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=200, help="LFW pairs for the same-person row")
    parser.add_argument("--only", help="comma-separated rows to run (e.g. headpose,fas)")
    args = parser.parse_args()
    with open(PUBLISHED, newline="") as f:
        published = {r["subtask"]: r for r in csv.DictReader(f)}
    source = SHARED / "facexbench" / "benchmark"
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, build in builders(source).items():
            if args.only and name not in args.only.split(","):
                continue
            folder = Path(tmp) / name
            build(folder)
            questions = load_benchmark(folder)
            started = time.perf_counter()
            run_questions(questions, SpecialistBackend(), Path(tmp) / f"run-{name}")
            seconds = (time.perf_counter() - started) / len(questions)
            report, _ = score(load_predictions(Path(tmp) / f"run-{name}" / "results"), "strict")
            for subtask, tally in report.subcategory.items():
                results[f"{subtask} ({name})"] = (tally.accuracy, tally.total, seconds, subtask)
            print(f"{name}: {len(questions)} questions, {seconds:.2f} s each", flush=True)
    if not args.only or "lfw-pairs" in args.only:
        pairs = read_pairs(SHARED / "data" / "lfw" / "pairs.txt", SHARED / "data" / "lfw" / "images")
        pairs = pairs[: 3 * args.pairs : 3]
        started = time.perf_counter()
        right = sum(
            answer([read_image(a), read_image(b)], "Are these the same person?\n(A) Yes\n(B) No\n").startswith("A")
            == same
            for _, a, b, same in pairs
        )
        seconds = (time.perf_counter() - started) / len(pairs)
        results["LFW pairs yes/no"] = (100 * right / len(pairs), len(pairs), seconds, "")
    print(
        "| sub-task (questions' source) | specialist | s / question | FaceLLM-1B | FaceLLM-8B | FaceLLM-38B | "
        "beats 38B? |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, (accuracy, total, seconds, subtask) in results.items():
        p = published.get(subtask, {})
        beats = "yes" if p and accuracy > float(p["FaceLLM-38B"]) else "no" if p else "-"
        print(
            f"| {name} | {accuracy:.1f}% ({total} q) | {seconds:.2f} | {p.get('FaceLLM-1B', '-')} | "
            f"{p.get('FaceLLM-8B', '-')} | {p.get('FaceLLM-38B', '-')} | {beats} |"
        )


def builders(source: Path) -> dict:
    """Row name -> function that writes that row's FaceXBench-format questions into a folder."""
    data = SHARED / "data"
    fairface = data / "fairface"
    with open(fairface / "fairface_label_val.csv", newline="") as f:
        val = [(fairface / "fairface_img_margin025" / r["file"], r) for r in csv.DictReader(f)]
    with open(data / "fer2013" / "labels.csv", newline="") as f:
        public = [(data / "fer2013" / r["path"], r) for r in csv.DictReader(f) if r["usage"] == "PublicTest"]
    raf = [(path, {"expression": label}) for path, label in splits.expression(data / "rafdb").held_out]
    rows = {}
    for task in ("age", "gender", "race"):
        rows[f"fairface-{task}"] = lambda out, t=task: rebuild(
            source / f"fairface_single_mcq_{t}_test.json",
            out,
            val,
            lambda r: normalise(t, r[t]),
            lambda text: normalise(t, text),
            repeat=REPEAT,
        )
    rows["fer2013"] = lambda out: rebuild(
        source / "affectnet_single_mcq.json",
        out,
        public,
        lambda r: r["expression"],
        lambda text: FER_NAMES.get(text, text),
        repeat=REPEAT,
    )
    rows["rafdb-held-out"] = lambda out: rebuild(
        source / "rafdb_single_mcq_train.json",
        out,
        raf,
        lambda r: r["expression"],
        lambda text: FER_NAMES.get(text.lower(), text.lower()),
        repeat=REPEAT,
    )
    rows["lfw"] = lambda out: rebuild_identity(source / "lfw_multiple_mcq.json", out, data / "lfw" / "images")
    rows["lfw-20px"] = lambda out: rebuild_identity(
        source / "tinyface_multiple_mcq.json", out, data / "lfw" / "images", side=20
    )
    rows["aflw2000-held-out"] = lambda out: build_pose(source, out)
    rows["nuaa-held-out"] = lambda out: build_binary(
        source / "replay_attack_multiple_mcq.json", out, splits.liveness(data / "nuaa").held_out, question_forms.FAS
    )
    rows["synthetic-held-out"] = lambda out: build_binary(
        source / "ff++_multiple_mcq.json",
        out,
        splits.synthetic(data / "synthetic_faces").held_out,
        question_forms.DEEPFAKES,
    )
    rows["shanghaitech-b-held-out"] = lambda out: build_crowd(source, out, splits.crowd(data / "shanghaitech_b"))
    return rows


def build_pose(source: Path, out: Path) -> None:
    from facellm.faces.pose import WEIGHTS

    held = json.loads(WEIGHTS.with_suffix(".json").read_text())["held_out_faces"]
    aflw = SHARED / "data" / "aflw2000"
    with open(aflw / "labels.csv", newline="") as f:
        angles = {r["file"]: {a: float(r[a]) for a in ("yaw", "pitch", "roll")} for r in csv.DictReader(f)}
    faces = [(str(aflw / name), angles[name]) for name in held]
    template = json.loads((source / "aflw2000_single_mcq_test.json").read_text())
    question_forms.write_file(out, "aflw2000_single_mcq_test", template, question_forms.pose_questions(template, faces))


def build_binary(template_file: Path, out: Path, held_out: list, words) -> None:
    template = json.loads(template_file.read_text())
    pool: dict[str, list] = {}
    for path, label in held_out:
        pool.setdefault(label, []).append(path)
    question_forms.write_file(out, template_file.stem, template, question_forms.build(pool, words, 150))


def build_crowd(source: Path, out: Path, split) -> None:
    images = [(str(path), int(count)) for path, count in split.held_out]
    for name, ranges in (("shanghaitech_single_mcq", False), ("shanghaitech_single_mcq_range", True)):
        template = json.loads((source / f"{name}.json").read_text())
        question_forms.write_file(out, name, template, question_forms.crowd_questions(template, images, ranges))


def rebuild(
    questions_file: Path, out: Path, pool: list, label_of, answer_label, seed: int = 0, repeat: int = 1
) -> None:
    """FaceXBench question file -> the same questions on images from `pool` (path, row) whose label is the answer;
    each image is used once; questions whose answer no pool image has are left out."""
    rng = random.Random(seed)
    pool = pool[:]
    rng.shuffle(pool)
    payload = json.loads(questions_file.read_text())
    kept = {}
    asked = [(f"{number}_{k}" if k else number, q) for k in range(repeat) for number, q in payload["questions"].items()]
    for number, q in asked:
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


def rebuild_identity(questions_file: Path, out: Path, lfw: Path, seed: int = 0, side: int | None = None) -> None:
    """FaceXBench's identity questions on LFW images grouped so that each question's answer is true (shrunk to
    `side` pixels for the low-resolution questions)."""
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
            if side:
                read_image(source).resize((side, side), Image.Resampling.BICUBIC).save(out / name)
            else:
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
        members = set(numbers)
        if "first image" in text and re.search(r"\bnot\b", text):  # the answer lists the images that are not A
            members = set(range(2, n + 1)) - members
        members |= {1} if "first image" in text else set()
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
