"""Questions about CelebA's 40 face attributes (FaceXBench's attributes sub-task), read and answered.

A question is read into an `AttributeReading` (which attributes it names, its form, what each option claims); the
CelebA attribute model gives every image a probability per attribute, taken as independent; each option's
probability of being right follows exactly (products over images, and the Poisson-binomial law for counts), and
the most probable option is the answer. `holds` is the same semantics with known labels (the bench draws
questions' images with it). Forms, as FaceXBench writes them:

  present         which listed attribute is present ("Identify ...", "most prominent")
  absent          which listed attribute is NOT present
  count           how many attributes (of a named list; default all 40) the person has
  union_count     how many attributes are present across all images
  common_count    how many of a named set are common to all images
  images_with     which images have the attribute 'X' (options are image sets)
  images_without  which images lack it
  images_count    how many images have it
  most_frequent   which listed attribute is present in most images
  unique          which listed attribute is present in exactly one image
  common          which listed attribute all images have
  any             which listed attribute any image has
  describe        no options ("Which attributes does this person have?"): the attributes measured present
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from facellm.faces.celeb_attributes import NAMES
from facellm.specialist import meaning, vocabulary
from facellm.specialist.vocabulary import BEARD_ATTRIBUTE

_KEYS = {re.sub(r"[^a-z0-9]", "", name.lower()): name for name in NAMES}
COLUMN = {name: i for i, name in enumerate(NAMES)}  # an attribute's column in the model's (images, 40) output


def attribute_chances(probs: np.ndarray, name: str) -> np.ndarray:
    """Each image's probability of one attribute (vocabulary.BEARD_ATTRIBUTE: CelebA's No_Beard being false)."""
    return 1 - probs[:, COLUMN["No_Beard"]] if name == BEARD_ATTRIBUTE else probs[:, COLUMN[name]]


@dataclass(frozen=True)
class AttributeReading:
    form: str
    images: int
    target: tuple[str, ...]  # the attributes the question names (the counted list, or the one asked about)
    options: tuple[tuple[str, str, Any], ...]  # (letter, text, an attribute name, a count or a set of images)


def attribute_named(text: str) -> str | None:
    """The CelebA attribute `text` names ("Rosy_Cheeks", "rosy cheeks", "5 o'clock shadow"), or None."""
    return _KEYS.get(re.sub(r"[^a-z0-9]", "", str(text).lower()))


def _named_in(text: str) -> tuple[str, ...]:
    """Attributes named in a question, in order: quoted ('Bald', "Big_Nose") or written with underscores."""
    found = [attribute_named(m) for m in re.findall(r"['\"]([^'\"]+)['\"]", text)]
    found += [attribute_named(m) for m in re.findall(r"\b\w+(?:_\w+)+\b", text)]
    found += [attribute_named(w) for w in re.split(r"[,:.?]\s*", text)]
    return tuple(dict.fromkeys(a for a in found if a))


PICTURES = r"(images?|pictures?|photos?|photographs?)"
# The option forms whose options are attributes, first match wins ("NOT present" before "present").
FORM_WORDS = (
    (r"\bmost (frequent|common)\b", "most_frequent"),
    (r"\bunique to\b|\bonly one (of the )?images?\b", "unique"),
    (r"\bin common\b|\bcommon to\b|\bboth images have\b|\ball (of the )?images have\b", "common"),
    (r"\bany of the images\b", "any"),
    (r"\bnot present\b|\babsent\b|\bmissing\b|\bnot (have|show)\b", "absent"),
    (r"\b(present|prominent|identify|has|have|shows?|visible)\b", "present"),
)


def _form(q: str, n: int) -> str | None:
    if re.search(r"\bhow many\b", q):
        if re.search(rf"\bhow many {PICTURES}\b", q):
            return "images_count"
        if re.search(r"\bcommon\b", q):
            return "common_count"
        if re.search(r"\bacross (all|the) images\b|\bin (all|any of) the images\b", q) and n > 1:
            return "union_count"
        return "count"
    if re.search(rf"\bwhich {PICTURES}\b", q):
        lacking = re.search(r"\b(lack|lacks|do not have|does not have|don't have|without)\b", q)
        return "images_without" if lacking else "images_with"
    return next((form for pattern, form in FORM_WORDS if re.search(pattern, q)), None)


def read(question: str, options: list[tuple[str, str]], n_images: int) -> AttributeReading | None:
    """The reading of a CelebA attribute question, or None when it is not one (options that are not all attributes,
    image sets or counts; no attribute form)."""
    q = " ".join(question.lower().split())
    option_attributes = [attribute_named(text) for _, text in options]
    names = _named_in(question)
    about_attributes = bool(re.search(r"\battributes?\b", q)) and "demographic" not in q
    form = _form(q, n_images)
    if not options and about_attributes and form in (None, "present"):
        return AttributeReading("describe", n_images, (), ())
    named = names or any(option_attributes) or "how many attributes" in q
    if form is None or not (about_attributes and named or options and all(option_attributes)):
        return None
    listed = form.endswith("count") and form != "images_count"
    if form in ("present", "absent", "most_frequent", "unique", "common", "any"):
        if not (options and all(option_attributes)):
            return None
        claims = tuple((letter, text, a) for (letter, text), a in zip(options, option_attributes, strict=True))
        return AttributeReading(form, n_images, names, claims)
    counted: list[tuple[str, str, Any]] = []
    for letter, text in options:
        claim = meaning.parse(str(text), n_images)
        if claim.kind == "count" or (claim.kind == "images" and form.startswith("images_with")):
            counted.append((letter, text, claim.value))
        else:
            return None
    target = (names if len(names) > 1 else NAMES) if listed else names[:1]
    if not target:
        return None
    return AttributeReading(form, n_images, target, tuple(counted))


def holds(reading: AttributeReading, value: str | int | tuple, labels: list[set[str]]) -> bool:
    """Whether an option's value is right when image i has exactly the attributes labels[i]."""
    form = reading.form
    if form == "present":
        return value in labels[0] if reading.images == 1 else all(value in image for image in labels)
    if form == "absent":
        return all(value not in image for image in labels)
    if form == "count":
        return sum(a in labels[0] for a in reading.target) == value
    if form == "union_count":
        return sum(any(a in image for image in labels) for a in reading.target) == value
    if form == "common_count":
        return sum(all(a in image for image in labels) for a in reading.target) == value
    if form.startswith("images_"):
        having = frozenset(i + 1 for i, image in enumerate(labels) if reading.target[0] in image)
        if form == "images_count":
            return len(having) == value
        return (having if form == "images_with" else frozenset(range(1, reading.images + 1)) - having) == value
    counts = {a: sum(a in image for image in labels) for _, _, a in reading.options}
    if form == "most_frequent":
        return counts[value] == max(counts.values()) and list(counts.values()).count(counts[value]) == 1
    if form == "unique":
        return counts[value] == 1
    if form == "common":
        return counts[value] == reading.images
    return counts[value] > 0  # any


def only_key_true(reading: AttributeReading, labels: list[set[str]], key: str) -> bool:
    return all(holds(reading, value, labels) == (letter == key) for letter, _, value in reading.options)


def _count_law(p: np.ndarray) -> np.ndarray:
    """P(exactly k of independent events happen), k = 0..len(p) (the Poisson-binomial law)."""
    law = np.zeros(len(p) + 1)
    law[0] = 1.0
    for q in p:
        law[1:] = law[1:] * (1 - q) + law[:-1] * q
        law[0] *= 1 - q
    return law


def chances(reading: AttributeReading, probs: np.ndarray) -> dict[str, float]:
    """Each option's probability of being right; `probs`: (images, 40) attribute probabilities in NAMES' order."""
    p = lambda name: attribute_chances(probs, name)  # noqa: E731 - one attribute's probability in every image
    form, out = reading.form, {}
    if form.endswith("count") and form != "images_count":
        per = {
            "count": lambda a: p(a)[0],
            "union_count": lambda a: 1 - np.prod(1 - p(a)),
            "common_count": lambda a: np.prod(p(a)),
        }[form]
        law = _count_law(np.array([per(a) for a in reading.target]))
        return {letter: float(law[v]) if 0 <= v < len(law) else 0.0 for letter, _, v in reading.options}
    if form.startswith("images_"):
        q = p(reading.target[0])
        if form == "images_count":
            law = _count_law(q)
            return {letter: float(law[v]) if 0 <= v < len(law) else 0.0 for letter, _, v in reading.options}
        if form == "images_without":
            q = 1 - q
        for letter, _, chosen in reading.options:
            out[letter] = float(np.prod([q[i] if i + 1 in chosen else 1 - q[i] for i in range(len(q))]))
        return out
    for letter, _, name in reading.options:
        q = p(name)
        out[letter] = {
            "present": float(np.prod(q)),
            "absent": float(np.prod(1 - q)),
            "common": float(np.prod(q)),
            "any": float(1 - np.prod(1 - q)),
            "most_frequent": float(q.sum()),
            "unique": float(_count_law(q)[1]),
        }[form]
    return out


def answer(reading: AttributeReading, probs: np.ndarray) -> str:
    """The most probable option, written "B. text (specialist: ...)"."""
    scores = chances(reading, probs)
    letter = max(scores, key=lambda k: scores[k])  # ties go to the first option listed
    text = next(text for option, text, _ in reading.options if option == letter)
    return f"{letter}. {text} (specialist: measured CelebA attributes; {reading.form} {scores[letter]:.2f})"


def describe(probs: np.ndarray) -> str:
    """The attributes measured present (p > 0.5) in each image, most certain first."""
    parts = []
    for i, row in enumerate(probs):
        present = sorted((float(v), name) for name, v in zip(NAMES, row, strict=True) if v > 0.5)[::-1]
        names = ", ".join(f"{name} {v:.2f}" for v, name in present) or "none above 0.5"
        parts.append(f"image {i + 1}: {names}" if len(probs) > 1 else names)
    return "CelebA attributes measured present: " + "; ".join(parts) + "."


TRAINED_ON = "CelebA attribute model, trained on celebrity photos"


def free_answer(question: str, probs: np.ndarray, options: list[tuple[str, str]] | None = None) -> str:
    """A question in everyday words about attributes the CelebA model measures ("Is this person wearing glasses?",
    "Does he have a beard?", "Are they both smiling?"): yes or no by the probability that every image (any image, for
    "anyone", "someone", "any of") has every attribute named (a negated question, "not wearing a hat?", asks the
    opposite), as the Yes or No option when it has them; no attribute named: those measured present."""
    found = vocabulary.mentions(question, ("attribute",))
    if not found:
        return describe(probs)
    chances = {name: attribute_chances(probs, name) for name in dict.fromkeys(m.value for m in found)}
    per_image = np.prod([np.asarray(c, dtype=float) for c in chances.values()], axis=0)
    any_one = re.search(r"\b(anyone|anybody|someone|somebody|any of|either of|at least one)\b", question.lower())
    p = float(1 - np.prod(1 - per_image) if any_one else np.prod(per_image))
    if all(m.negated for m in found):
        p = 1 - p
    each = ", ".join(
        f"{name.replace('_', ' ')} " + " / ".join(f"{float(v):.0%}" for v in values) for name, values in chances.items()
    )
    why = f"{each}; {TRAINED_ON}, a guide for other photos"
    said = {meaning.parse(text, 1).kind: (letter, text) for letter, text in options or []}
    if "yes" in said and "no" in said:
        letter, text = said["yes" if p >= 0.5 else "no"]
        return f"{letter}. {text} (specialist: {why}; {max(p, 1 - p):.0%})"
    return f"{'Yes' if p >= 0.5 else 'No'} ({p:.0%}: {why})."
