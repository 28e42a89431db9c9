"""The specialist's face search (specialist/measure.largest_face and descriptor's "quick" detector) against dlib's
"auto" cascade: answers' accuracy and the slowest image, on development data of ../shared/data.

  FairFace val 1-300    age / gender / race of the attribute model on the box each search finds
  LFW pairs 1-1200:4    same person (distance < 0.6) at full size and shrunk to 20 px
  AFLW2000 held-out     faces found, slowest search (the pose model's unseen fold)

Run: python -m bench.accuracy.specialist_face_search
"""

from __future__ import annotations

import csv
import json
import time

import numpy as np

from bench.paths import SHARED
from facellm.errors import NoFaceError
from facellm.faces import attributes, image_descriptor
from facellm.faces.detect import detect_faces
from facellm.faces.embed import read_pairs
from facellm.faces.pose import WEIGHTS
from facellm.images import read_image
from facellm.labels import normalise
from facellm.specialist import measure

DATA = SHARED / "data"


def timed(function, items):
    """Results of `function` over items, the mean and the slowest seconds per item."""
    results, times = [], []
    for item in items:
        started = time.perf_counter()
        results.append(function(item))
        times.append(time.perf_counter() - started)
    return results, float(np.mean(times)), max(times)


def fairface() -> None:
    folder = DATA / "fairface"
    with open(folder / "fairface_label_val.csv", newline="") as f:
        rows = list(csv.DictReader(f))[:300]
    images = [read_image(folder / "fairface_img_margin025" / r["file"]) for r in rows]
    attributes.predict(images[0])  # the network loaded before timing
    searches = {
        "auto": lambda im: detect_faces(im, "auto", fallback=True)[0],
        "answers": lambda im: measure.largest_face(im, fallback=True),
    }
    for name, search in searches.items():
        found, mean, slowest = timed(lambda im, search=search: attributes.predict(im, search(im)).top(), images)
        right = {a: 100 * np.mean([p[a] == normalise(a, r[a]) for p, r in zip(found, rows)]) for a in found[0]}
        print(
            f"FairFace val 1-300, {name}: "
            + ", ".join(f"{a} {v:.1f}" for a, v in right.items())
            + f"; {mean:.3f} s mean, {slowest:.2f} s slowest"
        )


def lfw() -> None:
    pairs = read_pairs(DATA / "lfw" / "pairs.txt", DATA / "lfw" / "images")[:1200:4]
    for side in (None, 20):
        for detector in ("auto", "quick"):

            def same(pair, side=side, detector=detector):
                _, a, b, truth = pair
                shown = [read_image(p).resize((side, side)) if side else read_image(p) for p in (a, b)]
                try:
                    va, vb = (
                        image_descriptor(im, whole_image_fallback=bool(side), detector=detector)[0] for im in shown
                    )
                except NoFaceError:
                    return None
                return (np.linalg.norm(va - vb) < 0.6) == truth

            found, mean, slowest = timed(same, pairs)
            right = 100 * np.mean([bool(f) for f in found])
            print(
                f"LFW {len(pairs)} pairs at {side or 'full'} px, {detector}: {right:.1f}%, "
                f"{sum(f is None for f in found)} without a face; {mean:.3f} s mean, {slowest:.2f} s slowest"
            )


def aflw() -> None:
    held = json.loads(WEIGHTS.with_suffix(".json").read_text())["held_out_faces"]
    images = [read_image(DATA / "aflw2000" / name) for name in held]
    detect_faces(images[0], "cnn")  # the CNN detector loaded before timing
    searches = {"auto": lambda im: (detect_faces(im, "auto") or [None])[0], "answers": measure.largest_face}
    for name, search in searches.items():
        found, mean, slowest = timed(search, images)
        print(
            f"AFLW2000 held-out ({len(images)}), {name}: {sum(f is not None for f in found)} found; "
            f"{mean:.3f} s mean, {slowest:.2f} s slowest"
        )


if __name__ == "__main__":
    fairface()
    lfw()
    aflw()
