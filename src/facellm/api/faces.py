"""Faces: analysis of an image, and whether two faces show the same person."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from facellm.errors import InputError, NoFaceError
from facellm.faces.analyze import analyze_image
from facellm.faces.crowd import predict as count
from facellm.faces.detect import detect_faces
from facellm.faces.embed import descriptors_of, evaluate_pairs, image_descriptor, read_pairs
from facellm.images import ImageSource, read_image

if TYPE_CHECKING:
    from facellm.faces.analyze import ImageAnalysis


@dataclass(frozen=True)
class Verification:
    """Whether the largest faces of two images show the same person."""

    same_person: bool
    distance: float  # between the two faces' identity descriptors
    threshold: float  # same person below this distance
    faces: tuple[int, int]  # faces found in each image (the largest one is compared)


@dataclass(frozen=True)
class PairsVerification:
    """The LFW pair protocol over a pairs file: each fold scored with a threshold learnt on the other folds."""

    accuracy: float  # percent, over the folds
    pairs: int  # pairs scored
    pairs_skipped: int  # pairs with an image that could not be read or has no face
    fold_accuracies: list[float]  # percent, per fold
    thresholds: list[float]
    shrinks: list[float]  # whitening shrinkage per fold (1.0 = plain distances)
    jitters: int
    skipped: dict[str, str] = field(default_factory=dict)  # image -> why it was skipped


def analyze(
    image: ImageSource,
    *,
    detector: str = "auto",
    attributes: bool = False,
    landmarks: int | None = None,
    count_people: bool = False,
) -> ImageAnalysis:
    """Every face of one image: box, landmarks, head pose, eye and mouth openness, quality; with `attributes`, the
    probabilities of age group, gender, race and expression; with `count_people`, the crowd model's estimate of the
    people in the image (`.people`). `landmarks`: 68 or 5 points (None: FACELLM_LANDMARKS, else 68)."""

    picture = read_image(image)
    found = analyze_image(picture, detector, attributes, landmarks)
    if count_people:
        found.people = count(picture)
    return found


def verify(
    first: ImageSource, second: ImageSource, *, threshold: float = 0.6, jitters: int = 0, landmarks: int | None = None
) -> Verification:
    """Same person or not: the distance between the identity descriptors of each image's largest face."""
    import numpy as np

    if threshold <= 0:
        raise InputError(f"threshold must be above 0, got {threshold}", "use e.g. 0.6")
    pictures = [read_image(image) for image in (first, second)]
    descriptors = []
    for image, picture in zip((first, second), pictures):
        try:
            descriptors.append(image_descriptor(picture, jitters=jitters, points=landmarks)[0])
        except NoFaceError as exc:
            named = f" in {image}" if isinstance(image, str | Path) else " in one of the images"
            raise NoFaceError(f"no face{named}", exc.hint) from None
    gap = float(np.linalg.norm(descriptors[0] - descriptors[1]))
    faces = (len(detect_faces(pictures[0])), len(detect_faces(pictures[1])))
    return Verification(gap < threshold, round(gap, 4), threshold, faces)


def verify_pairs(
    pairs_file: str | Path,
    images_dir: str | Path,
    *,
    jitters: int = 0,
    workers: int = 0,
    landmarks: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PairsVerification:
    """The LFW pair protocol on a pairs file (LFW's pairs.txt format) over the images under `images_dir`; pairs whose
    images cannot be read or show no face are skipped and listed. `progress(done, total)` after each image."""

    pairs = read_pairs(pairs_file, images_dir)
    if not Path(images_dir).is_dir():
        raise InputError(f"image folder {images_dir} not found", "pass the folder that holds the pairs' images")
    paths = sorted({p for _, a, b, _ in pairs for p in (a, b)})
    done = itertools.count(1)
    on_image = (lambda: progress(next(done), len(paths))) if progress else None
    found, skipped = descriptors_of(paths, jitters, workers, on_image, landmarks)
    usable = [p for p in pairs if p[1] in found and p[2] in found]
    if len({fold for fold, *_ in usable}) < 2:
        raise InputError(
            f"only {len(usable)} of {len(pairs)} pairs have both images readable, in fewer than two folds",
            "check that --images is the folder that holds the pairs' images",
        )
    scored = evaluate_pairs(usable, found)
    return PairsVerification(
        accuracy=round(100 * scored.accuracy, 2),
        pairs=len(usable),
        pairs_skipped=len(pairs) - len(usable),
        fold_accuracies=[round(100 * a, 2) for a in scored.fold_accuracies],
        thresholds=[round(t, 4) for t in scored.thresholds],
        shrinks=scored.shrinks,
        jitters=jitters,
        skipped={str(path): why for path, why in skipped.items()},
    )
