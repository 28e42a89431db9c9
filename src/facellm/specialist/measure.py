"""Per-image measurements for the specialist's answers, each image measured once per question.

`each(kind, images)` measures every image of a question: in this process, or, when the specialist's worker pool is
already running (an eval run, the server) and there are several images, spread over its processes, so a question
about 4-6 images takes about half the time on 2 cores. A one-off `ask` does not start the pool for one question.
A measurement that fails for a user-facing reason (no face, research weights off) comes back as that error.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from functools import cache
from math import erf, sqrt

import numpy as np
from PIL import Image

from facellm.errors import FaceLLMError, ModelLoadError, NoFaceError
from facellm.faces import attributes as model
from facellm.faces.classifier import predict
from facellm.faces.descriptor_net import describe_chips
from facellm.faces.detect import Box, detect_faces, faint_face
from facellm.faces.embed import aligned_chip, prepared_face
from facellm.faces.expression import predict as predict_expression
from facellm.faces.geometry import Pose, landmarks
from facellm.faces.pose import WEIGHTS as POSE_WEIGHTS
from facellm.faces.pose import predict as head_pose
from facellm.parallel import running_pool

# Face detection for answers, cheapest first: HOG at 320 px (about 20 ms; finds large frontal faces), then HOG and
# one CNN pass at half size on the image at 400 px, then the same at full size for large photos with small faces.
# On the 97 held-out AFLW2000 faces this found every face in at most 0.45 s (the "auto" cascade: up to 2.4 s); on
# FairFace val 1-300 and LFW fold-1 pairs the answers' accuracy was the same as with "auto"
# (docs/benchmarks.md, "The specialist on FaceXBench's own question forms").

SEARCH_SIDES = (320, 400)
FACE_CROP = 128  # px; a picture no larger is taken as a face crop (TinyFace: 20-30 px, LFW: 90 px) when none is found


def largest_face(image: Image.Image, fallback: bool = False) -> Box | None:
    """The largest face's box, or None (`fallback`: the whole image when no face is found)."""

    boxes = detect_faces(image, "hog", max_side=SEARCH_SIDES[0]) or detect_faces(
        image, "quick", max_side=SEARCH_SIDES[1]
    )
    if not boxes and max(image.size) > SEARCH_SIDES[1]:
        boxes = detect_faces(image, "quick")
    if not boxes and fallback:
        return Box(0, 0, image.width, image.height, 0.0, "whole-image")
    return boxes[0] if boxes else None


def attributes(image: Image.Image) -> dict[str, dict[str, float]]:
    """FairFace age, gender and race probabilities of the largest face (the whole picture when none is found)."""

    return vars(model.predict_chips([attribute_chip(image)])[0])


def attribute_chip(image: Image.Image) -> np.ndarray:
    """The largest face's chip as the attribute model reads it (the whole picture when no face is found)."""
    return model.features(image, largest_face(image, fallback=True)).chip


def attributes_of(images: list[Image.Image]) -> list:
    """`attributes` of every image, all images' chips read in one pass of the network; a user-facing failure is
    returned in the image's place."""
    chips = each("attribute_chip", images)
    found = [chip for chip in chips if not isinstance(chip, FaceLLMError)]
    if not found:
        return chips
    predictions = iter(model.predict_chips(found))
    return [chip if isinstance(chip, FaceLLMError) else vars(next(predictions)) for chip in chips]


def expression(image: Image.Image, box: Box | None = None) -> dict[str, float]:
    """The 7 basic expressions' probabilities for the largest face, or for `box` when it is already known (pictures
    of 128 px or less are taken as face crops, as the FER2013 and RAF-DB models were trained on)."""

    if min(image.size) <= 128:
        return predict_expression(image, None)
    return predict_expression(image, box or largest_face(image))


def face_chip(image: Image.Image) -> np.ndarray:
    """The largest face's aligned 150 px chip for its identity descriptor. Where no detector finds a face, the best
    faint HOG candidate stands in (profiles: `detect.faint_face`), then, for pictures of FACE_CROP px or less, the
    whole picture; `NoFaceError` when none of these applies. Large photos are searched as the other answers search
    them (`largest_face`), not at full size (16 s for a 1,613 x 1,903 profile)."""

    if max(image.size) > SEARCH_SIDES[1]:
        box = largest_face(image)
    else:
        try:
            return aligned_chip(
                *prepared_face(image, whole_image_fallback=max(image.size) <= FACE_CROP, detector="quick")
            )
        except NoFaceError:
            box = None
    box = box or faint_face(image)
    if box is None:
        raise NoFaceError("no face found in the image", "pass an image that shows a face")
    return aligned_chip(image, box)


def whole_picture(image: Image.Image) -> Box:
    """The whole picture as a face's box: the best guess where no detector finds a face."""
    return Box(0, 0, image.width, image.height, 0.0, "whole-image")


def guessed_chip(image: Image.Image) -> np.ndarray:
    """A chip where no face is found: the whole picture aligned and read as the face (a guess)."""
    return aligned_chip(image, whole_picture(image))


def descriptors(kind: str, images: list[Image.Image]) -> list:
    """Identity descriptors of every image from its `kind` of chip ("face_chip" or "guessed_chip"): the mean of the
    chip's and its mirror image's, all images' chips described in one pass of the network (per chip 6.8 ms in a
    batch of 10 against 12 ms in a face's pair at two threads; 10.7 against 16 at one); a user-facing failure is
    returned in the image's place."""
    chips = each(kind, images)
    found = [chip for chip in chips if not isinstance(chip, FaceLLMError)]
    if not found:
        return chips
    described = describe_chips([*found, *(np.ascontiguousarray(chip[:, ::-1]) for chip in found)])
    vectors = iter((described[: len(found)] + described[len(found) :]) / 2)
    return [chip if isinstance(chip, FaceLLMError) else next(vectors) for chip in chips]


def guessed_pose(image: Image.Image) -> Pose:
    """A head pose where no face is found: the whole picture's landmarks and pose (method "guess": far less sure)."""
    box = whole_picture(image)
    points = landmarks(np.asarray(image.convert("RGB")), box)
    found = head_pose(image, box, points=points) if len(points) == 68 else Pose(0.0, 0.0, 0.0, "frontal", "guess")
    return replace(found, method="guess")


GUESS_SPREAD = 3.0  # a guessed pose's error taken as this many times the pose model's


def pose_spread_of(pose: Pose) -> dict[str, float]:
    """The error per axis a pose is weighed with: the learned model's, solvePnP's 15 degrees, or a guess's wider one."""
    if pose.method == "learned":
        return pose_spread(_yaw_band(pose.yaw))
    if pose.method == "guess":
        return {axis: GUESS_SPREAD * error for axis, error in pose_spread().items()}
    return dict.fromkeys(("yaw", "pitch", "roll"), 15.0)


def pose(image: Image.Image) -> Pose | None:
    """The largest face's head pose, or None when no face is found."""

    box = largest_face(image)
    if box is None:
        return None
    points = landmarks(np.asarray(image.convert("RGB")), box)
    if len(points) != 68:
        raise ModelLoadError("head pose needs the 68-point landmark model, and FACELLM_LANDMARKS=5 is set")
    return head_pose(image, box, points=points)


@cache
def pose_spread(band: str | None = None) -> dict[str, float]:
    """Standard deviation of the pose model's error per axis (1.25 x its 5-fold mean absolute error): over all its
    held-out faces, or over those whose yaw lies in `band` (the card's "0-30", "30-60", "60-99"; the error grows
    threefold from frontal faces to profiles)."""
    card = json.loads(POSE_WEIGHTS.with_suffix(".json").read_text(encoding="utf-8"))
    errors = card["mae_5fold_by_true_yaw"][band] if band else card["mae_5fold_degrees"]
    return {a: 1.25 * errors[a] for a in ("yaw", "pitch", "roll")}


def _yaw_band(yaw: float) -> str:
    """The pose card's error band of a measured yaw."""
    return "0-30" if abs(yaw) < 30 else "30-60" if abs(yaw) < 60 else "60-99"


def in_range(angle: float, spread: float, low: float, high: float) -> float:
    """Probability that the true angle lies in [low, high), the measurement's error being normal."""

    def below(x: float) -> float:
        return 0.5 * (1 + erf((x - angle) / (spread * sqrt(2))))

    return below(high) - below(low)


def region_chance(pose: Pose, region: tuple, spread: dict[str, float] | None = None) -> float:
    """Probability that the true pose lies in `region` (specialist/reading.Region: disjoint boxes of per-axis
    ranges), given the measured `pose` and the pose model's error per axis."""
    spread = spread or pose_spread_of(pose)
    total = 0.0
    for box in region:
        p = 1.0
        for axis, (low, high) in box:
            p *= in_range(getattr(pose, axis), spread[axis], low, high)
        total += p
    return min(1.0, total)


def attack(image: Image.Image) -> float:

    return predict(image, task="liveness")["attack"]


def fake(image: Image.Image) -> float:

    return predict(image, task="synthetic")["fake"]


KINDS = {
    f.__name__: f
    for f in (attributes, attribute_chip, expression, face_chip, guessed_chip, pose, guessed_pose, attack, fake)
}


def _one(job: tuple[str, Image.Image, dict[str, str]]):
    """One image's measurement (top level, so the worker processes can run it) under the caller's FACELLM_*
    settings (a worker was started earlier, perhaps before they changed); a user-facing error is returned."""
    kind, image, settings = job
    for name in [n for n in os.environ if n.startswith("FACELLM_") and n not in settings]:
        del os.environ[name]
    os.environ.update(settings)
    try:
        return KINDS[kind](image)
    except FaceLLMError as error:
        return error


def each(kind: str, images: list[Image.Image]) -> list:
    """`kind`'s measurement of every image, in order; a user-facing failure is returned in the image's place."""

    settings = {name: value for name, value in os.environ.items() if name.startswith("FACELLM_")}
    jobs = [(kind, image, settings) for image in images]
    pool = running_pool()
    if len(jobs) > 1 and pool is not None:
        return list(pool.map(_one, jobs))
    return [_one(job) for job in jobs]


def first_failure(results: list) -> tuple[int, FaceLLMError] | None:
    """(image number, error) of the first image whose measurement failed."""
    return next(((k, r) for k, r in enumerate(results, 1) if isinstance(r, FaceLLMError)), None)
