"""Frontal-profile verification on CFP (Sengupta et al., WACV 2016) by its own protocol, splits 1-5 only.

CFP's protocol has 10 splits of 350 same-person and 350 different-person frontal-profile pairs (FP; FF for
frontal-frontal). Splits 6-10 and their identities (251-500) are reserved for measuring other work and are refused
here. Each of splits 1-5 is scored with a rule learnt on the other four (facellm.faces.embed.evaluate_pairs: a
distance threshold, with `whitened` also a within-person whitening of the descriptors learnt from the other splits'
same-person pairs, i.e. a pose-aware metric on top of dlib's descriptor).

Face search:
  answers   what the specialist's answers use (measure.descriptor: HOG, then the CNN detector at half size; pictures
            of 128 px or less read whole): a picture with no face found gets no descriptor and its pairs count as
            wrong
  fallback  the same search, then the whole picture when no face is found (CFP's pictures are face crops)

Data: CFP's folder (Data/Images, Protocol/Split) as in github sburrel/AIDL2019_PROJECT_SBD `dataset-cfp/`.
Run: python -m bench.accuracy.cfp_verification --cfp DIR [--protocol FP|FF]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from facellm.faces.embed import evaluate_pairs

SPLITS = range(1, 6)  # 6-10 are reserved


def pairs_of(cfp: Path, protocol: str) -> list[tuple[int, Path, Path, bool]]:
    """(split, first image, second image, same person) for every pair of splits 1-5."""
    lists = {
        kind: {
            int(n): cfp / p
            for n, p in (
                line.split()
                for line in (cfp / "Protocol" / f"image_list_{kind}.txt").read_text().splitlines()
                if line.strip()
            )
        }
        for kind in ("F", "P")
    }
    second = lists["P" if protocol == "FP" else "F"]
    pairs = []
    for split in SPLITS:
        for kind in ("same", "diff"):
            for line in (cfp / "Protocol" / "Split" / protocol / f"{split:02d}" / f"{kind}.txt").read_text().split():
                a, b = (int(v) for v in line.split(","))
                pairs.append((split, lists["F"][a], second[b], kind == "same"))
    return pairs


def _describe(path: str) -> tuple[np.ndarray | None, np.ndarray, float]:
    """(the answers' descriptor or None when they find no face, the descriptor with the whole-picture fallback,
    seconds the answers' search and descriptor took)."""
    from facellm.errors import NoFaceError
    from facellm.faces import image_descriptor
    from facellm.images import read_image
    from facellm.specialist import measure

    image = read_image(path)
    started = time.perf_counter()
    try:
        found = measure.descriptor(image)
    except NoFaceError:
        found = None
    seconds = time.perf_counter() - started
    fallback = found if found is not None else image_descriptor(image, whole_image_fallback=True, detector="quick")[0]
    return found, fallback, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cfp", type=Path, required=True)
    parser.add_argument("--protocol", choices=("FP", "FF"), default="FP")
    args = parser.parse_args()
    from facellm.parallel import map_over_cores

    pairs = pairs_of(args.cfp, args.protocol)
    images = sorted({str(p) for _, a, b, _ in pairs for p in (a, b)})
    print(f"{len(pairs)} {args.protocol} pairs of splits 1-5 over {len(images)} images")
    rows = map_over_cores(_describe, images, 0, chunksize=8)
    seconds = [s for *_, s in rows]
    print(f"face search and descriptor: {np.mean(seconds):.3f} s per image on average, {np.max(seconds):.2f} s at most")
    print("| face search | no face found | plain distance | whitened (pose-aware) |\n|---|---|---|---|")
    for method, column in (("answers", 0), ("fallback", 1)):
        found = {Path(p): row[column] for p, row in zip(images, rows, strict=True) if row[column] is not None}
        usable = [pair for pair in pairs if pair[1] in found and pair[2] in found]
        results = []
        for whiten in (False, True):
            result = evaluate_pairs(usable, found, whiten=whiten)
            per_split = []  # a pair that cannot be scored counts as wrong
            for split, accuracy in zip(sorted({s for s, *_ in usable}), result.fold_accuracies, strict=True):
                scored = sum(1 for s, *_ in usable if s == split)
                per_split.append(accuracy * scored / sum(1 for s, *_ in pairs if s == split))
            results.append(f"{100 * np.mean(per_split):.2f} +- {100 * np.std(per_split):.2f}")
        print(
            f"| {method} | {len(images) - len(found)} images ({len(pairs) - len(usable)} pairs) | {results[0]} | "
            f"{results[1]} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
