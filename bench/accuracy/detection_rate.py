"""Share of FairFace val images (tight 224 px crops) where a detector finds a face: our cascade vs HOG alone.

Run: python -m bench.accuracy.detection_rate [--images 2500]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

import numpy as np
from PIL import Image

from bench.paths import SHARED
from facellm.faces import detect_faces
from facellm.faces.dlib_models import hog_detector

VAL = SHARED / "data" / "fairface" / "fairface_img_margin025" / "val"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=2500)
    args = parser.parse_args()
    paths = sorted(VAL.glob("*.jpg"), key=lambda p: int(p.stem))[: args.images]
    images = [Image.open(p).convert("RGB") for p in paths]
    started = time.perf_counter()
    by: Counter = Counter()
    for image in images:
        boxes = detect_faces(image)
        by[boxes[0].detector if boxes else "none"] += 1
    ours = time.perf_counter() - started
    started = time.perf_counter()
    hog = sum(bool(hog_detector()(np.asarray(im), 1)) for im in images)
    plain = time.perf_counter() - started
    n = len(images)
    print(f"{n} FairFace val images")
    print(
        f"ours (HOG, then CNN on misses): face found in {100 * (n - by['none']) / n:.2f}% "
        f"({dict(by)}), {1000 * ours / n:.1f} ms/image"
    )
    print(f"HOG alone (upsample 1): {100 * hog / n:.2f}%, {1000 * plain / n:.1f} ms/image")


if __name__ == "__main__":
    main()
