"""The specialist's answers: for each task a reading names (specialist/reading.py), the face-analysis model that
measures it and how the measurement picks an option (specialist/joint.py weighs every option over the images)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from functools import cache
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from facellm.errors import ModelLoadError, NoFaceError, ResearchModelsOff
from facellm.faces import crowd, detect_faces
from facellm.faces.pose import WEIGHTS
from facellm.specialist import describe, joint, meaning, measure, reading
from facellm.specialist.reading import Reading
from facellm.specialist.topics import AXES, FACE_ATTACK, SYNTHETIC_FACE

if TYPE_CHECKING:
    from facellm.faces.geometry import Pose


__all__ = ["ANSWERS", "FACE_ATTACK", "SYNTHETIC_FACE", "count_bounds", "count_scores", "question_text"]

OPTION_LINE = re.compile(r"^\(([A-Z])\)\s*(.*)$")


def options_of(prompt: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2).strip()) for line in prompt.splitlines() if (m := OPTION_LINE.match(line.strip()))]


def _lettered(read: Reading) -> list[tuple[str, str]]:
    return [(letter, text) for letter, text, _ in read.options]


def _pick(options: list[tuple[str, str]], scores: dict[str, float], what: str) -> str:
    """The option letter with the highest score. A "None of the above" option scores the probability left over
    for what no other option names (scores are probabilities of the options being right)."""
    none = next((letter for letter, text in options if "none of the above" in text.lower()), None)
    listed = sum(scores.get(text, 0.0) for letter, text in options if letter != none)
    scored = [
        (max(0.0, 1.0 - listed) if letter == none else scores.get(text, 0.0), letter, text) for letter, text in options
    ]
    best = max(scored, default=(0.0, "", ""))
    if best[1] == none:
        return f"{none}. {best[2]} (specialist: no listed option fits the measured {what}; {best[0]:.0%} left over)"
    return f"{best[1]}. {best[2]} (specialist: measured {what}, {best[0]:.0%})"


def _decide(read: Reading, worlds, measured: str) -> str:
    """The option most likely true over `worlds` (specialist/joint.py), written "B. text (specialist: ...)"."""
    scores = joint.chances(read, worlds)
    if scores is None:
        return f"cannot measure: the options could not be judged from the measurements; measured {measured}"
    letter = max(scores, key=scores.get)  # ties go to the first option listed
    text = next(text for option, text, _ in read.options if option == letter)
    return f"{letter}. {text} (specialist: measured {measured}; {scores[letter]:.0%})"


def _yes_no(read: Reading, worlds) -> float:
    """P(yes) of an open yes/no question."""
    asked = replace(read, options=(("Y", "yes", meaning.Claim("yes")),))
    return (joint.chances(asked, worlds) or {"Y": 0.0})["Y"]


def _label_distributions(task: str, images: list[Image.Image]) -> list[dict[str, float]]:
    """Per image, the probability of every label of `task` (FairFace age/gender/race, 7 expressions)."""
    found = measure.each("expression" if task == "expression" else "attributes", images)
    if failed := measure.first_failure(found):
        raise failed[1]
    return found if task == "expression" else [f[task] for f in found]


def _labelled(images: list[Image.Image], prompt: str, read: Reading) -> str:
    """Age, gender, race and expression questions on one or several images: every option weighed over the joint
    labels of the images (one measurement per image)."""
    task = read.task
    if not images:
        return f"cannot measure: a {task} question needs an image"
    if task == "expression" and read.target and "contempt" in read.target:
        return "cannot measure: the expression models know 7 basic expressions; 'contempt' is not one of them"
    dists = _label_distributions(task, images)
    top = [max(d, key=d.get) for d in dists]
    measured = ", ".join(f"image {i} {label} {d[label]:.0%}" for i, (label, d) in enumerate(zip(top, dists), 1))
    if len(images) == 1:
        measured = f"{task} {top[0]}, {dists[0][top[0]]:.0%}"
    if read.form == "describe":
        if len(images) == 1:
            return f"The face's {task} is most likely {top[0]} ({dists[0][top[0]]:.0%}; specialist estimate)."
        return f"Most likely {task} per image: {measured} (specialist estimate)."
    worlds = joint.independent(dists, keep=0.99 if len(images) > 3 else 0.999)
    if not read.options and read.form in ("count", "select"):  # open: "How many are women?", "Who is a teenager?"
        inside = [sum(p for label, p in d.items() if (label in read.target) != read.negated) for d in dists]
        chosen = [f"image {i}" for i, p in enumerate(inside, 1) if p >= 0.5]
        found = f"{len(chosen)} of {len(images)}" if read.form == "count" else ", ".join(chosen) or "none"
        named = ("not " if read.negated else "") + " or ".join(sorted(read.target))
        return f"{found} ({named} by the measured {task}: {measured}; specialist estimate)."
    if not read.options:  # an open yes/no question
        p = _yes_no(read, worlds)
        return f"{'Yes' if p >= 0.5 else 'No'} ({p:.0%} by the measured {task}: {measured}; specialist estimate)."
    return _decide(read, worlds, measured)


CROWD = 10  # people; past this many, in scenes, face detection misses most heads (small, turned away, occluded)
FACE_COUNT_SIDE = 400  # px: faces are counted on the picture at this size at most (HOG, then the CNN at half size)


def _face_count(images: list[Image.Image], prompt: str, read: Reading) -> str:
    """People counted, options read by meaning (exact counts, "22 to 26", "more than N", "fewer than N"): the crowd
    model's density count when an option claims a crowd (or, for an open question, when it finds one), else the
    detected faces (searched at FACE_COUNT_SIDE at most: on a 1024 px ShanghaiTech photo this took 2-2.6 s at full
    size, 0.8 s at 640, 0.5 s at 480, 0.3 s at 400)."""

    options = _lettered(read)
    bounds = {text: found for _, text in options if (found := count_bounds(text))}
    claimed = max((low for low, _ in bounds.values()), default=0.0)
    crowd = claimed > CROWD
    people = _crowd_count(images) if crowd or not options else None
    if people is not None and (crowd or people > CROWD):
        count, what = people, "people count by the crowd density model"
    else:
        # For crowd-scale options the HOG pass (tens of ms) decides; the CNN pass is for counting a few faces.
        detector = "hog" if crowd else "quick"
        count = sum(len(detect_faces(image, detector, max_side=FACE_COUNT_SIDE)) for image in images)
        what = "face count"
        if crowd and claimed > 2 * count + 5:
            return (
                f"cannot measure: {count} face(s) detected, but the options count a crowd; the crowd model is "
                "off (FACELLM_RESEARCH_MODELS=0) and face detection misses most heads in dense crowds"
            )
    if not options:
        found = "people estimated" if what != "face count" else "face(s) detected"
        return f"{count:.0f} {found} (specialist measurement)."
    return _pick(options, count_scores(count, bounds), what)


def count_scores(count: float, bounds: dict[str, tuple[float, float]]) -> dict[str, float]:
    """Each count option's score for a measured count: 1 when it allows the count, less the further it is."""
    return {
        text: 1.0 if low <= count <= high else 1.0 / (1 + min(abs(count - low), abs(count - high)))
        for text, (low, high) in bounds.items()
    }


def count_bounds(text: str) -> tuple[float, float] | None:
    """The counts an option allows, as `meaning.parse` reads it: "12" -> (12, 12), "22 to 26" -> (22, 26),
    "more than 50" -> (51, inf), "fewer than 5" -> (0, 4); None when it claims no count."""
    claim = meaning.parse(text, 1)
    if claim.kind == "count":
        return float(claim.value), float(claim.value)
    return claim.value if claim.kind == "range" else None


def _crowd_count(images: list[Image.Image]) -> float | None:
    """The crowd model's count over the images; None when its research-only weights may not be used or are absent."""

    try:
        head = crowd.shipped_model()
    except ModelLoadError:  # ResearchModelsOff is one
        return None
    return sum(crowd.predict(image, head).count for image in images)


SAME_PERSON = 0.6  # dlib's same-person distance (LFW folds choose 0.63 on tight crops; 0.6 is kept as documented)
SAME_PERSON_SPREAD = 0.02  # logistic width of P(same person) around SAME_PERSON (0.01-0.02 best of 0.001-0.05 on the
# development hr_fr questions of bench/facexbench_forms.py: 86.0 at 0.02, 82.5 at 0.05, 84.0 at 0.001)


def _descriptors(images: list[Image.Image]) -> np.ndarray | str:
    """Each image's largest-face descriptor, or the "cannot measure" answer naming the image without a face."""
    found = measure.each("descriptor", images)
    if failed := measure.first_failure(found):
        number, error = failed
        if isinstance(error, NoFaceError):
            return f"cannot measure: no face was found in image {number}"
        raise error
    return np.stack(found)


def _same_chances(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairwise descriptor distances and P(same person) from them."""
    distances = np.linalg.norm(vectors[:, None] - vectors[None], axis=2)
    return distances, 1 / (1 + np.exp((distances - SAME_PERSON) / SAME_PERSON_SPREAD))


def _same_person(images: list[Image.Image], prompt: str, read: Reading) -> str:
    """Identity questions over 2-6 images in any of their forms (same person yes/no, which two match, which show the
    first image's person, which differ from the one matching pair, how many pairs, how many people): every grouping
    of the images into people weighed by the pairwise same-person probabilities."""
    if len(images) < 2:
        return "cannot measure: identity questions need at least two images"
    vectors = _descriptors(images)
    if isinstance(vectors, str):
        return vectors
    distances, same = _same_chances(vectors)
    n = len(images)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    what = f"identity distances {', '.join(f'{i + 1}-{j + 1} {distances[i, j]:.2f}' for i, j in pairs)}"
    worlds = joint.partitions(same.tolist())
    if read.options:
        return _decide(read, worlds, what)
    if read.form == "yesno":
        a, b = read.target
        verdict = "Same person" if same[a - 1, b - 1] >= 0.5 else "Different people"
        return f"{verdict} (images {a} and {b}; {what})."
    matching = sum(bool(same[i, j] >= 0.5) for i, j in pairs)
    return f"{matching} matching pair(s) ({what})."


def _says_same(text: str) -> bool | None:
    """Whether a two-image option says "same person" (True), "different people" (False) or neither (None)."""
    claim = reading.same_claim(text)
    return {"yes": True, "no": False}.get(claim.kind)


def question_text(prompt: str) -> str:
    """The question itself: the last line that is neither an option, nor the answer-format instruction, nor empty
    (in FaceXBench's in-context setting the task description comes on a line before it)."""
    lines = [line.strip() for line in prompt.splitlines() if line.strip() and not OPTION_LINE.match(line.strip())]
    asked = [line for line in lines if not re.search(r"option letter|^answer\b|step by step", line, re.I)]
    return (asked or lines or [""])[-1]


@cache
def _pose_spread() -> dict[str, float]:
    """Standard deviation of the pose model's error per axis (1.25 x its 5-fold mean absolute error)."""
    import json

    card = json.loads(WEIGHTS.with_suffix(".json").read_text(encoding="utf-8"))
    return {a: 1.25 * card["mae_5fold_degrees"][a] for a in AXES}


def _in_range(angle: float, spread: float, low: float, high: float) -> float:
    """Probability that the true angle lies in [low, high), the measurement's error being normal."""
    from math import erf, sqrt

    def below(x: float) -> float:
        return 0.5 * (1 + erf((x - angle) / (spread * sqrt(2))))

    return below(high) - below(low)


def _poses(images: list[Image.Image]):
    """The largest face's pose per image, or the "cannot measure" answer explaining why not."""
    found = measure.each("pose", images)
    if failed := measure.first_failure(found):
        if isinstance(failed[1], ResearchModelsOff):
            raise failed[1]
        return f"cannot measure: {failed[1].message}"
    missing = next((number for number, p in enumerate(found, 1) if p is None), None)
    return f"cannot measure: no face was found in image {missing}" if missing else found


def angles(pose: Pose) -> str:
    """ "yaw 12, pitch -3, roll 0": whole degrees, never "-0"."""
    return ", ".join(f"{axis} {round(getattr(pose, axis))}" for axis in AXES)


BINS = range(-100, 100, 10)  # FaceXBench's 10-degree bins over -100..100 degrees


def _head_pose(images: list[Image.Image], prompt: str, read: Reading) -> str:
    """Yaw, pitch or roll bins (AFLW2000-3D's convention, as FaceXBench): each option is weighed by the probability
    that the true angle lies in it, given the model's measured error. Several images: which or how many are in the
    named ranges (each image's probability from its own angles), or which pair shares a bin."""
    if not images:
        return "cannot measure: a head-pose question needs an image"
    poses = _poses(images)
    if isinstance(poses, str):
        return poses
    if read.form == "describe":
        return "; ".join(f"image {i}: head {p.label} ({angles(p)} degrees)" for i, p in enumerate(poses, 1))
    spread = _pose_spread() if poses[0].method == "learned" else dict.fromkeys(AXES, 15.0)
    if read.form == "classify":
        (axis,) = read.target
        angle = getattr(poses[0], axis)
        scores = {
            text: _in_range(angle, spread[axis], *claim.value)
            for _, text, claim in read.options
            if claim.kind == "range"
        }
        return _pick(_lettered(read), scores, f"{axis} angle {round(angle) + 0} in")
    named = [a for a in AXES if a in (read.target if read.form == "same" else [a for a, _ in read.target])]
    measured = f"{'/'.join(named)} angles " + ", ".join(
        f"image {i} {'/'.join(str(round(getattr(p, a)) + 0) for a in named)}" for i, p in enumerate(poses, 1)
    )
    if read.form == "same":
        (axis,) = read.target
        dists = [{b: _in_range(getattr(p, axis), spread[axis], b, b + 10) for b in BINS} for p in poses]
        return _decide(read, joint.independent(dists, keep=0.99), measured)
    chances = [float(np.prod([_in_range(getattr(p, a), spread[a], *r) for a, r in read.target])) for p in poses]
    return _decide(read, joint.independent([{True: c, False: 1 - c} for c in chances]), measured)


ATTACK_TYPES = 8  # FaceXBench's WMCA questions name 8 attack types; the liveness model does not tell them apart
BINARY_MODELS = {"attack": ("liveness", "attack"), "fake": ("synthetic", "fake")}  # task -> (model, positive class)


def _binary(images: list[Image.Image], prompt: str, read: Reading) -> str:
    """Attack or fake: the model gives each image a probability; options are judged over the images' joint yes/no.
    Questions about one named attack type take that type as one of ATTACK_TYPES equally likely kinds of attack."""
    task, positive = BINARY_MODELS[read.task]
    if not images:
        return f"cannot measure: a {positive} question needs at least one image"
    probabilities = measure.each(read.task, images)
    if failed := measure.first_failure(probabilities):
        raise failed[1]
    measured = f"{positive} probability " + ", ".join(f"image {i} {p:.0%}" for i, p in enumerate(probabilities, 1))
    if read.form == "types":
        question = question_text(prompt)
        if any(c.kind == "types" for _, _, c in read.options) or not re.search(
            r"\b(of|attack) type \w", question, re.I
        ):
            return f"cannot measure: the {task} model does not tell {positive} types apart; measured {measured}"
        probabilities = [p / ATTACK_TYPES for p in probabilities]
        read = replace(read, asked=meaning.asked_property(question, read.prop))
    if not read.options:
        return "; ".join(f"image {i}: {positive} {p:.0%}" for i, p in enumerate(probabilities, 1)) + (
            " (specialist measurement)"
        )
    worlds = joint.independent([{True: p, False: 1 - p} for p in probabilities])
    if read.target == "identity":  # deepfakes of one person: fake per image x grouping into people
        vectors = _descriptors(images)
        if isinstance(vectors, str):
            return vectors
        people = joint.partitions(_same_chances(vectors)[1].tolist())
        worlds = [(tuple(zip(f, g)), wf * wg) for f, wf in worlds for g, wg in people]
    return _decide(read, worlds, measured)


# task (specialist/topics.py TOPICS) -> the measurement that answers its readings
ANSWERS: dict[str, Callable[[list[Image.Image], str, Reading], str]] = {
    "attack": _binary,
    "fake": _binary,
    "expression": _labelled,
    "identity": _same_person,
    "age": _labelled,
    "gender": _labelled,
    "race": _labelled,
    "headpose": _head_pose,
    "crowd": _face_count,
    "quality": describe.quality,
    "aspect": describe.describe,
}
