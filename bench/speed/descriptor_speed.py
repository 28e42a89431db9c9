"""dlib's face descriptor network: dlib's own runner (the baseline) vs the same weights run in torch.

On aligned 150 px chips of FairFace val faces: milliseconds per chip for dlib's compute_face_descriptor, for the
torch copy one chip at a time and in batches, on one thread (as each specialist worker runs it) and on all cores;
and the largest difference between the two sides' descriptors.
Run: python -m bench.speed.descriptor_speed [--chips 64]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from PIL import Image

from bench.paths import SHARED
from facellm.faces.descriptor_net import describe_chips
from facellm.faces.detect import detect_faces
from facellm.faces.dlib_models import face_encoder
from facellm.faces.embed import aligned_chip

VAL = SHARED / "data" / "fairface" / "fairface_img_margin025" / "val"


def timed(function, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chips", type=int, default=64)
    args = parser.parse_args()
    chips = []
    for path in sorted(VAL.glob("*.jpg"), key=lambda p: int(p.stem)):
        image = Image.open(path).convert("RGB")
        chips.append(aligned_chip(image, detect_faces(image, fallback=True)[0]))
        if len(chips) == args.chips:
            break
    encoder = face_encoder()
    reference = np.array([encoder.compute_face_descriptor(chip, 0) for chip in chips])
    print(f"{len(chips)} chips; largest |torch - dlib| = {np.abs(describe_chips(chips) - reference).max():.1e}")
    per_chip = 1000 / len(chips)
    dlib_ms = timed(lambda: [encoder.compute_face_descriptor(chip, 0) for chip in chips]) * per_chip
    print(f"| dlib compute_face_descriptor, one chip per call (baseline) | {dlib_ms:.1f} |")
    for threads in (1, os.cpu_count() or 1):
        torch.set_num_threads(threads)
        for batch in (1, 2, 16):
            ms = timed(lambda b=batch: [describe_chips(chips[i : i + b]) for i in range(0, len(chips), b)]) * per_chip
            print(f"| torch, {threads} thread(s), {batch} chip(s) per call | {ms:.1f} | {dlib_ms / ms:.1f}x |")


if __name__ == "__main__":
    main()
