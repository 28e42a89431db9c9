"""The `specialist` backend: face questions answered by the face-analysis models, no language model involved.

A question goes to the first row of `ROUTES` whose pattern matches it; the row names the measurement that answers
it. Multiple-choice questions (options as "(A) ..." lines, as FaceXBench writes them) get the option that best
matches the measurement, written "B. option text (specialist: measured ...)" so that both FaceXBench extractors read
B; open questions get one factual sentence. A question no row covers gets an explicit "cannot measure" answer
instead of a guess.

Also here: `grounding_facts`, the measured facts block that `--ground` puts before a question for a real MLLM.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from facellm.labels import FAIRFACE_AGES, normalise
from facellm.serve.engine import ServingBackend

NAME = "specialist (face-analysis models, not an LLM)"
OPTION_LINE = re.compile(r"^\(([A-Z])\)\s*(.*)$")


@dataclass(frozen=True)
class Route:
    name: str
    pattern: re.Pattern
    answer: Callable[[list[Image.Image], str, list[tuple[str, str]]], str]


def _options(prompt: str) -> list[tuple[str, str]]:
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


def _face_count(images: list[Image.Image], prompt: str, options: list[tuple[str, str]]) -> str:
    from facellm.faces import detect_faces

    count = sum(len(detect_faces(image)) for image in images)
    if not options:
        return f"{count} face(s) detected (specialist measurement)."
    scores = {}
    for _, text in options:
        numbers = [int(n) for n in re.findall(r"\d+", text)]
        if len(numbers) == 1:
            scores[text] = 1.0 / (1 + abs(numbers[0] - count))
        elif len(numbers) == 2:
            scores[text] = (
                1.0 if numbers[0] <= count <= numbers[1] else 0.5 / (1 + min(abs(count - n) for n in numbers))
            )
    return _pick(options, scores, "face count")


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
        scores = {text: 1.0 if _option_claim(text, claim) else 0.0 for _, text in options}
        return _pick(options, scores, what)
    if n == 2 and options:
        wanted = ("yes", "same") if same[0, 1] else ("no", "different", "not")
        scores = {text: 1.0 if any(w in text.lower() for w in wanted) else 0.0 for _, text in options}
        return _pick(options, scores, what)
    matching = sum(bool(same[i, j]) for i, j in pairs)
    verdict = ("Same person" if same[0, 1] else "Different people") if n == 2 else f"{matching} matching pair(s)"
    return f"{verdict} ({what})."


def _identity_claim(prompt: str, same: np.ndarray, pairs: list, closest: tuple[int, int]):
    """What the measurement says, in the form the question asks for: a count (int) or a set of image numbers."""
    text = prompt.lower()
    others = {j + 1 for j in range(1, len(same)) if same[0, j]}
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


def _option_claim(text: str, claim) -> bool:
    numbers = [int(n) for n in re.findall(r"\d+", text)]
    if isinstance(claim, int):
        return numbers == [claim]
    return bool(numbers) and set(numbers) == claim


EXPRESSION_WORDS = {
    "angry": ("anger", "angry"), "disgust": ("disgust",), "fear": ("fear", "afraid", "scared"),
    "happy": ("happy", "happiness", "joy"), "neutral": ("neutral", "calm"), "sad": ("sad", "sadness"),
    "surprise": ("surprise", "surprised"),
}  # fmt: skip


def _expression(images: list[Image.Image], prompt: str, options: list[tuple[str, str]]) -> str:
    from facellm.faces import detect_faces
    from facellm.faces.expression import predict_expression

    if len(images) != 1:
        return "cannot measure: this expression question needs exactly one image"
    # Small images are already face crops (FER2013 is 48 px), as the expression model was trained on.
    boxes = detect_faces(images[0]) if min(images[0].size) > 96 else []
    probs = predict_expression(images[0], boxes[0] if boxes else None)
    if not options:
        top = max(probs, key=probs.get)
        return f"The expression looks most like {top} ({probs[top]:.0%}; specialist estimate)."
    scores = {
        text: sum(p for name, p in probs.items() if any(w in text.lower() for w in EXPRESSION_WORDS[name]))
        for _, text in options
    }
    return _pick(options, scores, "expression")


def _single_face(images: list[Image.Image], what: str):
    """The largest analysed face of a one-image question, or the "cannot measure" answer explaining why not."""
    from facellm.faces import analyze_image

    if len(images) != 1:
        return f"cannot measure: this {what} question needs exactly one image"
    analysis = analyze_image(images[0])
    return analysis.faces[0] if analysis.faces else "cannot measure: no face was found in the image"


def _head_pose(images: list[Image.Image], prompt: str, options: list[tuple[str, str]]) -> str:
    """Yaw, pitch or roll of the largest face; options written as angle bins ("-20 to -10") get the bin that holds
    the measurement (the nearest bin otherwise). Angles follow facellm's convention (see faces/geometry.py), which
    has not been checked against AFLW2000's or BIWI's sign conventions."""
    face = _single_face(images, "head-pose")
    if isinstance(face, str):
        return face
    pose = face.pose
    if pose is None:
        return "cannot measure: head pose needs the 68-point landmark model, and FACELLM_LANDMARKS=5 is set"
    axis = next((a for a in ("yaw", "pitch", "roll") if a in prompt.lower()), None)
    if axis is None or not options:
        angles = ", ".join(f"{a} {round(getattr(pose, a)) + 0}" for a in ("yaw", "pitch", "roll"))
        return f"The head is {pose.label} ({angles} degrees)."
    angle = getattr(pose, axis)
    scores = {}
    for _, text in options:
        bounds = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", text)]
        if len(bounds) == 2:
            low, high = sorted(bounds)
            scores[text] = 1.0 if low <= angle < high else 0.5 / (1 + min(abs(angle - low), abs(angle - high)))
    return _pick(options, scores, f"{axis} angle {round(angle) + 0} in")


def _quality(images: list[Image.Image], prompt: str, options: list[tuple[str, str]]) -> str:
    face = _single_face(images, "image-quality")
    if isinstance(face, str):
        return face
    q = face.quality
    light = "dark" if q.brightness < 70 else "bright" if q.brightness > 190 else "evenly lit"
    focus = "sharp" if q.sharpness > 100 else "soft or blurred"
    return (f"The face region is {light} (mean brightness {q.brightness:.0f}/255), {focus} (Laplacian variance "
            f"{q.sharpness:.0f}) and {q.face_width} px wide (specialist measurement).")  # fmt: skip


ROUTES = [
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


def answer(images: list[Image.Image], prompt: str) -> str:
    """The specialist's answer to one question about `images`."""
    question = "\n".join(line for line in prompt.splitlines() if not OPTION_LINE.match(line.strip()))
    for route in ROUTES:
        if route.pattern.search(question):
            return route.answer(images, prompt, _options(prompt))
    return ("cannot measure: the specialist answers age, gender, race, expression, head-pose, image-quality, "
            "face-count and same-person questions from face-analysis models; this question is outside what it "
            "measures.")  # fmt: skip


@dataclass
class SpecialistAnswerer:
    """The evaluation runner's interface over the specialist."""

    name: str = NAME
    chunk_size: int = 16

    def answer(self, items):
        return [answer(images, prompt) for images, prompt in items]


@dataclass
class GroundedAnswerer:
    """Wraps any answerer so that every prompt starts with the measured facts of its images."""

    inner: object

    @property
    def name(self) -> str:
        return f"{self.inner.name}+grounded"

    @property
    def chunk_size(self) -> int:
        return self.inner.chunk_size

    def answer(self, items):
        return self.inner.answer([(images, ground(images, prompt)) for images, prompt in items])


def ground(images: list[Image.Image], prompt: str) -> str:
    """The prompt with the measured-facts block before it (unchanged when there are no images)."""
    return f"{grounding_facts(images)}\n{prompt}" if images else prompt


def grounding_facts(images: list[Image.Image]) -> str:
    """A delimited block of measured facts for every image and face, to put before a question (`--ground`)."""
    from facellm.errors import NoFaceError
    from facellm.faces import analyze_image, image_descriptor

    lines = ["[measured facts from face-analysis models]"]
    vectors = []
    for number, image in enumerate(images, 1):
        analysis = analyze_image(image, with_attributes=True)
        lines.append(f"image {number}: {analysis.face_count} face(s)")
        for k, face in enumerate(analysis.faces, 1):
            pose, quality = face.pose, face.quality
            guesses = ", ".join(
                f"{name} {max(p, key=p.get)} ({max(p.values()):.0%})" for name, p in face.attributes.items()
            )
            angles = (
                f"{pose.label} (yaw {pose.yaw:.0f}, pitch {pose.pitch:.0f}, roll {pose.roll:.0f})" if pose else "n/a"
            )
            lines.append(f"  face {k}: pose {angles}; quality brightness {quality.brightness:.0f}, sharpness "
                         f"{quality.sharpness:.0f}, width {quality.face_width}px; {guesses}")  # fmt: skip
        if len(images) > 1 and analysis.faces:
            try:
                vectors.append((number, image_descriptor(image)[0]))
            except NoFaceError:  # found by the analysis, not after the descriptor's padding: no distance to give
                pass
    for i in range(len(vectors)):
        for j in range(i + 1, len(vectors)):
            (a, va), (b, vb) = vectors[i], vectors[j]
            lines.append(f"identity distance image {a} - image {b}: {np.linalg.norm(va - vb):.2f} "
                         f"(below {SAME_PERSON} usually means the same person)")  # fmt: skip
    lines.append("[end of measured facts]")
    return "\n".join(lines)


class SpecialistBackend(ServingBackend):
    """The serving engine's interface over the specialist (`facellm serve --model specialist`)."""

    name = NAME

    def generate(self, conversations, settings) -> list[str]:
        return [answer([im for turn in c for im in turn.images], c[-1].text) for c in conversations]


class GroundedBackend(ServingBackend):
    """Wraps a serving backend so the last user turn starts with the measured facts of the conversation's images."""

    def __init__(self, inner: ServingBackend) -> None:
        self.inner = inner
        self.name = f"{inner.name}+grounded"

    def _grounded(self, conversation):
        from facellm.model.generate import Turn

        images = [im for turn in conversation for im in turn.images]
        last = conversation[-1]
        return [*conversation[:-1], Turn(last.role, ground(images, last.text), last.images)]

    def generate(self, conversations, settings) -> list[str]:
        return self.inner.generate([self._grounded(c) for c in conversations], settings)

    def stream(self, conversation, settings, cancel=None):
        return self.inner.stream(self._grounded(conversation), settings, cancel)

    def check(self, conversation, settings) -> int:
        self.inner.check(conversation, settings)
        return self.prompt_tokens(conversation)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def prompt_tokens(self, conversation) -> int:
        return self.inner.prompt_tokens(self._grounded(conversation))
