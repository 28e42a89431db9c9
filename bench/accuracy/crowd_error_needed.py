"""How precise a crowd count must be to answer FaceXBench-format crowd questions: the shipped crowd model's errors on
the held-out ShanghaiTech B images, rescaled to smaller mean absolute errors (same shape, shuffled over images), and
the accuracy the specialist's option rule (`answers.count_scores`: the option that allows the count, else the
nearest) reaches on the questions `specialist_vs_facellm.py` asks: four nearby exact counts, or four adjacent 5-wide
ranges. The first row uses the measured errors as they are. FaceLLM-38B's published crowd accuracy is 39.3.

Run: python -m bench.accuracy.crowd_error_needed [--repeats 20]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench.accuracy import question_forms
from bench.paths import SHARED
from facellm.faces import crowd
from facellm.faces.splits import crowd as crowd_split
from facellm.images import read_image
from facellm.specialist.answers import count_bounds, count_scores

DATA = SHARED / "data" / "shanghaitech_b"


def accuracy(questions: list[dict], estimates: np.ndarray) -> float:
    right = 0
    for question, estimate in zip(questions, estimates):
        scores = count_scores(float(estimate), {str(o): count_bounds(str(o)) for o in question["options"]})
        right += max(scores, key=scores.get) == question["answer"]
    return 100 * right / len(questions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=20, help="shuffles of the errors per row")
    args = parser.parse_args()
    held_out = crowd_split(DATA).held_out
    started = time.perf_counter()
    truth = np.array([float(count) for _, count in held_out])
    counted = np.array([crowd.predict(read_image(path)).count for path, _ in held_out])
    errors = counted - truth
    measured = float(np.abs(errors).mean())
    print(
        f"{len(truth)} held-out images, mean count {truth.mean():.1f}; shipped model MAE {measured:.2f}, "
        f"RMSE {np.sqrt((errors**2).mean()):.2f} ({time.perf_counter() - started:.0f} s)"
    )
    source = {"questions": {"0": {"question_text": "How many people are in the image?"}}}
    images = [(str(path), int(count)) for path, count in held_out]
    forms = {
        "exact": question_forms.crowd_questions(source, images, False),
        "ranges": question_forms.crowd_questions(source, images, True),
    }
    rng = np.random.default_rng(0)
    print("| mean absolute error | exact counts | 5-wide ranges | both |\n|---|---|---|---|")
    for target in (None, 15, 10, 7.5, 5, 3, 2):
        row = []
        for questions in forms.values():
            if target is None:
                row.append(accuracy(questions, truth + errors))
                continue
            scaled = errors * target / measured
            row.append(
                np.mean(
                    [accuracy(questions, truth + scaled[rng.permutation(len(scaled))]) for _ in range(args.repeats)]
                )
            )
        name = f"{measured:.2f} (measured)" if target is None else f"{target:g}"
        print(f"| {name} | {row[0]:.1f}% | {row[1]:.1f}% | {np.mean(row):.1f}% |")


if __name__ == "__main__":
    main()
