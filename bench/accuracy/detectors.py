"""Face detectors side by side: dlib's HOG alone, dlib's cascade (HOG, then its CNN detector), and YuNet alone
(faces/yunet.py), on the development data: the share of faces found and the time per image.

Sets: AFLW2000-3D's development faces (450 px, by true |yaw| in 15-degree bins), FairFace val 1-N (224 px crops) and,
with --cfp, CFP's profile photos of identities 1-250 (splits 1-5; identities 251-500 are reserved and never read).
Run: python -m bench.accuracy.detectors [--fairface 1000] [--cfp DIR]
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from bench.paths import SHARED
from facellm.faces import detect_faces
from facellm.faces.dlib_models import hog_detector

BINS = (0, 15, 30, 45, 60, 75, 90)
DEVELOPMENT_IDENTITIES = range(1, 251)


def dlib_cascade(image: Image.Image) -> bool:
    """facellm's cascade without YuNet (as with FACELLM_RESEARCH_MODELS=0): HOG, then the CNN detector."""
    before = os.environ.get("FACELLM_RESEARCH_MODELS")
    os.environ["FACELLM_RESEARCH_MODELS"] = "0"
    try:
        return bool(detect_faces(image))
    finally:
        if before is None:
            del os.environ["FACELLM_RESEARCH_MODELS"]
        else:
            os.environ["FACELLM_RESEARCH_MODELS"] = before


DETECTORS: dict[str, Callable[[Image.Image], bool]] = {
    "HOG": lambda image: len(hog_detector()(np.asarray(image), 0)) > 0,
    "HOG+CNN": dlib_cascade,
    "YuNet": lambda image: bool(detect_faces(image, "yunet")),
}


def measure(images: list[tuple[Path, str]]) -> tuple[dict, dict]:
    """Faces found per group and detector, and seconds per detector, over (path, group) items."""
    found: dict = defaultdict(lambda: defaultdict(int))
    seconds: dict = defaultdict(float)
    for path, group in images:
        image = Image.open(path).convert("RGB")
        found[group]["images"] += 1
        for name, detector in DETECTORS.items():
            started = time.perf_counter()
            found[group][name] += detector(image)
            seconds[name] += time.perf_counter() - started
    return found, seconds


def report(title: str, images: list[tuple[Path, str]]) -> None:
    found, seconds = measure(images)
    print(f"\n{title}: share of images with a face found ({' / '.join(DETECTORS)}), time per image")
    print("| group | images | " + " | ".join(DETECTORS) + " |\n|---|---|" + "---|" * len(DETECTORS))
    for group in found:
        row = found[group]
        cells = " | ".join(f"{100 * row[name] / row['images']:.1f}%" for name in DETECTORS)
        print(f"| {group} | {row['images']} | {cells} |")
    print("| ms per image | | " + " | ".join(f"{1000 * seconds[n] / len(images):.1f}" for n in DETECTORS) + " |")


def yaw_group(yaw: float) -> str:
    low = max(b for b in BINS if b <= min(abs(yaw), 90))
    return f"|yaw| {low}-{low + 15}" if low < 90 else "|yaw| 90+"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fairface", type=int, default=1000, help="FairFace val images 1-N (N at most 2500)")
    parser.add_argument("--cfp", type=Path, help="CFP's dataset-cfp folder (only identities 1-250 are read)")
    args = parser.parse_args()
    aflw = SHARED / "data" / "aflw2000"
    with open(aflw / "labels.csv", newline="") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: abs(float(r["yaw"])))
    report("AFLW2000-3D development faces", [(aflw / r["file"], yaw_group(float(r["yaw"]))) for r in rows])
    val = SHARED / "data" / "fairface" / "fairface_img_margin025" / "val"
    first = sorted(val.glob("*.jpg"), key=lambda p: int(p.stem))[: min(args.fairface, 2500)]
    report(f"FairFace val 1-{len(first)}", [(path, "all") for path in first])
    if args.cfp:
        profiles = [
            (path, "profile")
            for person in DEVELOPMENT_IDENTITIES
            for path in sorted((args.cfp / "Data" / "Images" / f"{person:03d}" / "profile").glob("*.jpg"))
        ]
        report("CFP profiles, identities 1-250", profiles)


if __name__ == "__main__":
    main()
