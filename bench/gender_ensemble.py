"""Gender on FairFace val 1-2500: the FairFace attribute model alone, CelebA's "Male" attribute alone, and their mean
(a fixed rule: nothing is fitted on these faces).

Neither model trained on FairFace val; the FairFace model trained on FairFace train 1-16000, the CelebA model on
CelebA images 1-9000. Both read the largest face the specialist's answers find (measure.largest_face), the whole
picture when none is found.
Run: python bench/gender_ensemble.py [--limit 2500]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared"
FAIRFACE = SHARED / "data" / "fairface"


def _both(path: str) -> tuple[float, float]:
    from facellm.faces import attributes, celeb_attributes
    from facellm.images import read_image
    from facellm.specialist.measure import largest_face

    image = read_image(path)
    box = largest_face(image, fallback=True)
    fairface = attributes.predict(attributes.features(image, box)).gender["Male"]
    celeb = celeb_attributes.predict(image, celeb_attributes.face_box(image))["Male"]
    return fairface, celeb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=2500)
    args = parser.parse_args()
    from facellm.parallel import map_over_cores

    with open(FAIRFACE / "fairface_label_val.csv", newline="") as f:
        rows = list(csv.DictReader(f))[: args.limit]
    probs = np.array(map_over_cores(_both, [str(FAIRFACE / "fairface_img_margin025" / r["file"]) for r in rows], 0))
    male = np.array([r["gender"] == "Male" for r in rows])
    races = np.array([r["race"] for r in rows])
    print(f"| model | gender accuracy, FairFace val 1-{len(rows)} | lowest race group |\n|---|---|---|")
    for name, p in (("FairFace attribute model", probs[:, 0]), ("CelebA 'Male'", probs[:, 1]),
                    ("mean of the two", probs.mean(axis=1))):  # fmt: skip
        right = (p > 0.5) == male
        worst = min((right[races == r].mean(), r) for r in sorted(set(races)))
        print(f"| {name} | {100 * right.mean():.2f} | {worst[1]} {100 * worst[0]:.1f} |")


if __name__ == "__main__":
    main()
