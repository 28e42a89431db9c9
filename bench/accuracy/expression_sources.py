"""Expression accuracy of the specialist's path (specialist/measure.expression: the face crop, grey 48x48, the colour
or grey network) on each face source, one of them never trained on:

  RAF-DB held-out fifth (faces/splits.py)   colour, web photos, the colour network's own source (development)
  FER2013 PublicTest                         grey 48 px, the grey network's own source (development)
  CK+48 (--ckplus DIR)                       grey 48 px posed faces from CK+ sequences, a source no model here saw

CK+48 is the `CK+48/<expression>/*.png` folder of github WuJie1010/Facial-Expression-Recognition.Pytorch (981 faces
of 123 people, the last three frames of each sequence); its 54 "contempt" faces are left out (not one of the seven
classes). --colour / --grey measure other weight files in the shipped ones' place.
Run: python -m bench.accuracy.expression_sources --ckplus DIR/CK+48 [--colour FILE] [--grey FILE]
"""

from __future__ import annotations

import argparse
import csv
from collections import Counter
from pathlib import Path

from bench.paths import SHARED
from facellm.faces import expression, splits
from facellm.images import read_image
from facellm.specialist import measure

CKPLUS_NAMES = {
    "anger": "angry",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happy",
    "sadness": "sad",
    "surprise": "surprise",
}


def rafdb_held_out() -> list[tuple[Path, str]]:
    return splits.expression(SHARED / "data" / "rafdb").held_out


def fer_public_test() -> list[tuple[Path, str]]:
    folder = SHARED / "data" / "fer2013"
    with open(folder / "labels.csv", newline="", encoding="utf-8") as f:
        return [(folder / r["path"], r["expression"]) for r in csv.DictReader(f) if r["usage"] == "PublicTest"]


def ckplus(folder: Path) -> list[tuple[Path, str]]:
    return [(p, CKPLUS_NAMES[p.parent.name]) for p in sorted(folder.glob("*/*.png")) if p.parent.name in CKPLUS_NAMES]


def accuracy(items: list[tuple[Path, str]]) -> tuple[float, dict[str, float]]:
    """Overall and per-expression accuracy of the likeliest expression."""
    right, seen = Counter(), Counter()
    for path, truth in items:
        probabilities = measure.expression(read_image(path))
        seen[truth] += 1
        right[truth] += max(probabilities, key=probabilities.__getitem__) == truth
    return 100 * sum(right.values()) / len(items), {k: round(100 * right[k] / seen[k]) for k in sorted(seen)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ckplus", type=Path, help="the CK+48 folder (one folder of PNG faces per expression)")
    parser.add_argument("--colour", type=Path, help="weights in place of the shipped colour network")
    parser.add_argument("--grey", type=Path, help="weights in place of the shipped grey network")
    args = parser.parse_args()
    expression.RAFDB_WEIGHTS = args.colour or expression.RAFDB_WEIGHTS
    expression.WEIGHTS = args.grey or expression.WEIGHTS
    sources = {"RAF-DB held-out fifth": rafdb_held_out(), "FER2013 PublicTest": fer_public_test()}
    if args.ckplus:
        sources["CK+48 (never trained on)"] = ckplus(args.ckplus)
    print(f"colour network {expression.RAFDB_WEIGHTS.name}, grey network {expression.WEIGHTS.name}")
    print("| source | faces | accuracy | per expression |\n|---|---|---|---|")
    for name, items in sources.items():
        overall, per_class = accuracy(items)
        print(f"| {name} | {len(items)} | {overall:.1f}% | {per_class} |", flush=True)


if __name__ == "__main__":
    main()
