"""Head-pose questions answered: yaw, pitch and roll bins (AFLW2000-3D's convention, as FaceXBench writes them),
images in named ranges, pairs sharing a bin, and views in words (specialist/views.py), each option weighed by the
probability that the true angles lie in it given the pose model's measured error."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from PIL import Image

from facellm.errors import ResearchModelsOff
from facellm.specialist import joint, measure
from facellm.specialist.decide import decide, lettered, pick, weighed, written, yes_no
from facellm.specialist.meaning import Claim
from facellm.specialist.reading import Reading
from facellm.specialist.topics import AXES
from facellm.specialist.views import FRONTAL, PROFILE, TILT

if TYPE_CHECKING:
    from facellm.faces.geometry import Pose


def _poses(images: list[Image.Image]):
    """The largest face's pose per image (where no face is found, the whole picture's pose as a guess, weighed with a
    wider error), or the "cannot measure" answer explaining why not."""
    found = measure.each("pose", images)
    missing = [k for k, p in enumerate(found) if p is None]
    if missing:
        guesses = measure.each("guessed_pose", [images[k] for k in missing])
        found = [guesses[missing.index(k)] if k in missing else p for k, p in enumerate(found)]
    if failed := measure.first_failure(found):
        if isinstance(failed[1], ResearchModelsOff):
            raise failed[1]
        return f"cannot measure: {failed[1].message}"
    return found


def _guessed(poses: list[Pose]) -> str:
    """What the answer says about poses guessed without a face ("" when every face was found)."""
    numbers = [str(k) for k, p in enumerate(poses, 1) if p.method == "guess"]
    if not numbers:
        return ""
    return f"; no face found in image {', '.join(numbers)}: the whole picture's pose is a guess, weighed as very unsure"


def angles(pose: Pose) -> str:
    """ "yaw 12, pitch -3, roll 0": whole degrees, never "-0"."""
    return ", ".join(f"{axis} {round(getattr(pose, axis))}" for axis in AXES)


BINS = range(-100, 100, 10)  # FaceXBench's 10-degree bins over -100..100 degrees


SLIGHT = 5.0  # degrees of yaw from which a frontal face's side is named ("slightly turned to the viewer's left")


def direction(pose: Pose) -> str:
    """Where the face points, in words, naming the convention: "turned to the viewer's left (the person's own
    right), tilted up"; "facing the camera" within FRONTAL degrees of yaw and TILT of pitch."""
    parts = []
    viewer, own = ("left", "right") if pose.yaw > 0 else ("right", "left")
    side = f"turned to the viewer's {viewer} (the person's own {own})"
    if abs(pose.yaw) >= FRONTAL:
        parts.append(f"{'in profile' if abs(pose.yaw) >= PROFILE else 'three-quarter'}, {side}")
    elif abs(pose.yaw) >= SLIGHT:
        parts.append(f"facing the camera, slightly {side}")
    if abs(pose.pitch) >= TILT:
        parts.append("looking up" if pose.pitch > 0 else "looking down")
    return ", ".join(parts) or "facing the camera"


def _view_chance(pose: Pose, claim: Claim, spread: dict[str, float]) -> float:
    """P(a view claim holds): the pose's chance of lying in its region (of lying outside it, when negated)."""
    region, denied = claim.value
    p = measure.region_chance(pose, region, spread)
    return 1 - p if denied else p


def _sides(text: str, convention: str) -> str:
    """An alternative's text with the convention named: "left" -> "left (the viewer's left, the person's own right)"."""
    side = next((s for s in ("left", "right") if s in text.lower()), None)
    if side is None:
        return text
    other = "right" if side == "left" else "left"
    if convention == "subject":
        return f"{text} (the person's own {side}, the viewer's {other})"
    return f"{text} (the viewer's {side}, the person's own {other})"


def answer(images: list[Image.Image], prompt: str, reading: Reading) -> str:
    """Yaw, pitch or roll bins (AFLW2000-3D's convention, as FaceXBench): each option is weighed by the probability
    that the true angle lies in it, given the model's measured error. Several images: which or how many are in the
    named ranges or views (each image's probability from its own angles), or which pair shares a bin. Views in
    words ("in profile", "to their left") are yaw/pitch regions (specialist/reading.view_region)."""
    if not images:
        return "cannot measure: a head-pose question needs an image"
    poses = _poses(images)
    if isinstance(poses, str):
        return poses
    if reading.form == "describe":
        return "; ".join(
            f"image {i}: head {p.label}, {direction(p)} ({angles(p)} degrees)" for i, p in enumerate(poses, 1)
        )
    spread = measure.pose_spread_of(poses[0])
    unsure = _guessed(poses)
    if reading.form == "view":
        if reading.alternatives:  # "left or right?": the answer names the convention it is given in
            reading = replace(reading, options=tuple((k, _sides(t, reading.target), c) for k, t, c in reading.options))
        scores = {
            letter: _view_chance(poses[0], claim, spread)
            for letter, _, claim in reading.options
            if claim.kind == "view"
        }
        return written(
            reading, weighed(images, reading, scores), f"head {direction(poses[0])} ({angles(poses[0])}){unsure}"
        )
    if reading.form == "classify":
        (axis,) = reading.target
        angle = getattr(poses[0], axis)
        scores = {
            text: measure.in_range(angle, spread[axis], *claim.value)
            + (measure.in_range(angle, spread[axis], -claim.value[1], -claim.value[0]) if reading.magnitude else 0.0)
            for _, text, claim in reading.options
            if claim.kind == "range"
        }
        return pick(lettered(reading), scores, f"{axis} angle {round(angle) + 0}{unsure}, in")
    if reading.form == "same":
        (axis,) = reading.target
        measured = f"{axis} angles " + ", ".join(
            f"image {i} {round(getattr(p, axis)) + 0}" for i, p in enumerate(poses, 1)
        )
        measured += unsure
        dists = [
            {b: measure.in_range(getattr(p, axis), measure.pose_spread_of(p)[axis], b, b + 10) for b in BINS}
            for p in poses
        ]
        return decide(images, reading, joint.independent(dists, keep=0.99), measured)
    chances = [measure.region_chance(p, reading.target) for p in poses]
    measured = "head " + "; ".join(f"image {i} {direction(p)} ({angles(p)})" for i, p in enumerate(poses, 1)) + unsure
    worlds = joint.independent([{True: c, False: 1 - c} for c in chances])
    if not reading.options:
        p = yes_no(reading, worlds)
        return f"{'Yes' if p >= 0.5 else 'No'} ({p:.0%}; {measured}; specialist estimate)."
    return decide(images, reading, worlds, measured)
