"""How wide the same-person probability should be (specialist/answers.SAME_PERSON_SPREAD): hr_fr and lr_fr
accuracy of the specialist on the development questions of bench/accuracy/facexbench_forms.py for several widths.

Run: python -m bench.accuracy.same_person_spread [--spreads 0.001,0.01,0.02,0.05]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.accuracy import facexbench_forms
from facellm.backends.specialist import SpecialistBackend
from facellm.eval.facexbench import load_benchmark
from facellm.eval.report import load_predictions, score
from facellm.eval.run import run_questions
from facellm.specialist import answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spreads", default="0.001,0.01,0.02,0.05")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for subtask in ("hr_fr", "lr_fr"):
            facexbench_forms.build(subtask, Path(tmp) / subtask, 1.0, 0)
            questions = load_benchmark(Path(tmp) / subtask)
            for spread in map(float, args.spreads.split(",")):
                answers.SAME_PERSON_SPREAD = spread  # one process (workers=1), so the setting holds
                out = Path(tmp) / f"run-{subtask}-{spread}"
                run_questions(questions, SpecialistBackend(workers=1), out)
                report, _ = score(load_predictions(out / "results"), "strict")
                print(f"{subtask} ({len(questions)} q), spread {spread}: {report.subcategory[subtask].accuracy:.1f}%")


if __name__ == "__main__":
    main()
