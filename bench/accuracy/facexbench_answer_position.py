"""Where FaceXBench puts the right answer: a blind check of its question files.

For every question file: how often each letter is correct, and, where every option is a number or a numeric range
("24", "22 to 26", "-20 to -10", "30-39"), the rank of the right option among the options sorted by value. A rank
that is almost always the same is a shortcut a model can learn without looking at the image; the "blind rule" column
is the accuracy of always choosing that rank (or letter), which no image-reading model should be credited for.

    python -m bench.accuracy.facexbench_answer_position [--benchmark ../shared/facexbench/benchmark] [--min 40]
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path

from bench.paths import SHARED

NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)(?:\s*(?:to|-)\s*-?\d+(?:\.\d+)?)?\s*$")


def value(option) -> float | None:
    """The first number of a numeric option ("22 to 26" -> 22), None for any other option."""
    match = NUMBER.match(str(option))
    return float(match.group(1)) if match else None


def positions(questions: dict) -> tuple[Counter, Counter | None]:
    """(correct letter counts, rank-by-value counts of the right option or None when options are not numeric)."""
    letters, ranks, numeric = Counter(), Counter(), True
    for q in questions.values():
        letters[q["correct_answer_option"]] += 1
        options = [o for o in q["options"] if str(o).strip().lower() != "none of the above"]
        values = [value(o) for o in options]
        numeric = numeric and None not in values
        right = q["options"][ord(q["correct_answer_option"]) - ord("A")]
        if numeric and right in options:  # a right "None of the above" has no rank
            ranks[sorted(values).index(value(right))] += 1
    return letters, (ranks if numeric and ranks else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmark", type=Path, default=SHARED / "facexbench" / "benchmark")
    parser.add_argument("--min", type=float, default=40.0, help="list files whose blind rule reaches this accuracy")
    args = parser.parse_args()
    files = sorted(args.benchmark.glob("*.json"))
    if not files:
        raise SystemExit(f"no FaceXBench question files in {args.benchmark}: pass --benchmark DIR")
    print("| file | questions | right letter A/B/C/D | rank of the right value, lowest first | rule | accuracy |")
    print("|---|---|---|---|---|---|")
    for path in files:
        questions = json.loads(path.read_text(encoding="utf-8"))["questions"]
        letters, ranks = positions(questions)
        total = sum(letters.values())
        rule, hits = max(((f"letter {k}", v) for k, v in letters.items()), key=lambda kv: kv[1])
        if ranks and max(ranks.values()) > hits:
            rank, hits = ranks.most_common(1)[0]
            rule = f"rank {rank + 1} of the sorted values"
        accuracy = 100 * hits / total
        if accuracy >= args.min:
            shares = "/".join(str(letters.get(k, 0)) for k in "ABCD")
            spread = "/".join(str(ranks.get(k, 0)) for k in range(4)) if ranks else "-"
            print(f"| {path.stem} | {total} | {shares} | {spread} | {rule} | {accuracy:.0f}% |")


if __name__ == "__main__":
    main()
