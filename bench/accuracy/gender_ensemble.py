"""Gender on FairFace val 1-2500: the FairFace attribute model alone, CelebA's "Male" attribute alone, and their mean
(a fixed rule: nothing is fitted on these faces).

Neither model trained on FairFace val; the FairFace model trained on FairFace train 1-16000, the CelebA model on
CelebA images 1-9000. Both read the largest face the specialist's answers find (measure.largest_face), the whole
picture when none is found.
FairFace val 2501 and above are reserved for measurements made elsewhere: this bench refuses them.
Run: python -m bench.accuracy.gender_ensemble [--first 1 --last 2500] [--fairface DIR --labels CSV]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from bench.paths import SHARED

FAIRFACE = SHARED / "data" / "fairface"
DEVELOPMENT_LAST = 2500  # FairFace val 1-2500 are the development part


def _both(path: str) -> tuple[float, float]:
    from facellm.faces import attributes, celeb_attributes
    from facellm.images import read_image
    from facellm.specialist.measure import largest_face

    image = read_image(path)
    box = largest_face(image, fallback=True)
    fairface = attributes.predict(image, box).gender["Male"]
    celeb = celeb_attributes.predict(image, celeb_attributes.face_box(image))["Male"]
    return fairface, celeb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--first", type=int, default=1)
    parser.add_argument("--last", type=int, default=2500)
    parser.add_argument(
        "--fairface",
        type=Path,
        default=FAIRFACE / "fairface_img_margin025",
        help="folder holding val/N.jpg (default: ../shared's FairFace, val 1-2500)",
    )
    parser.add_argument("--labels", type=Path, default=FAIRFACE / "fairface_label_val.csv")
    args = parser.parse_args()
    if not 1 <= args.first <= args.last <= DEVELOPMENT_LAST:
        parser.error(f"FairFace val {DEVELOPMENT_LAST + 1} and above are reserved; use --first/--last within 1-2500")
    from facellm.parallel import map_over_cores

    with open(args.labels, newline="") as f:
        rows = list(csv.DictReader(f))[args.first - 1 : args.last]
    probs = np.array(map_over_cores(_both, [str(args.fairface / r["file"]) for r in rows], 0))
    male = np.array([r["gender"] == "Male" for r in rows])
    races = np.array([r["race"] for r in rows])
    print(f"| model | gender accuracy, FairFace val {args.first}-{args.last} | lowest race group |\n|---|---|---|")
    for name, p in (
        ("FairFace attribute model", probs[:, 0]),
        ("CelebA 'Male'", probs[:, 1]),
        ("mean of the two", probs.mean(axis=1)),
    ):
        right = (p > 0.5) == male
        worst = min((right[races == r].mean(), r) for r in sorted(set(races)))
        print(f"| {name} | {100 * right.mean():.2f} | {worst[1]} {100 * worst[0]:.1f} |")


if __name__ == "__main__":
    main()
