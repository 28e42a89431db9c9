"""`facellm analyze` throughput on a folder of FairFace val images vs a plain dlib loop, same images, same run.

Baseline: for each image, dlib's HOG detector with one upsampling, 68 landmarks and the 128-D descriptor, in one
process (what a per-image script does). Ours: `facellm analyze FOLDER --json` (detection cascade, landmarks, pose,
openness, quality; one worker process per core), timed end to end including start-up, then again with
`--attributes` (alignment, two descriptors and the attribute network, plus the expression CNN, per face).

Run: python -m bench.speed.analyze_speed [--images 400]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from bench.paths import SHARED
from facellm.faces.dlib_models import face_encoder, hog_detector, landmark_predictor

VAL = SHARED / "data" / "fairface" / "fairface_img_margin025" / "val"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=400)
    args = parser.parse_args()
    paths = sorted(VAL.glob("*.jpg"), key=lambda p: int(p.stem))[: args.images]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for path in paths:
            shutil.copy(path, folder / path.name)
        started = time.perf_counter()
        found = 0
        for path in paths:
            rgb = np.asarray(Image.open(path).convert("RGB"))
            faces = hog_detector()(rgb, 1)
            for face in faces:
                shape = landmark_predictor()(rgb, face)
                face_encoder().compute_face_descriptor(rgb, shape)
            found += bool(faces)
        plain = time.perf_counter() - started
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "facellm.cli", "analyze", str(folder), "--json"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        ours = time.perf_counter() - started
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "facellm.cli", "analyze", str(folder), "--json", "--attributes"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        with_attributes = time.perf_counter() - started
    n = len(paths)
    print(f"{n} FairFace val images on this machine's cores")
    print(f"ours:  facellm analyze (no attributes): {n / ours:.1f} images/s ({ours:.1f} s, start-up included)")
    print(f"ours:  facellm analyze --attributes: {n / with_attributes:.1f} images/s ({with_attributes:.1f} s)")
    print(
        f"plain: dlib HOG(upsample 1) + landmarks + descriptor loop: {n / plain:.1f} images/s, faces found in "
        f"{100 * found / n:.1f}% of images"
    )


if __name__ == "__main__":
    main()
