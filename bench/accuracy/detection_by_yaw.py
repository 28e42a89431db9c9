"""Faces at any yaw: the share of AFLW2000-3D faces (../shared/data/aflw2000, 450 px) a detector finds, per 15-degree
bin of the true |yaw|, for dlib's HOG detector alone and for facellm's cascade (HOG, then dlib's CNN detector on a
miss); and whether same-person questions with a profile face get a verdict rather than "cannot measure".

Identity across pose has no labelled pairs in ../shared (AFLW2000's faces are not grouped by person), so the verdict
check pairs each face turned more than 60 degrees with a frontal face of another AFLW2000 image (expected "No"; the
images are of different people, bar rare repeats) and with its own mirror image (the other profile of the same
face; expected "Yes"). Run: python -m bench.accuracy.detection_by_yaw
"""

from __future__ import annotations

import csv
import time
from collections import defaultdict

import numpy as np
from PIL import Image, ImageOps

from bench.paths import SHARED
from facellm.faces import detect_faces
from facellm.faces.dlib_models import hog_detector
from facellm.specialist import answer

AFLW = SHARED / "data" / "aflw2000"
BINS = (0, 15, 30, 45, 60, 75, 90)
SAME = "Are these two images of the same person?\n(A) Yes\n(B) No"


def yaw_bin(yaw: float) -> str:
    low = max(b for b in BINS if b <= min(abs(yaw), 90))
    return f"{low}-{low + 15}" if low < 90 else "90+"


def main() -> None:
    with open(AFLW / "labels.csv", newline="") as f:
        faces = [(AFLW / r["file"], float(r["yaw"])) for r in csv.DictReader(f)]
    found: dict = defaultdict(lambda: defaultdict(int))
    seconds = defaultdict(float)
    for path, yaw in faces:
        image = Image.open(path).convert("RGB")
        row = found[yaw_bin(yaw)]
        row["faces"] += 1
        started = time.perf_counter()
        row["hog"] += bool(hog_detector()(np.asarray(image), 0))
        seconds["hog"] += time.perf_counter() - started
        started = time.perf_counter()
        row["cascade"] += bool(detect_faces(image))
        seconds["cascade"] += time.perf_counter() - started
    print(f"{len(faces)} AFLW2000-3D faces: share found per true |yaw| bin, HOG alone / facellm's cascade")
    for name in sorted(found, key=lambda b: int(b.rstrip("+").split("-")[0])):
        row = found[name]
        print(
            f"  {name:>6} degrees ({row['faces']:3d} faces): {100 * row['hog'] / row['faces']:5.1f}% / "
            f"{100 * row['cascade'] / row['faces']:5.1f}%"
        )
    print(
        f"  time per image: HOG {1000 * seconds['hog'] / len(faces):.0f} ms, cascade "
        f"{1000 * seconds['cascade'] / len(faces):.0f} ms"
    )
    profiles = [(p, y) for p, y in faces if abs(y) > 60]
    frontal = [p for p, y in faces if abs(y) < 15]
    verdicts = defaultdict(int)
    for (path, _), other in zip(profiles, frontal[::-1]):
        face = Image.open(path).convert("RGB")
        for kind, pair in (
            ("other person", [Image.open(other).convert("RGB"), face]),
            ("own mirror", [face, ImageOps.mirror(face)]),
        ):
            said = answer(pair, SAME)
            verdicts[kind, said[:1]] += 1
    for kind, expected in (("other person", "B"), ("own mirror", "A")):
        total = sum(n for (k, _), n in verdicts.items() if k == kind)
        print(
            f"profile (|yaw| > 60) with {kind}: {total} pairs, {verdicts[kind, expected]} answered as expected, "
            f"{total - verdicts[kind, 'A'] - verdicts[kind, 'B']} without a Yes/No verdict"
        )


if __name__ == "__main__":
    main()
