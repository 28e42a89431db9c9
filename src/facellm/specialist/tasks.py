"""What a question is about, decided once for every path: the measurement (`Task`) that answers it, from its words,
the words only free wordings use, a task description before it, or what its options name; and a free either/or
question's alternatives."""

from __future__ import annotations

import math
import re
from typing import Literal, cast

from facellm.specialist import celeb, meaning, vocabulary
from facellm.specialist.label_words import named_labels
from facellm.specialist.topics import ELSEWHERE, VOCABULARY, free_topic, topic
from facellm.specialist.vocabulary import Dimension

Task = Literal[
    "age",
    "gender",
    "race",
    "expression",
    "identity",
    "headpose",
    "crowd",
    "attack",
    "fake",
    "quality",
    "aspect",
    "presence",
    "attribute",
]
# What a vocabulary dimension is measured by (the task that answers a question about it).
DIMENSION_TASKS: dict[Dimension, Task] = {
    "gender": "gender",
    "age": "age",
    "race": "race",
    "expression": "expression",
    "view": "headpose",
    "identity": "identity",
    "attack": "attack",
    "fake": "fake",
    "presence": "presence",
    "attribute": "attribute",
    "quality": "quality",
}
TASK_DIMENSIONS: dict[str, Dimension] = {task: dimension for dimension, task in DIMENSION_TASKS.items()}


def task_of(question: str, context: str, options: list[tuple[str, str]], n_images: int) -> Task | None:
    """The measurement a question is about, decided once for every path (multiple choice, free, CelebA): a CelebA
    attribute question; else the question's own words (a man or woman named as the subject, "the man", does not
    make it a gender question when it asks about something else); then words that only free wordings use ("How does
    she feel?", "Which way is he looking?", "Is there anybody?"); then a task description before the question; then
    what most of the options name. Options that name another measurement than the question's words and none of its
    own decide ("How does the man seem?" with "cheerful", "gloomy" is an expression question). None: nothing the
    models measure."""
    if celeb.read(question, options, n_images) is not None:
        return "attribute"
    q = " ".join(question.lower().split())
    if re.search(ELSEWHERE, q) or any(re.search(ELSEWHERE, str(text).lower()) for _, text in options):
        return None
    subject = re.sub(
        r"\b(the|this|that|these|those|each|every) (man|woman|men|women|boy|girl|guy|lady|male|female)s?"
        r"( or (the )?(man|woman|boy|girl|guy|lady|male|female))?\b",
        r"\1 person",
        q,
    )
    described = not options  # a request for a description has no options
    offered = [d for d in _VOTERS if not options and len(_alternatives(subject, d)) >= 2]
    if offered and (n_images >= 2 or offered[0] != "identity"):
        return DIMENSION_TASKS[offered[0]]  # "a real photo or a computer-made face?": what its alternatives name
    found = (
        topic(subject, described)
        or free_topic(subject, n_images)
        or topic(q, described)
        or _named_task(subject)
        or (topic(context, described) if context else None)
    )
    if found == "identity" and n_images == 1 and re.search(r"\b(how many|number of)\b", q):
        return "crowd"  # "How many different people are in this photo?": its faces, counted
    voted = _option_vote(options)
    if found and voted and voted != found and found in _SWITCHABLE:
        if _reading(found, options, n_images) < _reading(voted, options, n_images):
            return voted
    if found or voted:
        return cast(Task, found or voted)
    if any(m.value == "nobody" for _, t in options for m in vocabulary.mentions(t, ("presence",))):
        return "presence"  # "What does the picture show?" with "nobody", "an empty scene"
    return cast(Task | None, topic(" ".join(str(text) for _, text in options)))


_SWITCHABLE = ("age", "gender", "race", "expression", "headpose", "attack", "fake")
_VOTERS: tuple[Dimension, ...] = ("gender", "age", "race", "expression", "view", "identity", "attack", "fake")


def _named_task(q: str) -> Task | None:
    """The task of the first measured thing a question names in everyday words ("Does she look astonished?")."""
    found = [m for m in vocabulary.mentions(q, (*_VOTERS, "attribute")) if m.dimension != "identity"]
    return DIMENSION_TASKS[found[0].dimension] if found else None


def _option_vote(options: list[tuple[str, str]]) -> Task | None:
    """The task whose dimension most options name, when at least half of them (and two) do; CelebA attributes only
    when every option names one."""
    listed = [str(text) for _, text in options if meaning.parse(str(text), 1).kind != "none_of_above"]
    if not listed:
        return None
    named = [{m.dimension for m in vocabulary.mentions(text)} for text in listed]
    if all("attribute" in dims for dims in named):
        return "attribute"
    counts = {d: sum(d in dims for dims in named) for d in _VOTERS}
    best = max(counts, key=lambda d: counts[d])
    return DIMENSION_TASKS[best] if counts[best] >= max(2, math.ceil(len(listed) / 2)) else None


def _reading(task: str, options: list[tuple[str, str]], n: int) -> int:
    """How many options read as claims about `task`: its labels or views, or image sets, counts, yes/no."""
    dimension = TASK_DIMENSIONS.get(task)
    count = 0
    for _, text in options:
        named = dimension is not None and vocabulary.values(str(text), dimension, include_negated=True)
        structural = meaning.parse(str(text), n).kind not in ("other", "none_of_above", "undetermined")
        labelled = task in VOCABULARY and named_labels(task, str(text).lower(), whole=True)
        count += bool(named or structural or labelled)
    return count


def either_or(question: str, task: str) -> list[tuple[str, str]]:
    """A free either/or question's alternatives as options, in the question's order ("Does she look sad or angry?"
    -> sad, angry; "Is the face turned to the left or to the right?" -> left, right; "a man or a woman?"); [] when
    the question does not offer two alternatives of what it is about."""
    dimension = TASK_DIMENSIONS.get(task)
    phrases = _alternatives(question, dimension) if dimension is not None else []
    return [(letter, phrase) for letter, phrase in zip("ABCDEFGH", phrases)] if len(phrases) >= 2 else []


def _alternatives(question: str, dimension: Dimension) -> list[str]:
    """The phrases of an "X or Y" question that name different values of `dimension`, one per value set ("genuine"
    and "a real person" are one alternative: both say live)."""
    if not re.search(r"\bor\b", question.lower()):
        return []
    spans: dict[tuple[int, int], tuple[str, set[str]]] = {}
    for m in vocabulary.mentions(question, (dimension,)):
        if not m.negated:
            spans.setdefault((m.start, m.end), (m.phrase, set()))[1].add(m.value)
    chosen: dict[frozenset[str], str] = {}
    for phrase, named in spans.values():
        chosen.setdefault(frozenset(named), phrase)
    return list(chosen.values())
