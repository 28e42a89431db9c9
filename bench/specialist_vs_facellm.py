"""The specialist backend on FaceXBench-layout questions built from ../shared/data, beside FaceLLM's published
FaceXBench accuracy for the same sub-tasks. The question sets differ (ours come from FairFace val and LFW; the
published ones from FaceXBench's own images), so the comparison is indicative only.

  age / gender / race   4-option questions (the true FairFace label, two other labels, "None of the above") about
                        FairFace val images 2301-2800 (the predictors were trained on FairFace train only)
  hr_fr (same person)   "Are these the same person?" (A) Yes (B) No on LFW View-2 pairs (fold 1, every 3rd pair)
  expression            4-option questions (the true FER2013 label and three others) on FER2013 PublicTest images

Run: python bench/specialist_vs_facellm.py [--images 500]
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

from facellm.demo import make_question_set, write_face_folder
from facellm.eval.facexbench import load_benchmark
from facellm.eval.report import load_predictions, score
from facellm.eval.run import run_questions
from facellm.faces.embed import read_pairs
from facellm.images import read_image
from facellm.specialist import SpecialistAnswerer, answer

SHARED = Path(__file__).resolve().parents[2] / "shared"
PUBLISHED = (
    Path(__file__).resolve().parents[1] / "src" / "facellm" / "eval" / "published" / "facellm_subtasks_published.csv"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=500)
    args = parser.parse_args()
    fairface = SHARED / "data" / "fairface"
    with open(fairface / "fairface_label_val.csv", newline="") as f:
        rows = list(csv.DictReader(f))[2300 : 2300 + args.images]
    with open(PUBLISHED, newline="") as f:
        published = {r["subtask"]: r for r in csv.DictReader(f)}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        faces = write_face_folder(rows, fairface / "fairface_img_margin025", Path(tmp) / "faces")
        questions = load_benchmark(make_question_set(faces, Path(tmp) / "bench"))
        started = time.perf_counter()
        run_questions(questions, SpecialistAnswerer(), Path(tmp) / "run")
        per_question = (time.perf_counter() - started) / len(questions)
        report, _ = score(load_predictions(Path(tmp) / "run" / "results"), "strict")
        for name, tally in report.subcategory.items():
            results[name] = (tally.accuracy, tally.total)
    pairs = read_pairs(SHARED / "data" / "lfw" / "pairs.txt", SHARED / "data" / "lfw" / "images")[:600:3]
    right = sum(
        answer([read_image(a), read_image(b)], "Are these the same person?\n(A) Yes\n(B) No\n").startswith("A") == same
        for _, a, b, same in pairs
    )
    results["hr_fr"] = (100 * right / len(pairs), len(pairs))
    results["expression"] = _expression_questions(SHARED / "data" / "fer2013", 200)
    print(f"specialist on CPU, {1000 * per_question:.0f} ms per attribute question")
    print("| sub-task | specialist (our questions) | FaceLLM-1B | FaceLLM-8B | FaceLLM-38B (published, FaceXBench) |")
    print("|---|---|---|---|---|")
    for name, (accuracy, total) in results.items():
        p = published.get(name, {})
        print(f"| {name} | {accuracy:.1f}% ({total} q) | {p.get('FaceLLM-1B', '-')} | {p.get('FaceLLM-8B', '-')} | "
              f"{p.get('FaceLLM-38B', '-')} |")  # fmt: skip


def _expression_questions(fer: Path, count: int) -> tuple[float, int]:
    import random

    from facellm.faces.expression import EXPRESSIONS

    rng = random.Random(0)
    with open(fer / "labels.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["usage"] == "PublicTest"]
    rows = rng.sample(rows, count)
    right = 0
    for row in rows:
        options = [row["expression"], *rng.sample([e for e in EXPRESSIONS if e != row["expression"]], 3)]
        rng.shuffle(options)
        prompt = "Which expression does the face show?\n" + "".join(f"({k}) {o}\n" for k, o in zip("ABCD", options))
        right += answer([read_image(fer / row["path"])], prompt)[0] == "ABCD"[options.index(row["expression"])]
    return 100 * right / count, count


if __name__ == "__main__":
    main()
