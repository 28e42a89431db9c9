"""Options about something other than what the question asks, weighed instead of declined.

An option the question's own reading leaves unread ("There is nobody in the photo" beside gender options, "The person
is wearing glasses" beside expressions) is still a statement the models may check: `chance` finds what it names in
the vocabulary (specialist/vocabulary.py), measures that on the images it is about, and gives the probability that
it holds, with the measurement that judged it. An option that names nothing measured gets `UNMEASURED`, a small prior:
it wins only when no measured option is more likely.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from facellm.errors import FaceLLMError
from facellm.faces.celeb_attributes import predict_many
from facellm.specialist import meaning, measure, vocabulary
from facellm.specialist.celeb import attribute_chances
from facellm.specialist.views import view_region
from facellm.specialist.vocabulary import Dimension, Mention

UNMEASURED = 0.15  # the probability given to an option that names nothing the models measure
PRESENT_IF_FOUND, PRESENT_IF_NOT = 0.97, 0.1  # P(a face is shown) when a detector finds one / finds none
_CHECKED: tuple[Dimension, ...] = (
    "gender",
    "age",
    "race",
    "expression",
    "view",
    "presence",
    "attack",
    "fake",
    "attribute",
)


@dataclass(frozen=True)
class Judged:
    """How an option was weighed: its probability and what judged it (a dimension, or "not measured")."""

    chance: float
    by: str


GENERIC = {"up", "down", "side", "front", "straight", "left", "right", "computer", "ai", "paper", "screen"}


def _named(text: str) -> list[Mention]:
    """What an option names that can be checked: not a subject's name ("the person"), and a single generic word
    ("up" in "held up to the camera") only in an option of three words or fewer."""
    short = len(text.split()) <= 3
    return [
        m
        for m in vocabulary.mentions(text, _CHECKED)
        if not (m.dimension == "presence" and _incidental(m)) and (short or m.phrase not in GENERIC)
    ]


def measurable(text: str) -> bool:
    """Whether an option names something the models measure (so that it can be weighed)."""
    return bool(_named(text))


class Measurements:
    """The images of one question, each measured at most once per kind however many options ask about it."""

    def __init__(self, images: list[Image.Image]) -> None:
        self.images = images
        self._made: dict[tuple[str, int], Any] = {}

    def of(self, kind: str, k: int) -> Any:
        """Image k's measurement of `kind` (a key of MEASURES)."""
        if (kind, k) not in self._made:
            self._made[(kind, k)] = MEASURES[kind](self.images[k])
        return self._made[(kind, k)]


MEASURES: dict[str, Callable[[Image.Image], Any]] = {
    "attributes": measure.attributes,
    "expression": measure.expression,
    "face": lambda image: measure.largest_face(image) is not None,
    "attack": measure.attack,
    "fake": measure.fake,
    "pose": measure.pose,
    "celeb": lambda image: predict_many([image]),
}


def chance(measured: Measurements, text: str) -> Judged:
    """The probability that the statement `text` holds of the images it names (all of them when it names none)."""
    found = _named(text)
    n = len(measured.images)
    if not found or not n:
        return Judged(UNMEASURED, "not measured")
    chosen = [k - 1 for k in meaning.image_references(text, n) if 1 <= k <= n] or list(range(n))
    by_dimension: dict[Dimension, list[Mention]] = {}
    for m in found:
        by_dimension.setdefault(m.dimension, []).append(m)
    total = 1.0
    try:
        for dimension, said in by_dimension.items():
            total *= float(np.prod([_holds(dimension, said, measured, k, text) for k in chosen]))
    except FaceLLMError:
        return Judged(UNMEASURED, "not measured")
    return Judged(total, "+".join(by_dimension))


def _incidental(m: Mention) -> bool:
    """ "the person", "this face": a presence word that only names the subject, not a claim that one is shown."""
    return m.value == "face" and m.phrase not in ("someone", "somebody", "anybody", "anyone", "visible face")


def _holds(dimension: Dimension, said: list[Mention], measured: Measurements, k: int, text: str) -> float:
    """P(what `said` states of `dimension` holds in image k): the named values' probability (1 minus it when the
    statement is negated)."""
    values = {m.value for m in said}
    if dimension in ("gender", "age", "race"):
        p = sum(v for label, v in measured.of("attributes", k)[dimension].items() if label in values)
    elif dimension == "expression":
        p = sum(v for label, v in measured.of("expression", k).items() if label in values)
    elif dimension == "presence":
        p = PRESENT_IF_FOUND if measured.of("face", k) else PRESENT_IF_NOT
        p = p if "face" in values else 1 - p
    elif dimension in ("attack", "fake"):
        positive = measured.of(dimension, k)
        p = positive if values & {"spoof", "fake"} else 1 - positive
    elif dimension == "attribute":
        probs = measured.of("celeb", k)
        p = float(np.prod([attribute_chances(probs, v)[0] for v in values]))
    else:  # view
        pose = measured.of("pose", k)
        region = view_region(text, vocabulary.convention(text) or "viewer", False, False)
        p = measure.region_chance(pose, region) if pose is not None and region is not None else UNMEASURED
    return 1 - p if all(m.negated for m in said) else p
