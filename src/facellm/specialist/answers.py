"""The specialist's answers: for each task a reading names (specialist/reading.py), the face-analysis model that
measures it and how the measurement picks an option (specialist/joint.py weighs every option over the images)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from math import log
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from facellm.errors import ModelLoadError, NoFaceError
from facellm.faces import crowd, detect_faces, yunet
from facellm.faces.detect import count_faces
from facellm.specialist import describe, facts, head_pose, joint, meaning, measure
from facellm.specialist.decide import decide, lettered, pick, yes_no
from facellm.specialist.reading import Reading, same_claim
from facellm.specialist.topics import FACE_ATTACK, PEOPLE, SYNTHETIC_FACE

if TYPE_CHECKING:
    pass


__all__ = ["ANSWERS", "FACE_ATTACK", "SYNTHETIC_FACE", "count_bounds", "count_chances", "count_scores", "question_text"]

OPTION_LINE = re.compile(r"^(?:\((?P<enclosed>[A-Z])\)\s*|(?P<bare>[A-H])[.):]\s+)(?P<text>.*)$")


def _option_lines(prompt: str) -> dict[str, tuple[str, str]]:
    """The prompt's option lines, each with its (letter, text): "(A) ..." always; "A. ...", "A) ..." and "A: ..."
    when at least two such lines name A, B, ... in order (so a sentence that starts "A. " is not taken for one)."""
    found = {line: m for raw in prompt.splitlines() if (m := OPTION_LINE.match(line := raw.strip()))}
    bare = [m.group("bare") for m in found.values() if m.group("bare")]
    if len(bare) < 2 or bare != [chr(ord("A") + k) for k in range(len(bare))]:
        found = {line: m for line, m in found.items() if m.group("enclosed")}
    return {line: (m.group("enclosed") or m.group("bare"), m.group("text").strip()) for line, m in found.items()}


def options_of(prompt: str) -> list[tuple[str, str]]:
    return list(_option_lines(prompt).values())


def without_options(prompt: str) -> list[str]:
    """The prompt's lines that are not option lines (stripped, empty ones dropped)."""
    options = _option_lines(prompt)
    return [line.strip() for line in prompt.splitlines() if line.strip() and line.strip() not in options]


def _label_distributions(task: str, images: list[Image.Image]) -> list[dict[str, float]]:
    """Per image, the probability of every label of `task` (FairFace age/gender/race, 7 expressions)."""
    found = measure.each("expression", images) if task == "expression" else measure.attributes_of(images)
    if failed := measure.first_failure(found):
        raise failed[1]
    return found if task == "expression" else [f[task] for f in found]


def _likeliest(distribution: dict[str, float]) -> str:
    return max(distribution, key=lambda label: distribution[label])


def _labelled(images: list[Image.Image], prompt: str, reading: Reading) -> str:
    """Age, gender, race and expression questions on one or several images: every option weighed over the joint
    labels of the images (one measurement per image)."""
    task = reading.task
    if not images:
        return f"cannot measure: a {task} question needs an image"
    if task == "expression" and reading.target and "contempt" in reading.target:
        return "cannot measure: the expression models know 7 basic expressions; 'contempt' is not one of them"
    dists = _label_distributions(task, images)
    top = [_likeliest(d) for d in dists]
    measured = ", ".join(f"image {i} {label} {d[label]:.0%}" for i, (label, d) in enumerate(zip(top, dists), 1))
    if len(images) == 1:
        measured = f"{task} {top[0]}, {dists[0][top[0]]:.0%}"
    if reading.form == "describe":
        if len(images) == 1:
            return f"The face's {task} is most likely {top[0]} ({dists[0][top[0]]:.0%}; specialist estimate)."
        return f"Most likely {task} per image: {measured} (specialist estimate)."
    worlds = joint.independent(dists, keep=0.99 if len(images) > 3 else 0.999)
    if not reading.options and reading.form in ("count", "select"):  # open: "How many are women?", "Who is a teenager?"
        inside = [sum(p for label, p in d.items() if (label in reading.target) != reading.negated) for d in dists]
        chosen = [f"image {i}" for i, p in enumerate(inside, 1) if p >= 0.5]
        found = f"{len(chosen)} of {len(images)}" if reading.form == "count" else ", ".join(chosen) or "none"
        named = ("not " if reading.negated else "") + " or ".join(sorted(reading.target))
        return f"{found} ({named} by the measured {task}: {measured}; specialist estimate)."
    if not reading.options:  # an open yes/no question
        p = yes_no(reading, worlds)
        return f"{'Yes' if p >= 0.5 else 'No'} ({p:.0%} by the measured {task}: {measured}; specialist estimate)."
    return decide(images, reading, worlds, measured)


CROWD = 10  # people; past this many, in scenes, face detection misses most heads (small, turned away, occluded)
CLOSE_UP_SIDE = 320  # px: whether a picture shows people close up is seen on it at this size at most (YuNet)


def _face_count(images: list[Image.Image], prompt: str, reading: Reading) -> str:
    """People counted, options read by meaning (exact counts, "22 to 26", "more than N", "fewer than N"). In a scene
    (no face close up: `_close_up`) the crowd model's density count, when an option claims a crowd or, for an open
    question, when it counts one; else the faces found (`detect.count_faces`). The crowd model, made for scenes of
    small heads, counted 12-157 people in photos of 2-7 people posing, where the faces were counted right."""

    options = lettered(reading)
    asked = _asked_bounds(prompt)
    bounds = {text: found for _, text in options if (found := count_bounds(text))}
    claimed = max((low for low, _ in bounds.values()), default=0.0)
    named = _image_sets(options, prompt, len(images)) if asked else {}
    if asked and named:  # "Which picture has more than one person?": the images whose faces the question counts
        counts = [len(count_faces(image)) for image in images]
        holding = frozenset(k for k, c in enumerate(counts, 1) if asked[0] <= c <= asked[1])
        seen = ", ".join(f"image {k} {c}" for k, c in enumerate(counts, 1))
        return pick(options, {text: float(value == holding) for text, value in named.items()}, f"faces ({seen})")
    crowd = claimed > CROWD
    scene = (crowd or not options) and not _close_up(images)
    people = _crowd_count(images) if scene else None
    if people is not None and (crowd or people > CROWD):
        posterior = count_posterior(people)
        if not options and asked:
            chance = _held(posterior, *asked)
            return (
                f"{'Yes' if chance >= 0.5 else 'No'} ({chance:.0%}; {people:.0f} people estimated by the crowd model)."
            )
        if not options:
            return f"{people:.0f} people estimated (specialist measurement)."
        totals, chances = posterior
        low, high = (int(totals[np.searchsorted(np.cumsum(chances), q)]) for q in (0.16, 0.84))
        what = f"people count by the crowd density model, {people:.0f} (likely {low}-{high})"
        return pick(options, count_chances(people, bounds, posterior), what)
    count = sum(len(count_faces(image)) for image in images)
    if crowd and scene and claimed > 2 * count + 5:
        return (
            f"cannot measure: {count} face(s) detected, but the options count a crowd; the crowd model is "
            "off (FACELLM_RESEARCH_MODELS=0) and face detection misses most heads in dense crowds"
        )
    if not options and asked:
        return f"{'Yes' if asked[0] <= count <= asked[1] else 'No'} ({count} face(s) detected; specialist measurement)."
    if not options:
        return f"{count} face(s) detected (specialist measurement)."
    return pick(options, count_scores(count, bounds), "face count")


# How the crowd model's count strays from the true count t, measured on ShanghaiTech B's training part (300 photos,
# 9-578 people): log(model count / t) has mean CROWD_BIAS[0] + CROWD_BIAS[1] log t (it over-counts small crowds,
# +0.32 at 20 people, and under-counts large ones, -0.15 at 300) and sd CROWD_SPREAD[0] + CROWD_SPREAD[1] log t (0.34
# at 20, 0.14 at 300); outside 10-600 people the values at those ends are used.
CROWD_BIAS = (0.841, -0.174)
CROWD_SPREAD = (0.550, -0.072)
CROWD_FITTED = (10, 600)


def _image_sets(options: list[tuple[str, str]], prompt: str, n: int) -> dict[str, frozenset]:
    """The options that name sets of images, by text ("Which photos ...? A. 1 only": bare numbers name images)."""
    claims = tuple((letter, text, meaning.parse(text, n)) for letter, text in options)
    if n > 1 and re.search(r"\bwhich\b", question_text(prompt).lower()):
        claims = meaning.numbers_as_images(claims, n)
    return {text: claim.value for _, text, claim in claims if claim.kind == "images"}


PORTRAIT = 0.12  # a face this wide (share of the picture's shorter side) or wider: people close up, not a crowd


def _close_up(images: list[Image.Image]) -> bool:
    """Whether a picture shows a face close up, where counting the faces is right. On dlib's and face_recognition's
    example photos of 2-7 people the largest face was 0.09-0.28 of the shorter side (11 of 12 from PORTRAIT); on
    ShanghaiTech B's 400 development photos it was 0.054 at the median and 0.12 or more on 1."""
    for image in images:
        boxes = detect_faces(image, "yunet" if yunet.available() else "hog", max_side=CLOSE_UP_SIDE)
        if any(box.width >= PORTRAIT * min(image.size) for box in boxes):
            return True
    return False


def count_posterior(count: float) -> tuple[np.ndarray, np.ndarray]:
    """Every true count 0, 1, ... and its probability given the crowd model's `count`: each equally likely before
    measuring, then weighed by how likely the model would give `count` for it (CROWD_BIAS, CROWD_SPREAD)."""
    counts = np.arange(int(10 * count) + 100)
    logs = np.log(np.clip(counts, *CROWD_FITTED))
    spread = CROWD_SPREAD[0] + CROWD_SPREAD[1] * logs
    gap = (log(max(count, 0.5)) - np.log(np.maximum(counts, 0.5)) - CROWD_BIAS[0] - CROWD_BIAS[1] * logs) / spread
    likelihood = np.exp(-0.5 * gap**2) / spread
    return counts, likelihood / likelihood.sum()


def count_chances(
    count: float, bounds: dict[str, tuple[float, float]], posterior: tuple[np.ndarray, np.ndarray] | None = None
) -> dict[str, float]:
    """Each count option's probability for a crowd model's count: the share of `count_posterior` it holds (passed
    in when already computed), so a range gets what it holds rather than all or nothing for one point estimate, and
    the model's bias at each count is undone (a model count of 60 for options 40-59 points lower than the count)."""
    posterior = posterior or count_posterior(count)
    return {text: _held(posterior, low, high) for text, (low, high) in bounds.items()}


def _held(posterior: tuple[np.ndarray, np.ndarray], low: float, high: float) -> float:
    """The probability a count posterior gives the counts from `low` to `high`."""
    counts, chances = posterior
    return float(chances[(counts >= low) & (counts <= high)].sum())


def count_scores(count: float, bounds: dict[str, tuple[float, float]]) -> dict[str, float]:
    """Each count option's score for a measured count: 1 when it allows the count, less the further it is."""
    return {
        text: 1.0 if low <= count <= high else 1.0 / (1 + min(abs(count - low), abs(count - high)))
        for text, (low, high) in bounds.items()
    }


_COMPARED = re.compile(
    rf"\b(?:{meaning.BOUND}|only|just|exactly) (\d+|{'|'.join(meaning.NUMBER_WORDS)}) "
    rf"(?:{PEOPLE}|person|face|individual|human)\b"
)


def _asked_bounds(prompt: str) -> tuple[float, float] | None:
    """The counts a yes/no count question asks about ("Are there more than two people?" -> (3, inf)), or None."""
    m = _COMPARED.search(question_text(prompt).lower())
    if m is None:
        return None
    number = meaning.NUMBER_WORDS.get(m.group(2), m.group(2))
    return count_bounds(f"{m.group(1)} {number}" if m.group(1) else str(number))


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
    return sum(crowd.predict(image, head=head).count for image in images)


SAME_PERSON = 0.6  # dlib's same-person distance (LFW folds choose 0.63 on tight crops; 0.6 is kept as documented)
SAME_PERSON_SPREAD = 0.02  # logistic width of P(same person) around SAME_PERSON (0.01-0.02 best of 0.001-0.05 on the
# development hr_fr questions of bench/accuracy/facexbench_forms.py: 86.0 at 0.02, 82.5 at 0.05, 84.0 at 0.001)


GUESS_WEIGHT = 0.5  # the most a pair's P(same person) may be when one of its images shows no face: a person must be
# there to be the same one, and the detectors find 98% of development faces, so a missing face more likely means none


def _descriptors(images: list[Image.Image]) -> tuple[np.ndarray, list[int]]:
    """Each image's largest-face descriptor, and the indices of images where no face was found: their whole picture
    stands in (a guess)."""
    found = measure.descriptors("face_chip", images)
    guessed = [k for k, result in enumerate(found) if isinstance(result, NoFaceError)]
    if guessed:
        stand_ins = measure.descriptors("guessed_chip", [images[k] for k in guessed])
        found = [stand_ins[guessed.index(k)] if k in guessed else result for k, result in enumerate(found)]
    if failed := measure.first_failure(found):
        raise failed[1]
    return np.stack(found), guessed


def _same_chances(images: list[Image.Image]) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Pairwise descriptor distances, P(same person) from them, and the images where no face was found (their whole
    picture read as the face, their pairs' chances scaled down by GUESS_WEIGHT)."""
    vectors, guessed = _descriptors(images)
    distances = np.linalg.norm(vectors[:, None] - vectors[None], axis=2)
    same = 1 / (1 + np.exp((distances - SAME_PERSON) / SAME_PERSON_SPREAD))
    for k in guessed:
        same[k, :] *= GUESS_WEIGHT
        same[:, k] = same[k, :]
        same[k, k] = 1.0
    return distances, same, guessed


def _same_person(images: list[Image.Image], prompt: str, reading: Reading) -> str:
    """Identity questions over 2-6 images in any of their forms (same person yes/no, which two match, which show the
    first image's person, which differ from the one matching pair, how many pairs, how many people): every grouping
    of the images into people weighed by the pairwise same-person probabilities."""
    if len(images) < 2:
        return "cannot measure: identity questions need at least two images"
    distances, same, guessed = _same_chances(images)
    n = len(images)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    what = f"identity distances {', '.join(f'{i + 1}-{j + 1} {distances[i, j]:.2f}' for i, j in pairs)}"
    if guessed:
        numbers = ", ".join(str(k + 1) for k in guessed)
        what += f"; no face found in image {numbers}: its whole picture stands in, a guess (same person at most even)"
    worlds = joint.partitions(same.tolist())
    if reading.options:
        return decide(images, reading, worlds, what)
    if reading.form == "yesno":
        chance = sum(p for world, p in worlds if len({world[k - 1] for k in reading.target}) == 1)
        verdict = "Same person" if chance >= 0.5 else "Different people"
        named = ", ".join(str(k) for k in reading.target[:-1]) + f" and {reading.target[-1]}"
        return f"{verdict} (images {named}; {what})."
    matching = sum(bool(same[i, j] >= 0.5) for i, j in pairs)
    return f"{matching} matching pair(s) ({what})."


def _says_same(text: str) -> bool | None:
    """Whether a two-image option says "same person" (True), "different people" (False) or neither (None)."""
    claim = same_claim(text)
    return {"yes": True, "no": False}.get(claim.kind)


def question_text(prompt: str) -> str:
    """The question itself: the last line that is neither an option, nor the answer-format instruction, nor empty
    (in FaceXBench's in-context setting the task description comes on a line before it)."""
    lines = without_options(prompt)
    asked = [line for line in lines if not re.search(r"option letter|^answer\b|step by step", line, re.I)]
    return (asked or lines or [""])[-1]


def _presence(images: list[Image.Image], prompt: str, reading: Reading) -> str:
    """Whether a face (a person) is shown: a face detector's answer, searched cheapest first."""
    if not images:
        return "cannot measure: a question about who is shown needs an image"
    found = [measure.largest_face(image) is not None for image in images]
    chances = [facts.PRESENT_IF_FOUND if f else facts.PRESENT_IF_NOT for f in found]
    measured = (
        ", ".join(f"image {i}: {'a face found' if f else 'no face found'}" for i, f in enumerate(found, 1))
        if len(images) > 1
        else ("a face found" if found[0] else "no face found")
    )
    worlds = joint.independent([{True: c, False: 1 - c} for c in chances])
    if not reading.options:
        p = yes_no(reading, worlds)
        return f"{'Yes' if p >= 0.5 else 'No'} ({measured} by face detection; {p:.0%}; specialist estimate)."
    return decide(images, reading, worlds, measured)


ATTACK_TYPES = 8  # FaceXBench's WMCA questions name 8 attack types; the liveness model does not tell them apart
BINARY_MODELS = {"attack": ("liveness", "attack"), "fake": ("synthetic", "fake")}  # task -> (model, positive class)


def _binary(images: list[Image.Image], prompt: str, reading: Reading) -> str:
    """Attack or fake: the model gives each image a probability; options are judged over the images' joint yes/no.
    Questions about one named attack type take that type as one of ATTACK_TYPES equally likely kinds of attack."""
    task, positive = BINARY_MODELS[reading.task]
    if not images:
        return f"cannot measure: a {positive} question needs at least one image"
    probabilities = measure.each(reading.task, images)
    if failed := measure.first_failure(probabilities):
        raise failed[1]
    measured = f"{positive} probability " + ", ".join(f"image {i} {p:.0%}" for i, p in enumerate(probabilities, 1))
    if reading.form == "types":
        question = question_text(prompt)
        if any(c.kind == "types" for _, _, c in reading.options) or not re.search(
            r"\b(of|attack) type \w", question, re.I
        ):
            return f"cannot measure: the {task} model does not tell {positive} types apart; measured {measured}"
        probabilities = [p / ATTACK_TYPES for p in probabilities]
        reading = replace(reading, asked=meaning.asked_property(question, reading.prop or FACE_ATTACK))
    if not reading.options:
        return "; ".join(f"image {i}: {positive} {p:.0%}" for i, p in enumerate(probabilities, 1)) + (
            " (specialist measurement)"
        )
    worlds = joint.independent([{True: p, False: 1 - p} for p in probabilities])
    if reading.target == "identity":  # deepfakes of one person: fake per image x grouping into people
        people = joint.partitions(_same_chances(images)[1].tolist())
        worlds = [(tuple(zip(f, g)), wf * wg) for f, wf in worlds for g, wg in people]
    return decide(images, reading, worlds, measured)


# task (specialist/topics.py TOPICS) -> the measurement that answers its readings
ANSWERS: dict[str, Callable[[list[Image.Image], str, Reading], str]] = {
    "attack": _binary,
    "fake": _binary,
    "expression": _labelled,
    "identity": _same_person,
    "age": _labelled,
    "gender": _labelled,
    "race": _labelled,
    "headpose": head_pose.answer,
    "crowd": _face_count,
    "quality": describe.quality,
    "aspect": describe.describe,
    "presence": _presence,
}
