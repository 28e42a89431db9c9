"""LFW verification accuracy on the 90 px tight crops in ../shared/data/lfw, ours vs a plain dlib pipeline.

Both use dlib's ResNet descriptor. The plain pipeline is what most scripts do: HOG detection with 2x upsampling,
68-point alignment, the fixed 0.6 threshold (a pair whose face is not found counts as wrong). Ours (`image_descriptor`)
pads the crop by 20% with its edge pixels, upscales it to 200 px, falls back from HOG to the CNN detector (and to the
whole crop), averages the descriptors of the aligned face and its mirror image, and picks the threshold on the other
folds of the pair file (10-fold style over the folds given); "ours, whitened" also learns a within-person whitening
of the descriptors on those folds (what `facellm verify --pairs` reports). Printed: accuracy of all from one run.

Run: python -m bench.accuracy.lfw_verification [--jitters 0] [--workers 0]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image

from bench.paths import SHARED
from facellm.faces.dlib_models import face_encoder, hog_detector, landmark_predictor
from facellm.faces.embed import descriptors_of, evaluate_pairs, read_pairs

LFW = SHARED / "data" / "lfw"


def plain_descriptor(path: Path):
    rgb = np.asarray(Image.open(path).convert("RGB"))
    faces = hog_detector()(rgb, 2)
    if not faces:
        return None
    shape = landmark_predictor()(rgb, faces[0])
    return np.array(face_encoder().compute_face_descriptor(rgb, shape))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jitters", type=int, default=0)
    parser.add_argument("--workers", type=int, default=0, help="processes for ours (the plain loop runs in one)")
    args = parser.parse_args()
    pairs = read_pairs(LFW / "pairs.txt", LFW / "images")
    paths = sorted({p for _, a, b, _ in pairs for p in (a, b)})
    started = time.perf_counter()
    ours, skipped = descriptors_of(paths, args.jitters, args.workers)
    assert not skipped, skipped
    ours_seconds = time.perf_counter() - started
    started = time.perf_counter()
    plain = {p: plain_descriptor(p) for p in paths}
    plain_seconds = time.perf_counter() - started

    whitened = evaluate_pairs(pairs, ours)
    threshold_only = evaluate_pairs(pairs, ours, whiten=False)
    plain_correct = [
        plain[a] is not None and plain[b] is not None and (np.linalg.norm(plain[a] - plain[b]) < 0.6) == s
        for _, a, b, s in pairs
    ]
    missed = sum(v is None for v in plain.values())
    print(f"{len(pairs)} pairs in {len({f for f, *_ in pairs})} folds, {len(paths)} images (90 px crops)")
    for name, scored in (("ours, whitened", whitened), ("ours, threshold only", threshold_only)):
        print(
            f"{name}: {100 * scored.accuracy:.2f}% (folds {[round(100 * a, 1) for a in scored.fold_accuracies]}), "
            f"thresholds {[round(t, 3) for t in scored.thresholds]}, shrinkage {scored.shrinks}"
        )
    print(f"ours: {len(paths) / ours_seconds:.1f} images/s ({args.jitters} jitters, {args.workers or 'all'} workers)")
    print(
        f"plain: {100 * np.mean(plain_correct):.2f}% with threshold 0.6; HOG x2 found no face in {missed} images; "
        f"{len(paths) / plain_seconds:.1f} images/s"
    )


if __name__ == "__main__":
    main()
