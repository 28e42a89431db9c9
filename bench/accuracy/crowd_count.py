"""Crowd counting error (MAE, RMSE; all photos and those of fewer than 100 people) of crowd-model weights on folders
laid out as ../shared/data/shanghaitech_b is (images/, labels.csv with path,count).

Folders used in docs/benchmarks.md:
  ../shared/data/shanghaitech_b         its held-out fourth (faces/splits.py): the development part
  Mall frames 801-2000, every 4th       Mall's own test part (the model sees frames 1-800, every 4th)
Official test splits (ShanghaiTech A/B test_data) are reserved for measurements made elsewhere: a folder whose path
names a test split is refused.
(The fetched sets are converted into that layout by the commands in docs/benchmarks.md.)

Run: python -m bench.accuracy.crowd_count --weights A.pt [--weights B.pt] --data FOLDER[:held-out] [--data ...]
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np

from facellm.faces import crowd
from facellm.faces.splits import crowd as crowd_split
from facellm.faces.splits import official_test_split
from facellm.images import read_image


def items_of(spec: str) -> tuple[str, list[tuple[Path, float]]]:
    """FOLDER (every image) or FOLDER:held-out (the held-out fourth of faces/splits.py)."""
    folder, _, part = spec.partition(":")
    path = Path(folder)
    if official_test_split(path.resolve()):
        raise SystemExit(f"{path} is an official test split, reserved for measurements made elsewhere: pass another")
    if part == "held-out":
        return f"{path.name} (held-out fourth)", [(p, float(c)) for p, c in crowd_split(path).held_out]
    with open(path / "labels.csv", newline="") as f:
        return path.name, [(path / r["path"], float(r["count"])) for r in csv.DictReader(f)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", action="append", type=Path, help="crowd weights (default: the shipped ones)")
    parser.add_argument("--data", action="append", required=True, help="FOLDER or FOLDER:held-out")
    args = parser.parse_args()

    heads = {str(w): crowd.load_model(Path(w)) for w in args.weights or [crowd.WEIGHTS]}
    print("| weights | data | photos | MAE | RMSE | photos < 100 people | MAE there | s / photo |")
    print("|---|---|---|---|---|---|---|---|")
    for spec in args.data:
        name, items = items_of(spec)
        maps = []
        started = time.perf_counter()
        for path, _ in items:
            maps.append(crowd.trunk_features(np.asarray(crowd.scaled(read_image(path)))))
        trunk_seconds = (time.perf_counter() - started) / len(items)
        truth = np.array([c for _, c in items])
        small = truth < 100
        for weights, head in heads.items():
            error = np.array([crowd.density_of(m, head).sum() for m in maps]) - truth
            print(
                f"| {Path(weights).name} | {name} | {len(items)} | {np.abs(error).mean():.2f} | "
                f"{np.sqrt((error**2).mean()):.2f} | {int(small.sum())} | "
                f"{np.abs(error[small]).mean() if small.any() else float('nan'):.2f} | {trunk_seconds:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
