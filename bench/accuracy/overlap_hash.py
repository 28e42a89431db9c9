"""How well the contamination check's hash separates copies from different faces, vs a 64-bit difference hash.

On FairFace val crops (aligned faces, which look alike at low resolution) it prints, for our 256-bit DCT hash and
for the common 64-bit dHash baseline: the smallest distance between two different images, and the largest
distance between an image and a re-encoded (150 px, JPEG quality 40), brightened (+15%) or upscaled (448 px) copy.
A hash separates them when the first number is larger than the second.

Run: python -m bench.accuracy.overlap_hash [--images 2500] [--copies 200]
"""

from __future__ import annotations

import argparse
import io

import numpy as np
from PIL import Image, ImageEnhance

from bench.paths import SHARED
from facellm.eval.overlap import hash_distance, perceptual_hash

VAL = SHARED / "data" / "fairface" / "fairface_img_margin025" / "val"


def difference_hash_64(image: Image.Image) -> np.ndarray:
    small = np.asarray(image.convert("L").resize((9, 8), Image.Resampling.LANCZOS), dtype=np.int16)
    return np.packbits((small[:, 1:] > small[:, :-1]).flatten()).view(">u8").astype(np.uint64)


def copies(image: Image.Image) -> list[Image.Image]:
    buffer = io.BytesIO()
    image.resize((150, 150)).save(buffer, "JPEG", quality=40)
    return [Image.open(buffer), ImageEnhance.Brightness(image).enhance(1.15), image.resize((448, 448))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=2500)
    parser.add_argument("--copies", type=int, default=200)
    args = parser.parse_args()
    images = [Image.open(p).convert("RGB") for p in sorted(VAL.glob("*.jpg"))[: args.images]]
    print(f"{len(images)} FairFace val images, copies of the first {args.copies}")
    for name, hasher, bits in (("ours: DCT-256", perceptual_hash, 256), ("baseline: dHash-64", difference_hash_64, 64)):
        hashes = np.stack([hasher(im) for im in images])
        nearest_other = min(int(np.partition(hash_distance(hashes, h), 1)[1]) for h in hashes)
        worst_copy = max(
            int(hash_distance(hashes[i : i + 1], hasher(c))[0]) for i in range(args.copies) for c in copies(images[i])
        )
        verdict = "separates" if nearest_other > worst_copy else "does NOT separate"
        print(
            f"{name:20s} nearest different image {nearest_other:3d}/{bits} bits, "
            f"farthest copy {worst_copy:3d}/{bits} bits: {verdict}"
        )


if __name__ == "__main__":
    main()
