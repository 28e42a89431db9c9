"""Contamination check: benchmark images that also occur in a training set, found by perceptual hash.

FaceLLM trained on FairFace validation images and FaceXBench asks questions about FairFace images too, so a
benchmark score can include images the model has seen. Each image is reduced to a 256-bit perceptual hash (the
16x16 lowest frequencies of the 2-D DCT of a 32x32 grayscale copy, each bit saying whether a coefficient is above
the median). Pairs within `max_distance` differing bits are reported as the same picture.

Why this hash: aligned face crops all look alike at low resolution. On 2,500 FairFace val crops a 64-bit
difference hash put two different people 2 bits apart, while this hash kept every pair of different images at
least 62 bits apart and every re-encoded, resized or brightened copy within 16 bits (measured here, see
docs/benchmarks.md); the default threshold of 32 sits between. Crops shifted by a few pixels are not caught.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from facellm.errors import FaceLLMError, InputError
from facellm.eval.facexbench import load_benchmark
from facellm.files import read_text
from facellm.images import read_image

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}


HASH_WORDS = 4  # 256 bits as four uint64 words


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    matrix = np.cos(np.pi * (2 * np.arange(n)[None, :] + 1) * k / (2 * n)) * np.sqrt(2 / n)
    matrix[0] /= np.sqrt(2)
    return matrix


_DCT32 = _dct_matrix(32)


def perceptual_hash(image: Image.Image) -> np.ndarray:
    """256-bit DCT hash of an image, as four uint64 words."""
    gray = np.asarray(image.convert("L").resize((32, 32), Image.Resampling.LANCZOS), dtype=np.float64)
    low = (_DCT32 @ gray @ _DCT32.T)[:16, :16].flatten()
    bits = low > np.median(low[1:])  # the DC term (overall brightness) does not set the threshold
    return np.packbits(bits).view(">u8").astype(np.uint64)


def hash_distance(hashes: np.ndarray, one: np.ndarray) -> np.ndarray:
    """Differing bits between each row of `hashes` (n x 4) and `one` (4)."""
    return np.bitwise_count(np.bitwise_xor(hashes, one)).sum(axis=-1)


@dataclass
class Match:
    bench_image: str
    train_image: str
    distance: int


def hash_images(paths: Iterable[Path]) -> tuple[list[Path], np.ndarray, list[str]]:
    """Hashes of the readable images and one-line reasons for the unreadable ones (skipped, not fatal)."""
    kept, hashes, skipped = [], [], []
    for path in paths:
        try:
            hashes.append(perceptual_hash(read_image(path)))
            kept.append(path)
        except FaceLLMError as exc:
            skipped.append(str(exc))
    return kept, np.array(hashes, dtype=np.uint64).reshape(-1, HASH_WORDS), skipped


def training_images(train: str | Path, image_root: str | Path | None = None) -> list[Path]:
    """Images of a training set: a folder (searched recursively) or a ShareGPT/LLaVA JSON/JSONL with `image` fields."""
    source = Path(train)
    if source.is_dir():
        return sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    text = read_text(source, "training set", "pass an image folder or a dataset JSON or JSONL file")
    root = Path(image_root) if image_root else source.parent
    try:
        if source.suffix == ".jsonl":
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            records = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"cannot parse {source}: {exc}", "pass a JSON list or JSONL file") from None
    paths: list[Path] = []
    for record in records if isinstance(records, list) else []:
        if not isinstance(record, dict):
            continue
        images = record.get("image") or record.get("images") or []
        for image in [images] if isinstance(images, str) else images:
            paths.append(root / image)
    if not paths:
        raise InputError(f"no image fields in {source}", "records need an `image` (or `images`) field")
    return sorted(set(paths))


def benchmark_images(bench_dir: str | Path) -> list[Path]:
    """Every image a FaceXBench folder's question files reference (that exists)."""

    paths = {p for q in load_benchmark(bench_dir) for p in q.image_paths}
    return sorted(p for p in paths if p.is_file())


def find_overlap(
    bench: list[Path], bench_hashes: np.ndarray, train: list[Path], train_hashes: np.ndarray, max_distance: int = 32
) -> list[Match]:
    """For each benchmark image, its nearest training image when within `max_distance` bits."""
    matches: list[Match] = []
    if len(train_hashes) == 0:
        return matches
    for path, value in zip(bench, bench_hashes):
        distances = hash_distance(train_hashes, value)
        nearest = int(np.argmin(distances))
        if distances[nearest] <= max_distance:
            matches.append(Match(str(path), str(train[nearest]), int(distances[nearest])))
    return matches
