"""Face detection: dlib's HOG detector, then, for the faces HOG misses, YuNet (faces/yunet.py: milliseconds, finds
profiles) where research-only weights are allowed, then dlib's CNN detector. `pose_box` gives a face YuNet sees turned
far the box dlib's CNN detector would give it, for the head-pose model (trained on dlib's boxes).

Tight face crops (FairFace's 224 px, margin 0.25) defeat HOG about a quarter of the time, so a miss is retried with
the CNN detector at half size, at full size, then on a zero-padded copy; measured on FairFace val 1-600 this finds a
face in 98.5% of images at about 29 ms per image on one core. Images smaller than 80 px on their short side are
upsampled first, images larger than 1,600 px are downscaled for detection, and boxes are mapped back. With
`fallback=True` an image where nothing is found gets one whole-image box marked `detector="whole-image"`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from facellm.errors import InputError
from facellm.faces import yunet
from facellm.faces.dlib_models import cnn_detector, hog_detector

if TYPE_CHECKING:
    import dlib


MIN_SIDE = 80
MAX_SIDE = 1600


@dataclass(frozen=True)
class Box:
    left: int
    top: int
    right: int
    bottom: int
    score: float
    detector: str  # "yunet", "yunet-turned", "hog", "cnn", "hog-faint" or "whole-image"

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    def as_dlib(self) -> dlib.rectangle:
        import dlib

        return dlib.rectangle(self.left, self.top, self.right, self.bottom)


DETECTORS = ("auto", "quick", "yunet", "hog", "cnn")


def detect_faces(
    image: Image.Image, detector: str = "auto", fallback: bool = False, max_side: int = MAX_SIDE
) -> list[Box]:
    """Face boxes in image coordinates, largest first. `detector`: auto (HOG, then YuNet, then CNN, each on a miss of
    the one before), quick (the same with CNN at half size only: about 0.3 s on a 640 px scene where auto's full-size
    passes take several), yunet, hog or cnn. Without research-only weights (FACELLM_RESEARCH_MODELS=0) auto and quick
    skip YuNet.
    `max_side`: larger images are searched at this size (a smaller one finds large faces sooner, small ones not)."""
    if detector not in DETECTORS:
        raise InputError(f"unknown face detector {detector!r}", f"use one of {', '.join(DETECTORS)}")
    rgb = np.asarray(image.convert("RGB"))
    height, width = rgb.shape[:2]
    scale = 1.0
    if min(height, width) < MIN_SIDE:
        scale = MIN_SIDE / min(height, width)
    elif max(height, width) > max_side:
        scale = max_side / max(height, width)
    size = (round(width * scale), round(height * scale))
    work = rgb if scale == 1.0 else np.asarray(image.convert("RGB").resize(size, Image.Resampling.BILINEAR))
    boxes = _cascade(work, detector)
    found = [_to_image(box, scale, width, height) for box in boxes]
    if not found and fallback:
        found = [Box(0, 0, width, height, 0.0, "whole-image")]
    return sorted(found, key=lambda b: -b.width * b.height)


COUNT_SIDES = (400, 640)  # px: faces are counted with HOG at the first size at most and YuNet at the second
COUNT_SCORE = 0.85  # YuNet's score from which a face is counted (its 0.6 default counted two dogs' faces and
# background specks of 6 px in dlib's example photos; 3% of development portraits score 0.6-0.85)


def count_faces(image: Image.Image) -> list[Box]:
    """Every face in a picture, for counting people: YuNet's faces scoring COUNT_SCORE or more, or HOG's where it
    finds more (HOG stops the usual cascade at the first faces it finds, so it missed one of three people posing);
    where neither finds one, the quick cascade's faces. On dlib's 9 example group photos and face_recognition's 3
    photos of 2-3 people (50 faces; `python -m bench.accuracy.group_counts`) this count was right on all 12, the quick
    cascade's on 9, the crowd model's on none."""
    hog = detect_faces(image, "hog", max_side=COUNT_SIDES[0])
    found = []
    if yunet.available():
        found = [b for b in detect_faces(image, "yunet", max_side=COUNT_SIDES[1]) if b.score >= COUNT_SCORE]
    return max(hog, found, key=len) or detect_faces(image, "quick", max_side=COUNT_SIDES[0])


FAINT_FLOOR = -1.2  # HOG score floor for `faint_face` (its usual floor is 0)
FAINT_SIDE = (300, 400)  # the picture is searched at a longer side in this range


def faint_face(image: Image.Image) -> Box | None:
    """The best HOG candidate scoring above FAINT_FLOOR, for a picture that should show a face where the detectors
    found none (dlib's HOG model has side-view filters whose profile scores fall below 0: on CFP profiles 1-240 that
    every detector missed, all 19 had a candidate between -1.01 and 0.06; a plain gradient has none)."""
    rgb = np.asarray(image.convert("RGB"))
    longer = max(rgb.shape[:2])
    scale = min(max(1.0, FAINT_SIDE[0] / longer), FAINT_SIDE[1] / longer)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    work = rgb if scale == 1.0 else np.asarray(image.convert("RGB").resize(size, Image.Resampling.BILINEAR))
    rects, scores, _ = hog_detector().run(work, 0, FAINT_FLOOR)
    if not len(scores):
        return None
    r, score = max(zip(rects, scores), key=lambda rs: rs[1])
    return _to_image((r.left(), r.top(), r.right(), r.bottom(), float(score), "hog-faint"), scale, *image.size)


def _cascade(rgb: np.ndarray, detector: str) -> list[tuple]:
    if detector == "yunet":
        return yunet.detect(rgb)
    if detector in ("auto", "quick", "hog"):
        rects, scores, _ = hog_detector().run(rgb, 0, 0.0)
        boxes = [(r.left(), r.top(), r.right(), r.bottom(), float(s), "hog") for r, s in zip(rects, scores)]
        if boxes or detector == "hog":
            return boxes
        if yunet.available():  # what HOG misses (profiles, tight crops), YuNet finds in milliseconds
            found = yunet.detect(rgb)
            if found:
                return found
    half = np.asarray(Image.fromarray(rgb).resize((max(1, rgb.shape[1] // 2), max(1, rgb.shape[0] // 2))))
    passes = [(half, 2.0, 0)]
    if detector != "quick":
        passes += [(rgb, 1.0, 0), (_pad(rgb, 0.3), 1.0, int(0.3 * max(rgb.shape[:2])))]
    for source, factor, pad in passes:
        found = [
            (
                int(d.rect.left() * factor) - pad,
                int(d.rect.top() * factor) - pad,
                int(d.rect.right() * factor) - pad,
                int(d.rect.bottom() * factor) - pad,
                float(d.confidence),
                "cnn",
            )
            for d in cnn_detector()(source, 0)
        ]
        if found:
            return found
    return []


def pose_box(image: Image.Image, box: Box) -> Box:
    """The box to measure a face's pose from: for a face YuNet saw turned far, the box dlib's CNN detector would give
    it, placed from YuNet's landmarks (`yunet.turned_box`), since the pose model was trained on dlib's boxes and the
    box YuNet's faces get elsewhere misplaces a profile; any other box as it is (also when YuNet finds none there)."""
    if box.detector != "yunet-turned":
        return box
    found = yunet.turned_box(np.asarray(image.convert("RGB")), (box.left, box.top, box.right, box.bottom))
    if found is None:
        return box
    left, top, right, bottom = found
    return Box(left, top, right, bottom, box.score, "yunet-turned")


def _pad(rgb: np.ndarray, fraction: float) -> np.ndarray:
    pad = int(fraction * max(rgb.shape[:2]))
    return np.pad(rgb, ((pad, pad), (pad, pad), (0, 0)))


def _to_image(box: tuple, scale: float, width: int, height: int) -> Box:
    left, top, right, bottom, score, name = box

    # Boxes may reach past the image edge (tight crops); landmark and descriptor models expect them unclamped.
    return Box(round(left / scale), round(top / scale), round(right / scale), round(bottom / scale), score, name)
