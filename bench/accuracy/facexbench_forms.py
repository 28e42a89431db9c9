"""The specialist on FaceXBench's OWN question forms, built from held-out faces of ../shared/data, per file and per
sub-task beside FaceLLM's published FaceXBench accuracy.

For every real question file of a sub-task the specialist claims, a seeded share of its questions is kept with its
text, options and keyed letter as published, and images are drawn from a labelled pool until the keyed option is
the only true one under the images' labels (a "None of the above" key: until no listed option is true). An option's
truth under labels is judged by the reader's semantics (specialist/joint.holds); that those semantics agree with the
benchmark's own keys is checked on all 3,800 real questions by tests/test_question_forms.py. Pools (faces no shipped
model trained on):
  age / gender / race   FairFace val 1-2500 (the attribute model trained on train 1-16000), every FairFace and
                        UTKFace question file (UTKFace's images are reserved; only its question texts are used)
  expression            RAF-DB held-out fifth for the RAF-DB files, FER2013 PublicTest for the AffectNet files
  hr_fr / lr_fr         specialist_vs_facellm.py's LFW grouping, every hr_fr file's questions (lr_fr: 20 px)
  headpose              AFLW2000-3D fold 1 (the pose model never saw it); BIWI files' questions on the same faces
  fas / deepfakes       question_forms.py (NUAA subjects 7-9; every 5th real/StyleGAN face)
  crowd_counting        held-out ShanghaiTech B images, options rebuilt around each count; with --crowd FOLDER,
                        100 photos of fewer than 100 people (FaceXBench's range) drawn from those folders instead
  attributes            not built: CelebA images above 9000 are reserved and the shipped attribute model trained on
                        1-9000, so no CelebA faces are left to measure it on here
The images differ from FaceXBench's, so the comparison with FaceLLM is indicative only.

Run: python -m bench.accuracy.facexbench_forms [--share 0.25] [--only age,gender] [--keep DIR] [--crowd DIR ...]
(`--keep DIR` leaves DIR/SUBTASK/ as a FaceXBench folder: `facellm eval facexbench --bench-dir DIR/age ...` reruns
it with any model, or an earlier commit's specialist.)
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench.accuracy import question_forms
from bench.accuracy import specialist_vs_facellm as rows_bench
from bench.paths import SHARED
from facellm.backends.specialist import SpecialistBackend
from facellm.eval.facexbench import load_benchmark
from facellm.eval.report import load_predictions, score
from facellm.eval.run import run_questions
from facellm.faces import crowd_training, splits
from facellm.labels import normalise
from facellm.specialist import joint
from facellm.specialist.reading import read

SOURCE = SHARED / "facexbench" / "benchmark"
TRIES = 4000  # image draws per question before it is left out


def _fairface(attribute: str) -> list[tuple[str, str]]:
    folder = SHARED / "data" / "fairface"
    with open(folder / "fairface_label_val.csv", newline="") as f:
        return [
            (str(folder / "fairface_img_margin025" / r["file"]), normalise(attribute, r[attribute]))
            for r in csv.DictReader(f)
        ]


def _expression(name: str) -> list[tuple[str, str]]:
    data = SHARED / "data"
    if name == "rafdb":
        return [(str(path), label) for path, label in splits.expression(data / "rafdb").held_out]
    with open(data / "fer2013" / "labels.csv", newline="") as f:
        return [
            (str(data / "fer2013" / r["path"]), r["expression"])
            for r in csv.DictReader(f)
            if r["usage"] == "PublicTest"
        ]


def _aflw_held_out() -> list[tuple[str, dict]]:
    from facellm.faces.pose import WEIGHTS

    held = json.loads(WEIGHTS.with_suffix(".json").read_text())["held_out_faces"]
    aflw = SHARED / "data" / "aflw2000"
    with open(aflw / "labels.csv", newline="") as f:
        angles = {r["file"]: {a: float(r[a]) for a in ("yaw", "pitch", "roll")} for r in csv.DictReader(f)}
    return [(str(aflw / name), angles[name]) for name in held]


def _value(reading, label):
    """What the reading compares, from one image's label (a class, or head-pose angles)."""
    if reading.task != "headpose":
        return label
    if reading.form == "same":
        return int((label[reading.target[0]] + 100) // 10)
    return any(all(low <= label[axis] < high for axis, (low, high) in box) for box in reading.target)


def _fits(task: str, question: str, options: list, n: int, key: str):
    """A test of drawn (path, label) images: does the question's key become its only true option?"""
    reading = read(question, options, n, task)
    return lambda drawn: joint.only_key_true(reading, tuple(_value(reading, label) for _, label in drawn), key)


def from_labels(name: str, pool: list, task: str, share: float, rng: random.Random) -> tuple[dict, list, int]:
    """A `share` of file `name`'s questions (seeded sample), each on pool images that make its key the only true
    option."""
    template = json.loads((SOURCE / f"{name}.json").read_text())
    asked = list(template["questions"].values())
    rng.shuffle(asked)
    questions, missed = [], 0
    for q in asked[: math.ceil(share * len(asked))]:
        n = len(q["image_paths"])
        options = list(zip("ABCDEFGH", map(str, q["options"])))
        key = q["correct_answer_option"]
        fits = _fits(task, q["question_text"], options, n, key)
        for _ in range(TRIES):
            drawn = rng.sample(pool, n)
            if fits(drawn):
                questions.append({**q, "image_paths": [path for path, _ in drawn]})
                break
        else:
            missed += 1
    return template, questions, missed


def files_of(subtask: str) -> list[str]:
    found = []
    for path in sorted(SOURCE.glob("*.json")):
        if json.loads(path.read_text())["sub-category"] == subtask:
            found.append(path.stem)
    return found


def build(subtask: str, out: Path, share: float, seed: int, crowd_folders: tuple[Path, ...] = ()) -> dict[str, int]:
    """Write `subtask`'s questions into `out`; returns questions left out per file (no draw fitted the key)."""
    rng = random.Random(seed)
    missed = {}
    if subtask in ("age", "gender", "race", "expression", "headpose"):
        for name in files_of(subtask):
            if subtask == "expression":
                pool = _expression("rafdb" if name.startswith("rafdb") else "fer2013")
            elif subtask == "headpose":
                if "single" in name:  # one image, one bin: question_forms.py places faces in the keyed bin
                    template = json.loads((SOURCE / f"{name}.json").read_text())
                    chosen = question_forms.pose_questions(template, _aflw_held_out())
                    chosen = chosen[: math.ceil(share * len(template["questions"]))]
                    question_forms.write_file(out, name, template, chosen)
                    continue
                pool = _aflw_held_out()
            else:
                pool = _fairface(subtask)
            template, questions, missed[name] = from_labels(name, pool, subtask, share, rng)
            question_forms.write_file(out, name, template, questions)
    elif subtask in ("hr_fr", "lr_fr"):
        lfw = SHARED / "data" / "lfw" / "images"
        for name in files_of(subtask):
            rows_bench.rebuild_identity(
                SOURCE / f"{name}.json", out, lfw, seed=seed, side=20 if subtask == "lr_fr" else None
            )
            _keep_share(out / f"{name}.json", share)
    elif subtask in ("fas", "deepfakes"):
        data = SHARED / "data"
        held = splits.liveness(data / "nuaa") if subtask == "fas" else splits.synthetic(data / "synthetic_faces")
        words = question_forms.FAS if subtask == "fas" else question_forms.DEEPFAKES
        template = "replay_attack_multiple_mcq" if subtask == "fas" else "ff++_multiple_mcq"
        rows_bench.build_binary(SOURCE / f"{template}.json", out, held.held_out, words)
    elif subtask == "crowd_counting" and crowd_folders:
        items = [(path, count) for folder in crowd_folders for path, count in crowd_training.labelled_items(folder)]
        small = [(path, count) for path, count in items if int(count) < 100]  # FaceXBench's photos: 2-99 people
        random.Random(seed).shuffle(small)
        rows_bench.build_crowd(SOURCE, out, splits.Split([], small[:100]))
    elif subtask == "crowd_counting":
        rows_bench.build_crowd(SOURCE, out, splits.crowd(SHARED / "data" / "shanghaitech_b"))
    return missed


def _keep_share(path: Path, share: float) -> None:
    payload = json.loads(path.read_text())
    payload["questions"] = dict(list(payload["questions"].items())[: math.ceil(share * len(payload["questions"]))])
    path.write_text(json.dumps(payload))


SUBTASKS = ("age", "gender", "race", "expression", "hr_fr", "lr_fr", "headpose", "crowd_counting", "fas", "deepfakes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--share", type=float, default=0.25, help="share of each real question file to rebuild")
    parser.add_argument("--only", help="comma-separated sub-tasks (default: all the specialist claims)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency", type=int, default=10, help="questions per file timed alone")
    parser.add_argument(
        "--crowd",
        type=Path,
        action="append",
        default=[],
        help="development crowd folders (ShanghaiTech B's layout; official test splits are refused) whose photos of "
        "fewer than 100 people replace the held-out ShanghaiTech B fourth",
    )
    parser.add_argument("--keep", help="write the built questions (one folder per sub-task) here, to rerun them")
    args = parser.parse_args()
    if reserved := [folder for folder in args.crowd if splits.official_test_split(folder.resolve())]:
        parser.error(f"{reserved[0]} is an official test split, reserved for measurements made elsewhere")
    with open(rows_bench.PUBLISHED, newline="") as f:
        published = {r["subtask"]: r for r in csv.DictReader(f)}
    chosen = args.only.split(",") if args.only else SUBTASKS
    per_file, per_task = defaultdict(lambda: [0, 0]), {}
    with tempfile.TemporaryDirectory() as tmp:
        for subtask in chosen:
            folder = Path(args.keep or tmp) / subtask
            missed = build(subtask, folder, args.share, args.seed, tuple(args.crowd))
            questions = load_benchmark(folder)
            started = time.perf_counter()
            run_questions(questions, SpecialistBackend(), Path(tmp) / f"run-{subtask}")
            seconds = (time.perf_counter() - started) / max(1, len(questions))
            report, scored = score(load_predictions(Path(tmp) / f"run-{subtask}" / "results"), "strict")
            refused = 0
            for item in scored:
                per_file[item.file][0] += item.extracted == item.correct
                per_file[item.file][1] += 1
                refused += (item.prediction or "").startswith("cannot measure")
            tally = report.subcategory.get(subtask)
            slowest = latency(folder, questions, args.latency)
            per_task[subtask] = (tally.accuracy if tally else 0.0, len(questions), seconds, refused, slowest)
            print(
                f"{subtask}: {len(questions)} questions, {seconds:.3f} s each, slowest of {args.latency} alone "
                f"{slowest:.2f} s, {refused} refused, {sum(missed.values())} left out (no draw fitted)",
                flush=True,
            )
    print("\n| file | specialist | questions |\n|---|---|---|")
    for name, (right, total) in sorted(per_file.items()):
        print(f"| {name} | {100 * right / total:.1f}% | {total} |")
    print(
        "\n| sub-task | specialist | questions | refused | s / question (2 workers) | slowest alone | FaceLLM-1B | "
        "FaceLLM-8B | FaceLLM-38B | beats 38B? |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for subtask, (accuracy, total, seconds, refused, slowest) in per_task.items():
        p = published.get(subtask, {})
        beats = "yes" if p and accuracy > float(p["FaceLLM-38B"]) else "no"
        print(
            f"| {subtask} | {accuracy:.1f}% | {total} | {refused} | {seconds:.3f} | {slowest:.2f} | "
            f"{p.get('FaceLLM-1B', '-')} | {p.get('FaceLLM-8B', '-')} | {p.get('FaceLLM-38B', '-')} | {beats} |"
        )
    print(
        "\nIf a question were right exactly when all its images' labels are (per-image accuracy from the attribute "
        "model card, FairFace val 1-2500), over FaceXBench's real mix of 1-3 images:"
    )
    for subtask, value in label_bounds().items():
        print(f"- {subtask}: {value:.1f}%")


def latency(folder: Path, questions: list, count: int) -> float:
    """The longest time one question takes alone (one process, models loaded, images read from disk first), over
    the first `count` questions of every file."""
    from facellm.eval.facexbench import build_prompt
    from facellm.images import read_image
    from facellm.specialist import answer

    slowest = 0.0
    seen: dict[str, int] = defaultdict(int)
    one = next((q for q in questions if len(q.images) == 1), None)
    several = next((q for q in questions if len(q.images) > 1), None)
    for q in (one, several):  # the models loaded in this process and in the pool's
        if q is not None:
            answer([read_image(folder / path) for path in q.images], build_prompt(q))
    for q in questions:
        seen[q.file] += 1
        if seen[q.file] > count:
            continue
        images = [read_image(folder / path) for path in q.images]
        started = time.perf_counter()
        answer(images, build_prompt(q))
        slowest = max(slowest, time.perf_counter() - started)
    return slowest


def label_bounds() -> dict[str, float]:
    """Mean over the real questions of a**n (a: per-image accuracy, n: the question's images)."""
    from facellm.faces.attributes import WEIGHTS

    card = json.loads(WEIGHTS.with_suffix(".json").read_text())
    accuracy = card["accuracy"]
    bounds = {}
    for subtask in ("age", "gender", "race"):
        sizes = [
            len(q["image_paths"])
            for name in files_of(subtask)
            for q in json.loads((SOURCE / f"{name}.json").read_text())["questions"].values()
        ]
        a = accuracy[subtask]["accuracy"] / 100
        bounds[subtask] = 100 * sum(a**n for n in sizes) / len(sizes)
    return bounds


if __name__ == "__main__":
    main()
