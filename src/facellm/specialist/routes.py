"""The specialist's routes: which questions each face-analysis model answers, and how its measurement picks an
option. Options are read for what they claim (specialist/meaning.py), not matched word by word."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image

from facellm.labels import FAIRFACE_AGES, normalise
from facellm.specialist import meaning

OPTION_LINE = re.compile(r"^\(([A-Z])\)\s*(.*)$")


@dataclass(frozen=True)
class Route:
    name: str
    pattern: re.Pattern
    answer: Callable[[list[Image.Image], str, list[tuple[str, str]]], str]


def options_of(prompt: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2).strip()) for line in prompt.splitlines() if (m := OPTION_LINE.match(line.strip()))]


def _pick(options: list[tuple[str, str]], scores: dict[str, float], what: str) -> str:
    """The option letter with the highest score. A "None of the above" option scores the probability left over
    for what no other option names (scores are probabilities of the options being right)."""
    none = next((letter for letter, text in options if "none of the above" in text.lower()), None)
    listed = sum(scores.get(text, 0.0) for letter, text in options if letter != none)
    scored = [(max(0.0, 1.0 - listed) if letter == none else scores.get(text, 0.0), letter, text)
              for letter, text in options]  # fmt: skip
    best = max(scored, default=(0.0, "", ""))
    if best[1] == none:
        return f"{none}. {best[2]} (specialist: no listed option fits the measured {what}; {best[0]:.0%} left over)"
    return f"{best[1]}. {best[2]} (specialist: measured {what}, {best[0]:.0%})"


def _attribute(name: str):
    def answer(images: list[Image.Image], prompt: str, options: list[tuple[str, str]]) -> str:
        from facellm.faces import attributes

        if len(images) != 1:
            return "cannot measure: this attribute question needs exactly one image"
        probs = vars(attributes.predict(attributes.features(images[0])))[name]
        if not options:
            top = max(probs, key=probs.get)
            return f"The face's {name} is most likely {top} ({probs[top]:.0%}; specialist estimate)."
        scores = {text: _option_probability(name, text, probs) for _, text in options}
        return _pick(options, scores, name)

    return answer


def _option_probability(name: str, text: str, probs: dict[str, float]) -> float:
    """Probability mass of a written option: a FairFace class, or an age range such as "50-60" or "20 to 29"."""
    try:
        return probs[normalise(name, text)]
    except Exception:  # noqa: BLE001 - not a FairFace class name; try an age range below
        pass
    if name == "age":
        numbers = [int(n) for n in re.findall(r"\d+", text)]
        if len(numbers) == 2:
            low, high = numbers
            total = 0.0
            for group in FAIRFACE_AGES:
                bounds = [int(n) for n in re.findall(r"\d+", group)] or [70]
                g_low, g_high = bounds[0], bounds[-1] if len(bounds) > 1 else 100
                overlap = max(0, min(high, g_high) - max(low, g_low) + 1) / (g_high - g_low + 1)
                total += probs[group] * overlap
            return total
    return 0.0


CROWD = 10  # people; past this many, in scenes, face detection misses most heads (small, turned away, occluded)


def _face_count(images: list[Image.Image], prompt: str, options: list[tuple[str, str]]) -> str:
    """People counted, options read by meaning (exact counts, "22 to 26", "more than N", "fewer than N"): the crowd
    model's density count when an option claims a crowd (or, for an open question, when it finds one), else the
    detected faces."""
    from facellm.faces import detect_faces

    bounds = {text: found for _, text in options if (found := count_bounds(text))}
    claimed = max((low for low, _ in bounds.values()), default=0.0)
    crowd = claimed > CROWD
    people = _crowd_count(images) if crowd or not options else None
    if people is not None and (crowd or people > CROWD):
        count, what = people, "people count (crowd density model)"
    else:
        # For crowd-scale options the HOG pass (tens of ms) decides; the CNN pass is for counting a few faces.
        count = sum(len(detect_faces(image, detector="hog" if crowd else "quick")) for image in images)
        what = "face count"
        if crowd and claimed > 2 * count + 5:
            return (f"cannot measure: {count} face(s) detected, but the options count a crowd; the crowd model is "
                    "off (FACELLM_RESEARCH_MODELS=0) and face detection misses most heads in dense crowds")  # fmt: skip
    if not options:
        found = "people estimated" if what != "face count" else "face(s) detected"
        return f"{count:.0f} {found} (specialist measurement)."
    return _pick(options, count_scores(count, bounds), what)


def count_scores(count: float, bounds: dict[str, tuple[float, float]]) -> dict[str, float]:
    """Each count option's score for a measured count: 1 when it allows the count, less the further it is."""
    return {text: 1.0 if low <= count <= high else 1.0 / (1 + min(abs(count - low), abs(count - high)))
            for text, (low, high) in bounds.items()}  # fmt: skip


def count_bounds(text: str) -> tuple[float, float] | None:
    """The counts an option allows, as `meaning.parse` reads it: "12" -> (12, 12), "22 to 26" -> (22, 26),
    "more than 50" -> (51, inf), "fewer than 5" -> (0, 4); None when it claims no count."""
    claim = meaning.parse(text, 1)
    if claim.kind == "count":
        return float(claim.value), float(claim.value)
    return claim.value if claim.kind == "range" else None


def _crowd_count(images: list[Image.Image]) -> float | None:
    """The crowd model's count over the images; None when its research-only weights may not be used or are absent."""
    from facellm.errors import ModelLoadError
    from facellm.faces import crowd

    try:
        head = crowd.usable_head()
    except ModelLoadError:  # ResearchModelsOff is one
        return None
    return sum(crowd.count_people(image, head).count for image in images)


SAME_PERSON = 0.6  # dlib's same-person distance (LFW folds choose 0.63 on tight crops; 0.6 is kept as documented)


def _same_person(images: list[Image.Image], prompt: str, options: list[tuple[str, str]]) -> str:
    """Identity questions over 2-6 images, in FaceXBench's forms: same person yes/no, which two images match, which
    images show the first image's person (or how many do), which differ from the one matching pair, how many
    same-person pairs, how many distinct identities. Matching = descriptor distance below SAME_PERSON."""
    from facellm.errors import NoFaceError
    from facellm.faces import image_descriptor

    if len(images) < 2:
        return "cannot measure: identity questions need at least two images"
    found = []
    for number, image in enumerate(images, 1):
        try:
            found.append(image_descriptor(image)[0])
        except NoFaceError:
            return f"cannot measure: no face was found in image {number}"
    vectors = np.stack(found)
    distances = np.linalg.norm(vectors[:, None] - vectors[None], axis=2)
    n = len(images)
    same = distances < SAME_PERSON
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    closest = min(pairs, key=lambda ij: distances[ij])
    claim = _identity_claim(prompt, same, pairs, closest)
    what = f"identity (distances {', '.join(f'{i + 1}-{j + 1} {distances[i, j]:.2f}' for i, j in pairs)})"
    if options and claim is not None:
        scores = {text: 1.0 if _option_claim(text, claim, n) else 0.0 for _, text in options}
        return _pick(options, scores, what)
    if n == 2 and options:
        scores = {text: 1.0 if _says_same(text) == bool(same[0, 1]) else 0.0 for _, text in options}
        return _pick(options, scores, what)
    matching = sum(bool(same[i, j]) for i, j in pairs)
    verdict = ("Same person" if same[0, 1] else "Different people") if n == 2 else f"{matching} matching pair(s)"
    return f"{verdict} ({what})."


def _says_same(text: str) -> bool | None:
    """Whether a two-image option says "same person" (True), "different people" (False) or neither (None)."""
    claim = meaning.parse(text, 2)
    if claim.kind in ("yes", "no"):
        return claim.kind == "yes"
    lowered = text.lower()
    if claim.kind != "other":
        return None
    if re.search(r"\b(different|two (distinct |separate )?(people|persons|individuals)|not the same)\b", lowered):
        return False
    return True if re.search(r"\bsame\b", lowered) else None


def _identity_claim(prompt: str, same: np.ndarray, pairs: list, closest: tuple[int, int]):
    """What the measurement says, in the form the question asks for: a count (int) or a set of image numbers."""
    text = question_text(prompt).lower()
    others = {j + 1 for j in range(1, len(same)) if same[0, j]}
    if re.search(r"\bnot\b|n't\b", text) and "first image" in text:  # "Which of the other images are not person A?"
        others = set(range(2, len(same) + 1)) - others
    if "how many pairs" in text:
        return sum(bool(same[i, j]) for i, j in pairs)
    if re.search(r"how many (unique|different|distinct) (identities|people|persons|individuals)", text):
        return _components(same)
    if "first image" in text and "how many" in text:
        return len(others)
    if "first image" in text:
        return frozenset(others)
    if "which two images" in text:
        return frozenset(k + 1 for k in closest)
    if "different from that person" in text:
        return frozenset(range(1, len(same) + 1)) - {k + 1 for k in closest}
    return None


def _components(same: np.ndarray) -> int:
    """Number of identities: connected groups of images linked by same-person matches."""
    group = list(range(len(same)))

    def root(i: int) -> int:
        while group[i] != i:
            i = group[i]
        return i

    for i in range(len(same)):
        for j in range(i + 1, len(same)):
            if same[i, j]:
                group[root(j)] = root(i)
    return len({root(i) for i in range(len(same))})


def _option_claim(text: str, claim, n: int) -> bool:
    """Whether an option states `claim`: a count (int) or a set of image numbers."""
    parsed = meaning.parse(text, n)
    return parsed.kind == ("count" if isinstance(claim, int) else "images") and parsed.value == claim


EXPRESSION_WORDS = {
    "angry": ("anger", "angry"), "disgust": ("disgust",), "fear": ("fear", "afraid", "scared"),
    "happy": ("happy", "happiness", "joy"), "neutral": ("neutral", "calm"), "sad": ("sad", "sadness"),
    "surprise": ("surprise", "surprised"),
}  # fmt: skip


def expression_probabilities(image: Image.Image) -> dict[str, float]:
    """The 7 basic expressions' probabilities for the largest face (small pictures are taken as face crops, as the
    FER2013 and RAF-DB models were trained on)."""
    from facellm.faces import detect_faces
    from facellm.faces.expression import predict_expression

    boxes = detect_faces(image) if min(image.size) > 128 else []
    return predict_expression(image, boxes[0] if boxes else None)


def _expression(images: list[Image.Image], prompt: str, options: list[tuple[str, str]]) -> str:
    if not images:
        return "cannot measure: an expression question needs an image"
    probs = [expression_probabilities(image) for image in images]
    if len(images) > 1 or re.search(r"\bexpression '", prompt):
        quoted = {name: re.compile(rf"'({'|'.join(words)})'", re.I) for name, words in EXPRESSION_WORDS.items()}
        named = next((name for name, pattern in quoted.items() if pattern.search(prompt)), None)
        if named is None or not options:
            return "cannot measure: this expression question does not name one expression to look for"
        question = question_text(prompt)
        prop = meaning.Property(EXPRESSION_WORDS[named], ())
        mention = quoted[named].search(question)
        asked = not (mention and meaning.negated(question.lower(), mention.start()))
        return _chosen(options, question, [p[named] for p in probs], prop, f"'{named}' expression", asked)
    probs = probs[0]
    if not options:
        top = max(probs, key=probs.get)
        return f"The expression looks most like {top} ({probs[top]:.0%}; specialist estimate)."
    scores = {
        text: sum(p for name, p in probs.items() if any(w in text.lower() for w in EXPRESSION_WORDS[name]))
        for _, text in options
    }
    return _pick(options, scores, "expression")


def question_text(prompt: str) -> str:
    """The question itself: the last line that is neither an option, nor the answer-format instruction, nor empty
    (in FaceXBench's in-context setting the task description comes on a line before it)."""
    lines = [line.strip() for line in prompt.splitlines() if line.strip() and not OPTION_LINE.match(line.strip())]
    asked = [line for line in lines if not re.search(r"option letter|^answer\b|step by step", line, re.I)]
    return (asked or lines or [""])[-1]


def _chosen(options, question: str, probabilities: list[float], prop, what: str, asked: bool | None = None) -> str:
    """The option the per-image probabilities make likeliest, written as `_pick` writes it."""
    found = meaning.choose(options, question, probabilities, prop, asked)
    measured = ", ".join(f"image {i} {p:.0%}" for i, p in enumerate(probabilities, 1))
    if found is None:
        return f"cannot measure: the options do not say which images are {what}; measured {what}: {measured}"
    letter, text, probability = found
    return f"{letter}. {text} (specialist: measured {what} {measured}; {probability:.0%})"


AXES = ("yaw", "pitch", "roll")
RANGE = re.compile(r"(-?\d+(?:\.\d+)?)\s*(?:to|and)\s*(-?\d+(?:\.\d+)?)")


@cache
def _pose_spread() -> dict[str, float]:
    """Standard deviation of the pose model's error per axis (1.25 x its 5-fold mean absolute error)."""
    import json

    from facellm.faces.pose import WEIGHTS

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
    from facellm.faces import analyze_image

    poses = []
    for number, image in enumerate(images, 1):
        faces = analyze_image(image).faces
        if not faces:
            return f"cannot measure: no face was found in image {number}"
        if faces[0].pose is None:
            return "cannot measure: head pose needs the 68-point landmark model, and FACELLM_LANDMARKS=5 is set"
        poses.append(faces[0].pose)
    return poses


def _head_pose(images: list[Image.Image], prompt: str, options: list[tuple[str, str]]) -> str:
    """Yaw, pitch or roll bins (AFLW2000-3D's convention, as FaceXBench): each option is weighed by the probability
    that the true angle lies in it, given the model's measured error. Several images: which or how many are in the
    named bins (each image's probability from its own angles), or which pair shares a bin."""
    if not images:
        return "cannot measure: a head-pose question needs an image"
    poses = _poses(images)
    if isinstance(poses, str):
        return poses
    question = question_text(prompt).lower()
    axes = [a for a in AXES if re.search(rf"\b{a}\b", question)]
    if not axes or not options:
        return "; ".join(f"image {i}: head {p.label} (yaw {p.yaw:.0f}, pitch {p.pitch:.0f}, roll {p.roll:.0f} degrees)"
                         for i, p in enumerate(poses, 1))  # fmt: skip
    spread = _pose_spread() if poses[0].method == "learned" else dict.fromkeys(AXES, 15.0)
    if len(images) == 1 and len(axes) == 1 and "which" not in question and "how many" not in question:
        angle = getattr(poses[0], axes[0])
        scores = {}
        for _, text in options:
            claim = meaning.parse(text, 1)
            if claim.kind == "range":
                scores[text] = _in_range(angle, spread[axes[0]], *claim.value)
        return _pick(options, scores, f"{axes[0]} angle {round(angle) + 0} in")
    measured = f"{'/'.join(axes)} angles " + ", ".join(
        f"image {i} {'/'.join(str(round(getattr(p, a)) + 0) for a in axes)}" for i, p in enumerate(poses, 1)
    )
    if "same" in question and "bin" in question:
        return _same_bin(options, poses, axes[0], spread[axes[0]], measured)
    ranges = [tuple(sorted(float(v) for v in m.groups())) for m in RANGE.finditer(question.split("headpose", 1)[-1])]
    if len(ranges) != len(axes):
        return f"cannot measure: the question's angle ranges could not be read; measured {measured}"
    probabilities = [float(np.prod([_in_range(getattr(p, a), spread[a], *r) for a, r in zip(axes, ranges)]))
                     for p in poses]  # fmt: skip
    return _chosen(options, question, probabilities, meaning.Property((), ()), "in the named range", asked=True)


def _same_bin(options, poses, axis: str, spread: float, measured: str) -> str:
    """Which pair of images shares a 10-degree bin of `axis`: each pair weighed by P(same bin)."""
    bins = range(-100, 100, 10)
    chances = [np.array([_in_range(getattr(p, axis), spread, b, b + 10) for b in bins]) for p in poses]
    scores = {}
    for _, text in options:
        claim = meaning.parse(text, len(poses))
        if claim.kind == "images" and len(claim.value) == 2 and max(claim.value) <= len(poses):
            i, j = sorted(claim.value)
            scores[text] = float(chances[i - 1] @ chances[j - 1])
    return _pick(options, scores, measured)


FACE_ATTACK = meaning.Property(("attack", "spoof", "not bonafide", "not bona fide"),
                               ("bonafide", "bona fide", "real", "genuine", "live"))  # fmt: skip
SYNTHETIC_FACE = meaning.Property(("fake", "deepfake", "manipulated", "synthetic", "generated", "swapped"),
                                  ("real", "genuine", "authentic", "pristine", "not deepfake"))  # fmt: skip
ATTACK_TYPES = 8  # FaceXBench's WMCA questions name 8 attack types; the liveness model does not tell them apart


def _binary(task: str, positive: str, prop: meaning.Property, what: str, types: int | None = None):
    """A route whose model gives each image a probability of `positive` (attack, fake). `types`: how many kinds of
    `positive` the questions may name (attack types) when the model does not tell them apart."""

    def answer(images: list[Image.Image], prompt: str, options: list[tuple[str, str]]) -> str:
        from facellm.faces.classifier import predict

        if not images:
            return f"cannot measure: a {what} question needs at least one image"
        probabilities = [predict(task, image)[positive] for image in images]
        question = question_text(prompt)
        if types and re.search(r"\btypes?\b", question, re.I):
            if not re.search(r"\b(of|attack) type \w", question, re.I):
                return f"cannot measure: the {task} model does not tell {positive} types apart"
            probabilities = [p / types for p in probabilities]
        if not options:
            return (
                "; ".join(f"image {i}: {positive} {p:.0%}" for i, p in enumerate(probabilities, 1))
                + " (specialist measurement)"
            )
        return _chosen(options, question, probabilities, prop, f"{positive} probability")

    return answer


def _quality(images: list[Image.Image], prompt: str, options: list[tuple[str, str]]) -> str:
    """Brightness, sharpness and width of the first detected face (as `analyze` reports it first); no landmarks or
    pose are needed for that."""
    from facellm.faces import detect_faces
    from facellm.faces.quality import face_quality

    if len(images) != 1:
        return "cannot measure: this image-quality question needs exactly one image"
    boxes = detect_faces(images[0])
    if not boxes:
        return "cannot measure: no face was found in the image"
    q = face_quality(images[0], boxes[0])
    light = "dark" if q.brightness < 70 else "bright" if q.brightness > 190 else "evenly lit"
    focus = "sharp" if q.sharpness > 100 else "soft or blurred"
    return (f"The face region is {light} (mean brightness {q.brightness:.0f}/255), {focus} (Laplacian variance "
            f"{q.sharpness:.0f}) and {q.face_width} px wide (specialist measurement).")  # fmt: skip


ROUTES = [
    Route("anti-spoofing", re.compile(r"\b(spoof\w*|bona ?fide|anti-spoofing|presentation attack|attacks?|"
                                      r"attacked|genuine|liveness)\b", re.I),
          _binary("liveness", "attack", FACE_ATTACK, "attack", ATTACK_TYPES)),
    Route("synthetic face", re.compile(r"\b(deepfakes?|fakes?|(is|are) real|manipulated|synthetic|generated)\b", re.I),
          _binary("synthetic", "fake", SYNTHETIC_FACE, "synthetic-face")),
    Route("expression", re.compile(r"\b(expression|emotion|feeling)\b", re.I), _expression),
    Route("age", re.compile(r"\b(age|how old|years old)\b", re.I), _attribute("age")),
    Route("gender", re.compile(r"\b(gender|male|female|man or (a )?woman)\b", re.I), _attribute("gender")),
    Route("race", re.compile(r"\b(race|racial|ethnicity|ethnic)\b", re.I), _attribute("race")),
    Route("head pose", re.compile(r"\b(yaw|pitch|roll|head ?pose|head orientation)\b", re.I), _head_pose),
    Route("face count", re.compile(r"\b(how many (faces|people|persons|individuals)|number of (people|persons|"
                                   r"individuals|faces)|count of (people|faces))\b", re.I), _face_count),
    Route("image quality", re.compile(r"\b(image quality|blurry|blurred|sharpness|brightness|lighting)\b", re.I),
          _quality),
    Route("identity", re.compile(r"\b(same person|same identity|different people|pairs of images|identities|"
                                 r"person a)\b", re.I), _same_person),
]  # fmt: skip
