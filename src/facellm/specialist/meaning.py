"""What a multiple-choice option claims, read from its wording, and how likely the claim is given measurements.

An option is turned into a `Claim` (yes, no, a count, a set of images, a label per image, a number range, a class,
"none of the above", "cannot be determined", "no face"). For questions about a yes/no property of each image
(is it an attack, is it fake), `true_under()` says whether a claim holds for one true/false assignment of the
images; specialist/joint.py weighs every option over all assignments. So "Image 1 is attack and Image 2 is
bonafide", "Both are fake" or "2" are read for what they say, in any phrasing.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal

ClaimKind = Literal[
    "yes",
    "no",
    "count",
    "tally",
    "images",
    "labels",
    "per_image",
    "majority",
    "range",
    "class",
    "order",
    "same",
    "view",
    "types",
    "none_of_above",
    "undetermined",
    "no_face",
    "other",
]

NUMBER_WORDS = {"zero": 0, "none": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}


COUNTED = r"(?:people|persons|faces|individuals)"  # what an open-ended count option may name after its number
_ABOVE = ("more than", "over", "above", "greater than")
BOUND = r"(more than|over|above|greater than|at least|fewer than|less than|under|below|at most)"  # a count's bound


@dataclass(frozen=True)
class Claim:
    """What an option claims. `value` by kind: count int; range (low, high); images frozenset of image numbers;
    class a frozenset of labels (a bool for attack/fake); labels {image: bool}; per_image {image: frozenset of
    labels}; tally (count, holds); majority bool or None; order a tuple of image numbers; view (Region, negated);
    types and other the option's text; none for the rest."""

    kind: ClaimKind
    value: Any = None


@dataclass(frozen=True)
class Property:
    """A yes/no property of one image: `words` say it holds, `opposite` that it does not (e.g. attack / bonafide)."""

    words: tuple[str, ...]
    opposite: tuple[str, ...]


def _has(text: str, words: tuple[str, ...]) -> bool:
    return any(re.search(rf"\b{re.escape(w)}", text) for w in words)


def _image_numbers(text: str) -> list[int]:
    """Image numbers named in `text`: "Image 1 and Image 3", "Images 1 and 3", "Photo 3, Picture 1", "Person 2"."""
    numbers: list[int] = []
    word = r"(?:image|photo|photograph|picture|pic|person|individual|subject)s?"
    for match in re.finditer(rf"\b{word}\s+(\d+(?:\s*(?:,\s*(?:and\s+)?|and\s+|&\s*)(?:{word}\s+)?\d+)*)", text):
        numbers += [int(n) for n in re.findall(r"\d+", match.group(1))]
    return numbers


_ORDINAL_WORDS = {
    "first": 1, "1st": 1, "former": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4,
    "fifth": 5, "5th": 5, "sixth": 6, "6th": 6,
}  # fmt: skip
_PICTURE = r"(?:one|image|photo|photograph|picture|pic|shot|person|face|individual|man|woman|people|portrait)"
_ORDINAL = re.compile(
    rf"\b(first|1st|former|second|2nd|third|3rd|fourth|4th|fifth|5th|sixth|6th|latter|last)\b(?! (?:of|time))"
    rf"|(?<!to )(?<!toward )(?<!towards )(?<!facing )\bthe (left|right)\b(?:[- ]hand)?(?! of)(?: side)?"
    rf"|\b(left|right)(?:[- ]hand)? {_PICTURE}\b"
)


def image_references(text: str, n_images: int) -> list[int]:
    """Images a text names, in order: numbered ("image 2", "photos 1 and 3") or by words ("the first picture", "the
    second one", "the latter", "the person on the left", "the right-hand photo"; left and right for two images)."""
    numbers = _image_numbers(text.lower())
    for m in _ORDINAL.finditer(text.lower()):
        word = m.group(1) or m.group(2) or m.group(3)
        if word in ("latter", "last"):
            numbers.append(n_images)
        elif word in ("left", "right"):
            if n_images == 2:
                numbers.append(1 if word == "left" else 2)
        else:
            numbers.append(_ORDINAL_WORDS[word])
    return list(dict.fromkeys(numbers))


def _subject(text: str, n_images: int) -> frozenset[int] | None:
    """Which images a clause is about: numbered or named ones, or both/all/neither/none."""
    numbers = image_references(text, n_images)
    if numbers:
        return frozenset(numbers)
    if re.search(r"\b(both|all)\b", text):
        return frozenset(range(1, n_images + 1))
    if re.search(r"\b(neither|none|no image|no images)\b", text):
        return frozenset()
    return None


def parse(option: str, n_images: int, prop: Property | None = None) -> Claim:
    """The claim an option makes (`prop` lets per-image statements such as "Image 1 is fake" be read)."""
    text = " ".join(str(option).lower().replace("-", " - ").split())
    text = re.sub(r"(?<=\d) - (?=\d)", " to ", text).replace(" - ", " -").replace("- ", "-")
    text = re.sub(r"(?<=\d) ?(degrees?|deg|°)$", "", text)  # an angle option: "10 to 30 degrees"
    if "none of the above" in text or "none of these" in text:
        return Claim("none_of_above")
    if re.search(
        r"\b(cannot|can't|can not|unable to) (be )?(determine|determined|tell|say)|\bnot (be )?"
        r"determin|\bundetermin|\bunclear\b|\bnot enough information",
        text,
    ):
        return Claim("undetermined")
    if re.search(r"\bno (visible )?faces?\b|\bshow no face|\bwithout (a )?face", text):
        return Claim("no_face")
    if re.fullmatch(r"-?\d+", text):
        return Claim("count", int(text))
    if m := re.fullmatch(
        rf"(zero|one|two|three|four|five|six)(?: of (?:them|the \w+))?(?: (?:{COUNTED}|images?|photos?|pictures?))?",
        text,
    ):
        return Claim("count", NUMBER_WORDS[m.group(1)])
    if m := re.fullmatch(r"(?:between )?(-?\d+(?:\.\d+)?) (?:to|and) (-?\d+(?:\.\d+)?)", text):
        low, high = sorted((float(m.group(1)), float(m.group(2))))
        return Claim("range", (low, high))
    if m := re.fullmatch(
        rf"{BOUND} "
        rf"(\d+)(?: or more| or fewer| or less)?(?: {COUNTED})?",
        text,
    ):
        bound, n = m.group(1), int(m.group(2))
        if bound in ("at least", "at most"):
            return Claim("range", (float(n), math.inf) if bound == "at least" else (0.0, float(n)))
        return Claim("range", (float(n + 1), math.inf) if bound in _ABOVE else (0.0, float(n - 1)))
    if re.match(r"(yes|true|correct)\b", text):
        return Claim("yes")
    if re.match(r"(no|false|incorrect)\b(?! images?\b)", text):  # "No image(s)": the empty set, read below
        return Claim("no")
    if prop is not None and (labels := _labels(text, n_images, prop)) is not None:
        return labels
    if (subject := _subject(text, n_images)) is not None:
        # "Image 1 is ..." is a statement about it; "the person on the left is older" names one image
        if not re.search(r"\b(is|are)\b", text) or (prop is None and len(subject) == 1 and not _image_numbers(text)):
            return Claim("images", subject)
    if m := re.fullmatch(r"(only )?(\w+) images? (is|are) (an? )?(.+)", text):
        count = NUMBER_WORDS.get(m.group(2))
        if count is not None and prop is not None and _has(m.group(5), prop.words + prop.opposite):
            holds = _has(m.group(5), prop.words) and not _has(m.group(5), prop.opposite)
            return Claim("tally", (count, holds))  # `count` images have (or lack) the property
    if prop is not None and (m := re.fullmatch(r"more (.+)|(equal|same) (number|count).*", text)):
        if m.group(1) is None:
            return Claim("majority", None)
        if _has(m.group(1), prop.words) != _has(m.group(1), prop.opposite):
            return Claim("majority", _has(m.group(1), prop.words))
    if prop is not None and len(text.split()) <= 3:
        if _has(text, prop.opposite) and not text.startswith("not"):
            return Claim("class", False)
        if _has(text, prop.words):
            return Claim("class", True)
    return Claim("other", text)


def _labels(text: str, n_images: int, prop: Property) -> Claim | None:
    """Per-image statements: "Image 1 is bonafide and Image 2 is attack", "Images 1 and 3 are fake, Image 2 is
    real", "Both are fake", "All are attacks". None when the text is not made of such statements."""
    clauses = re.split(r",\s*(?:and\s+)?|;\s*|\s+and\s+(?=(?:the\s+)?(?:images?|both|all|neither|none)\b)", text)
    labels: dict[int, bool] = {}
    pending: set[int] = set()
    for clause in clauses:
        verb = re.search(r"\b(is|are)\b", clause)
        if not verb:
            pending |= set(_image_numbers(clause))
            continue
        subject = _subject(clause[: verb.start()], n_images)
        predicate = clause[verb.end() :]
        if subject is None or "type" in predicate:
            return None
        positive, negative = _has(predicate, prop.words), _has(predicate, prop.opposite)
        if positive == negative:
            return None
        for image in subject | pending:
            labels[image] = positive and "not " not in predicate
        pending = set()
    return Claim("labels", labels) if labels and not pending else None


def asked_property(question: str, prop: Property) -> bool | None:
    """Whether a question asks for the images where the property holds (True) or does not (False)."""
    text = question.lower()
    positive = [m.start() for w in prop.words for m in re.finditer(rf"\b{re.escape(w)}", text)]
    negative = [m.start() for w in prop.opposite for m in re.finditer(rf"\b{re.escape(w)}", text)]
    if not positive and not negative:
        return None
    holds = bool(positive) and (not negative or min(positive) < min(negative))
    return holds != negated(text, min(positive if holds else negative))


def negated(text: str, position: int) -> bool:
    """Whether the sentence holding `position` says "not" (or "n't", "without") before it."""
    sentence = re.split(r"[.?!:]", text[:position])[-1]
    return bool(re.search(r"\b(not|without)\b|n't\b", sentence))


def true_under(claim: Claim, holds: tuple[bool, ...], asked: bool | None) -> bool | None:
    """Whether a claim is true when image i+1 has the property exactly where holds[i]; None: cannot be judged."""
    n = len(holds)
    selected = frozenset(i + 1 for i in range(n) if holds[i] == (asked if asked is not None else True))
    if claim.kind == "count":
        return asked is not None and len(selected) == claim.value
    if claim.kind == "tally":
        count, positive = claim.value
        return sum(h == positive for h in holds) == count
    if claim.kind == "majority":
        positives = sum(holds)
        return positives * 2 == n if claim.value is None else (positives * 2 > n) == claim.value and positives * 2 != n
    if claim.kind == "images":
        return asked is not None and selected == claim.value
    if claim.kind == "labels":
        return all(1 <= i <= n and holds[i - 1] == v for i, v in claim.value.items())
    if claim.kind == "class":
        return n == 1 and holds[0] == claim.value
    if claim.kind in ("yes", "no"):
        if n != 1 or asked is None:
            return None
        return (holds[0] == asked) == (claim.kind == "yes")
    if claim.kind in ("undetermined", "no_face"):
        return False
    return None


def numbers_as_images(claims: tuple, n: int) -> tuple:
    """Options of a "which images" question that are bare numbers ("2", "1 and 3") read as the images they number."""

    def images(claim: Claim, text: str) -> Claim:
        numbers = [claim.value] if claim.kind == "count" else list(claim.value) if claim.kind == "range" else []
        if alone := re.fullmatch(r"(?:only )?(\d+)(?: only)?", text.strip().lower()):  # "1 only"
            numbers = [int(alone.group(1))]
        if numbers and all(float(k).is_integer() and 1 <= k <= n for k in numbers):
            return Claim("images", frozenset(int(k) for k in numbers))
        return claim

    return tuple((letter, text, images(claim, text)) for letter, text, claim in claims)
