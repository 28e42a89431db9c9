"""Question understanding: a question and its options read into a typed `Reading`, before anything is measured.

A reading names the measurement (`task`: age, gender, race, expression, identity, headpose, crowd, attack, fake,
quality), how the question asks about it (`form`), what it asks for (`target`: the labels or angle ranges it names)
and what every option claims (`meaning.Claim`). `holds(reading, claim, world)` says whether a claim is true in a
world (one label per image, an identity group per image, a yes/no per image), so that the answer is the option most
likely true over the worlds the measurements allow (specialist/joint.py). Forms:

  classify   one image, options name labels ("20-29", "Female", "happy", "-10 to 0", "47", "Bonafide")
  select     which images have the target (`negated`: which do not); options are image sets, "None of the above"
  count      how many images have the target
  yesno      does this image (or do these two) have the target / show the same person / share a label
  extreme    which image is oldest/youngest (`target`: "older" or "younger"); "Both/All are of the same age group"
  order      arrange the images by age (`target`: "ascending" or "descending"); options are image sequences
  same       which images share a label (race, expression, pose bin, identity pair)
  mixed      which images show different labels (race "of mixed origins")
  statement  per-image labels of a yes/no property ("Image 1 is attack and Image 2 is bonafide", "More attacks")
  first      which (or how many) of the other images show the first image's person
  others     which images differ from the one same-person pair
  pairs      how many pairs of images show the same person
  people     how many distinct people the images show
  types      attack types (the liveness model does not tell them apart: read, then answered "cannot measure")
  describe   no options: a sentence of measurements
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, cast

from facellm.specialist import meaning, vocabulary
from facellm.specialist.forms import LABEL_FORMS, Form, fits
from facellm.specialist.label_words import everyday_labels, named_labels, target_labels
from facellm.specialist.meaning import Claim, Property
from facellm.specialist.tasks import TASK_DIMENSIONS, task_of
from facellm.specialist.topics import (
    AXES,
    EXPRESSION_WORDS,
    FACE_ATTACK,
    IMPLIED_AXES,
    SYNTHETIC_FACE,
    VOCABULARY,
    aspects,
)
from facellm.specialist.views import Region, view_claims, view_region
from facellm.specialist.vocabulary import Dimension


@dataclass(frozen=True)
class Reading:
    task: str
    form: Form
    target: Any = None  # by form: labels (frozenset), a Region, an image pair, "older"/"younger", axes, ...
    negated: bool = False
    images: int = 1
    options: tuple[tuple[str, str, Claim], ...] = field(default=())
    prop: Property | None = None  # attack / fake: the yes/no property the options are read against
    asked: bool | None = None  # attack / fake: whether the question asks for the images where it holds
    every: bool = True  # a yes/no question about several images: all of them (False: any of them)
    alternatives: bool = False  # the options are an either/or question's alternatives ("sad or angry?")
    magnitude: bool = False  # head pose: the options are sizes of the angle either way ("turned by 15-30 degrees")

    @property
    def understood(self) -> bool:
        """Every option's claim was read (None of the above counts), or there are no options."""
        return all(claim.kind != "other" for _, _, claim in self.options)


def read(question: str, options: list[tuple[str, str]], n_images: int, task: str | None = None) -> Reading | None:
    """The reading of `question` (one line) with its lettered options about `n_images` images; None when its
    task (`task_of`, unless given) is none the specialist measures."""
    task = task or task_of(question, "", options, n_images)
    if task is None:
        return None
    q = " ".join(question.lower().split())
    if task == "aspect":
        return Reading(task, "describe", aspects(q), images=n_images)
    reader = _binary if task in ("attack", "fake") else _READERS.get(task, _plain)
    return reader(task, q, options, n_images)


def _claims(options, n: int, prop: Property | None = None, parse=None) -> tuple:
    parse = parse or (lambda text: meaning.parse(text, n, prop))
    return tuple((letter, text, parse(str(text))) for letter, text in options)


def _plain(task: str, q: str, options, n: int) -> Reading:
    """Crowd counts, image quality, single-image classification: options are read on their own."""
    form: Form = "classify" if options else "describe"
    return Reading(task, form, images=n, options=_claims(options, n, parse=lambda t: _label_claim(task, t, n)))


def _label_claim(task: str, text: str, n: int) -> Claim:
    """An option naming labels of `task` ("20-29", "Female", "a cheerful face", "not smiling", "East Asian"), a label
    per image ("the first photo shows a woman, the second a man"), "the same age", or what meaning.parse reads."""
    lowered = text.lower()
    if task in VOCABULARY:
        if (per_image := _per_image(task, text, n)) is not None:
            return per_image
        if task == "age" and re.search(r"\b(same|similar|equal(ly)?|alike|comparable)\b", lowered):
            if not re.search(r"\b(image|photo|picture)s? \d", lowered):
                return Claim("same")
        labels = named_labels(task, lowered, whole=True) or everyday_labels(task, text)
        if labels:
            return Claim("class", frozenset(labels))
    claim = meaning.parse(text, n)
    if claim.kind == "other" and re.search(r"^(both|all)\b.*\b(same|equal)\b", lowered):
        return Claim("same")
    return claim


def _per_image(task: str, text: str, n: int) -> Claim | None:
    """Labels stated image by image: "Image 1 shows a woman and image 2 a man", "the first is happy, the second sad";
    None unless every clause that names a label names its image and two images are named."""
    stated: dict[int, frozenset[str]] = {}
    for clause in re.split(r",|;|\band\b|\bwhile\b|\bbut\b|\bwhereas\b", text.lower()):
        labels = named_labels(task, clause, whole=True) or everyday_labels(task, clause)
        images = meaning.image_references(clause, n)
        if labels and len(images) != 1:
            return None
        if labels:
            stated[images[0]] = frozenset(labels)
    return Claim("per_image", stated) if len(stated) >= 2 else None


def _others(task: str, claims: tuple) -> tuple:
    """An "Other(s)" option among label options names every label the other options do not."""
    named = set().union(*(c.value for _, _, c in claims if c.kind == "class"))
    rest = frozenset(VOCABULARY.get(task, ())) - named
    return tuple(
        (letter, text, Claim("class", rest) if re.fullmatch(r"\s*others?\s*", text.lower()) else claim)
        for letter, text, claim in claims
    )


def _negated(q: str, labels_at: int, task: str | None = None) -> bool:
    """Whether the question asks about the labels' absence: "not" before its first label (by FaceXBench's words at
    `labels_at`, else by the vocabulary: "Who does not look cheerful?")."""
    if labels_at >= 0:
        return meaning.negated(q, labels_at)
    found = vocabulary.mentions(q, (TASK_DIMENSIONS[task],)) if task in TASK_DIMENSIONS else []
    return found[0].negated if found else False


def _label_task(task: str, q: str, options, n: int) -> Reading:
    """Age, gender, race and expression questions over one or several images: the first row of LABEL_FORMS that
    fits gives the form; free questions are read by `_free_label_question`."""
    target = target_labels(task, q)
    if not options:
        return _free_label_question(task, q, n, target)
    claims = _others(task, _claims(options, n, parse=lambda t: _label_claim(task, t, n)))
    form = next(row.form for row in LABEL_FORMS if fits(row, task, q, target, claims, n))
    if form == "order":
        direction = "descending" if re.search(r"descending|oldest to youngest|decreasing", q) else "ascending"
        return Reading(task, form, direction, images=n, options=_claims(options, n, parse=_sequence))
    if form == "extreme":
        first = re.search(LABEL_FORMS[1].cue, q)
        older = first is not None and re.match("old|eld", first.group(1)) is not None
        return Reading(task, form, "older" if older else "younger", images=n, options=claims)
    if form in ("mixed", "same", "classify") and not (form == "classify" and target and n > 1):
        return Reading(task, form, images=n, options=claims)
    negated = _negated(q, _first_mention(task, q), task)
    return Reading(task, form, target, negated, images=n, options=claims, every=_every(q))


def _free_label_question(task: str, q: str, n: int, target: frozenset) -> Reading:
    """Open questions: "Is the person in the second photo older than the first?", "Is she a woman?"."""
    if task == "age" and (m := re.search(r"\b(older|younger)\b", q)) and n >= 2:
        first = _ordinal_images(q)
        subject = first[0] if first else 1
        return Reading(task, "yesno", (m.group(1), subject), images=n)
    if re.search(r"\b(same|share)\b", q) and n >= 2:
        return Reading(task, "yesno", "same", images=n)
    negated = _negated(q, _first_mention(task, q), task)
    if target and re.search(r"\bhow many\b|\bcount\b|\bnumber of\b", q):
        return Reading(task, "count", target, negated, images=n)
    if target and re.search(r"\b(which|who|select|pick|identify)\b", q):
        return Reading(task, "select", target, negated, images=n)
    if target and re.match(YES_NO_QUESTION, q):
        return Reading(task, "yesno", target, negated, images=n, every=_every(q))
    return Reading(task, "describe", target, images=n)


ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "left": 1, "right": 2}
YES_NO_QUESTION = r"(is|are|does|do|has|have|was|were|did|can|could|would|will)\b"


def _every(q: str) -> bool:
    """A yes/no question about several images asks whether all of them have the target, unless it says either/any."""
    return not re.search(r"\b(either|any|at least one|one of (them|the|these)|anyone|anybody|someone)\b", q)


def _ordinal_images(q: str) -> list[int]:
    """Images named in order of mention: "image 2", "the second photo", "the first"."""
    found = []
    for m in re.finditer(
        r"\b(?:image|photo|picture|person|face)s? (\d)\b|\b(first|second|third|fourth|fifth|sixth"
        r"|left|right)\b",
        q,
    ):
        found.append(int(m.group(1)) if m.group(1) else ORDINALS[m.group(2)])
    return found


def _first_mention(task: str, q: str) -> int:
    """Where the question first names a label of `task` (for the negation check), or -1."""
    vocabulary = {
        "gender": r"female|male|wom[ae]n|m[ae]n|girl|boy|gender",
        "race": r"race|asian|black|white|indian|middle|latino|hispanic|descent|origin",
        "expression": r"expression|emotion|(?<!\w)'|" + "|".join(w for ws in EXPRESSION_WORDS.values() for w in ws),
        "age": r"age|\d|teen|child|elder",
    }
    m = re.search(rf"\b({vocabulary.get(task, 'x^')})", q)
    return m.start() if m else -1


def _sequence(text: str) -> Claim:
    numbers = [int(n) for n in re.findall(r"\d+", text)]
    if len(numbers) >= 2 and len(set(numbers)) == len(numbers):
        return Claim("order", tuple(numbers))
    return meaning.parse(text, len(numbers) or 1)


def _binary(task: str, q: str, options, n: int) -> Reading:
    """Anti-spoofing and synthetic faces: a yes/no property per image."""
    prop = FACE_ATTACK if task == "attack" else SYNTHETIC_FACE
    claims = tuple(
        (letter, text, Claim("types", text) if re.search(r"\btypes?\b", text.lower()) else _said(task, text, claim, n))
        for letter, text, claim in _claims(options, n, prop)
    )
    if task == "attack" and re.search(r"\btypes?\b", q) or any(c.kind == "types" for _, _, c in claims):
        return Reading(task, "types", q, images=n, options=claims, prop=prop)
    if task == "fake" and re.search(r"\bsame (identity|person)\b", q):
        form: Form = "count" if re.search(r"\bhow many\b", q) else "same"
        return Reading(task, form, "identity", images=n, options=_claims(options, n), prop=prop, asked=True)
    form = cast(Form, "describe" if not options else "statement")
    return Reading(task, form, images=n, options=claims, prop=prop, asked=_asked(task, q, prop))


def _asked(task: str, q: str, prop: Property) -> bool | None:
    """Whether the question asks where the property holds: by its words ("attack", "real"), else by the vocabulary
    ("a printed picture held up to the camera" asks about an attack, "a live person" about its opposite)."""
    asked = meaning.asked_property(q, prop)
    if asked is not None:
        return asked
    said = vocabulary.values(q, cast(Dimension, task))
    return (said <= {"spoof", "fake"}) if len(said) == 1 else None


def _said(task: str, text: str, claim: Claim, n: int) -> Claim:
    """An attack/fake option meaning.parse left unread, read by the vocabulary for one image: "a printed photo held
    up to the camera" (attack), "this face was made by a computer" (fake), "a live person" (not an attack)."""
    if claim.kind != "other" or n != 1:
        return claim
    said = vocabulary.values(text, cast(Dimension, task))  # attack and fake are dimensions
    if len(said) == 1:
        return Claim("class", said <= {"spoof", "fake"})
    return claim


def _identity(task: str, q: str, options, n: int) -> Reading:
    """Same-person questions in FaceXBench's forms and others (the forms are the `first`... rows in the module doc)."""
    claims = _claims(options, n)
    base: dict[str, Any] = dict(images=n, options=claims)
    if re.search(r"\b(how many|count the|number of)( matching)? pairs\b", q):
        return Reading(task, "pairs", **base)
    if re.search(
        r"(how many|count the|number of) (unique |different |distinct |separate )?(identities|people|"
        r"persons|individuals)",
        q,
    ):
        return Reading(task, "people", **base)
    if not options and n == 2:  # "Is the person in the first photo also in the second?"
        return Reading(task, "yesno", (1, 2), images=n)
    anchor = _anchor(q)
    if anchor is None and re.search(r"\b(first|1st) (image|photo|picture)\b|\bperson a\b", q):
        anchor = 1
    if anchor is not None and anchor <= n:
        negated = bool(re.search(r"\bnot\b|n't\b", q.split("person a", 1)[-1] if "person a" in q else q))
        if negated:  # "All images are person A" answers "which are not person A?" with none of them
            claims = tuple(
                (letter, text, Claim("images", frozenset()) if re.search(r"\ball\b.*\bperson a\b", text.lower()) else c)
                for letter, text, c in claims
            )
        if not re.search(r"\bhow many\b|\bcount\b|\bnumber of\b", q):
            claims = meaning.numbers_as_images(claims, n)
        return Reading(task, "first", anchor, negated, images=n, options=claims)
    if re.search(
        r"\bdifferent from (that|this|the) (person|individual)|\bodd one out\b|\b(doesn't|does not) belong\b|"
        r"\b(somebody|someone) else\b|\bwhich (image|photo|picture|one) shows a different (person|individual)\b",
        q,
    ):
        return Reading(task, "others", images=n, options=meaning.numbers_as_images(claims, n))
    if re.search(r"\bwhich (two|pair|2)\b|\bwhich images? (show|are of|depict) the same\b", q):
        return Reading(task, "same", images=n, options=meaning.numbers_as_images(claims, n))
    named = _ordinal_images(q)
    pair = tuple(sorted(set(named)))[:2] if len(set(named)) >= 2 else tuple(range(1, n + 1)) if n > 2 else (1, 2)
    if not options or any(c.kind in ("yes", "no") for _, _, c in claims) or n == 2:
        return Reading(task, "yesno", pair, images=n, options=_claims(options, n, parse=same_claim))
    return Reading(task, "same", **base)


_PICTURED = r"(?:image|photo|photograph|picture|pic)"
_SOMEONE = r"(?:person|individual|man|woman|face|one|guy|lady|subject|someone)"
_ANCHOR = re.compile(
    rf"\bsame(?: {_SOMEONE})? as (?:(?:in|the one in|the {_SOMEONE} (?:in|from|of)) )?(?:the )?"
    rf"|\b{_SOMEONE} (?:shown |seen |pictured |depicted )?(?:in|from|of) (?:the )?"
)
_ANCHOR_IMAGE = re.compile(rf"{_PICTURED} (\d)\b|(first|second|third|fourth|fifth|sixth) (?:{_PICTURED}|one)\b")


def _anchor(q: str) -> int | None:
    """The image a "which" or "how many" identity question compares the others with: "Which images show the same
    person as image 2?", "How many photos show the person from the first photo?"."""
    if not re.search(r"\b(which|how many|what|who)\b", q):
        return None
    for m in _ANCHOR.finditer(q):
        if image := _ANCHOR_IMAGE.match(q, m.end()):
            return int(image.group(1)) if image.group(1) else ORDINALS[image.group(2)]
    return None


def same_claim(text: str) -> Claim:
    """A two-image identity option: yes/no, "the same person" (yes), "two different people" (no)."""
    claim = meaning.parse(text, 2)
    if claim.kind != "other":
        return claim
    lowered = text.lower()
    if re.search(r"\b(different|two (distinct |separate )?(people|persons|individuals)|not the same)\b", lowered):
        return Claim("no")
    return Claim("yes") if re.search(r"\bsame\b", lowered) else claim


def _headpose(task: str, q: str, options, n: int) -> Reading:
    """Angle bins of one image, images in named ranges (several axes at once), pairs sharing a bin; views in words
    ("in profile", "looking to the left", "from above") as yaw/pitch regions (`view_region`)."""
    axes = tuple(a for a in AXES if re.search(rf"\b{a}\b", q))
    claims = _claims(options, n)
    base: dict[str, Any] = dict(images=n, options=claims)
    convention = vocabulary.convention(q) or "viewer"
    asked = view_region(q, convention, True, False) if not axes else None  # "turned left": past FRONTAL
    if not any(c.kind == "range" for _, _, c in claims) and (views := view_claims(q, options, n)) is not None:
        if n == 1 or not any(c.kind == "images" for _, _, c in views):
            return Reading(task, "view", convention, images=n, options=views)
    answered = {c.kind for _, _, c in claims}
    if asked is not None and (not options or answered & {"images", "count"} or answered <= {"yes", "no"}):
        form: Form = "count" if re.search(r"\bhow many\b|\bcount\b|\bnumber of\b", q) else "select"
        if answered <= {"yes", "no"} and (n == 1 or re.match(YES_NO_QUESTION, q)):
            form = "yesno"
        negated = any(m.negated for m in vocabulary.mentions(q, ("view",)))
        return Reading(task, form, asked, negated, every=_every(q), **base)
    sizes = bool(claims) and all(c.kind == "range" and c.value[0] >= 0 for _, _, c in claims)
    if not axes and n == 1 and sizes and (implied := next((a for p, a in IMPLIED_AXES if re.search(p, q)), None)):
        return Reading(task, "classify", (implied,), magnitude=True, **base)  # "how far is the head turned?"
    if not options or not axes:
        return Reading(task, "describe", axes, images=n, options=claims)
    if re.search(r"\bsame\b.*\bbin\b|\bshare\b", q):
        return Reading(task, "same", axes[:1], **base)
    ranges = [
        (min(float(m.group(1)), float(m.group(2))), max(float(m.group(1)), float(m.group(2))))
        for m in re.finditer(r"(-?\d+(?:\.\d+)?)\s*(?:to|and)\s*(-?\d+(?:\.\d+)?)", q)
    ]
    if n == 1 and not ranges:
        return Reading(task, "classify", axes[:1], **base)
    if len(ranges) != len(axes):
        return Reading(task, "describe", axes, images=n)
    target: Region = (tuple(zip(axes, ranges)),)
    counted: Form = "count" if re.search(r"\bhow many\b|\bcount\b|\bnumber of\b", q) else "select"
    return Reading(task, counted, target, meaning.negated(q, q.find(axes[0])), **base)


def _presence(task: str, q: str, options, n: int) -> Reading:
    """Whether a face or person is shown: options say yes/no, "there is someone", "nobody", "the photo is empty"."""

    def claim(text: str) -> Claim:
        parsed = meaning.parse(text, n)
        if parsed.kind != "other":
            return parsed
        found = vocabulary.mentions(text, ("presence",))
        if not found:
            return parsed
        shown = found[0].value == "face"
        return Claim("yes" if shown != found[0].negated else "no")

    return Reading(task, "yesno", None, images=n, options=_claims(options, n, parse=claim), every=_every(q))


_READERS = {
    "age": _label_task,
    "gender": _label_task,
    "race": _label_task,
    "expression": _label_task,
    "identity": _identity,
    "headpose": _headpose,
    "presence": _presence,
}
