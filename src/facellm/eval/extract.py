"""Read the chosen option letter out of a model's answer, two ways.

`extract_compat` makes the same decision as FaceXBench's official aggregation script for every answer, faults
included, so our numbers line up with published tables. Its decision procedure, restated:
  1. try six label shapes (a bare letter, "Option X", "X.", "X:", "X -", "(X)") anchored at the start of the answer,
     in that order; the first whose letter is an option label (upper case only) wins;
  2. otherwise search the whole answer for each shape in turn, returning the first label found;
  3. otherwise return the first option (in option order) whose text equals or occurs inside the answer.
Known faults that follow: "A woman..." reads as A; lowercase letters never count; "12" contains option "1";
an option whose text holds another option's text can lose to it; "B... no, C" reads as B.

`extract_strict` reads what the answer means, trying in order: explicit answer markers ("Answer: C", "the answer is
d", "final answer: B"; the last one wins, so chain-of-thought final lines and self-corrections count), a trailing
correction ("B... no, C"), a reply that is only a letter in any case, a letter opening the reply followed by
punctuation ("b) ...", "C. text"), a single parenthesised letter anywhere, then option texts matched on word
boundaries with the longest match winning and negated mentions ("not X") dropped. Hedges ("B or C") and refusals
give `None`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_COMPAT_SHAPES = [
    re.compile(p)
    for p in (
        r"\b\(?([A-Za-z])\)?\b",
        r"\bOption\s+([A-Za-z])\b",
        r"\b([A-Za-z])\.",
        r"\b([A-Za-z]):",
        r"\b([A-Za-z])\s+-",
        r"\b\(([A-Za-z])\)",
    )
]


def extract_compat(prediction: str | None, options: Sequence[object]) -> str | None:
    """The official FaceXBench extractor's decision for `prediction` (see module docstring)."""
    text = (prediction or "").strip()
    labels = [chr(ord("A") + i) for i in range(len(options))]
    for shape in _COMPAT_SHAPES:
        found = shape.match(text)
        if found and found.group(1) in labels:
            return found.group(1)
    for shape in _COMPAT_SHAPES:
        for letter in shape.findall(text):
            if letter in labels:
                return letter
    for label, option in zip(labels, options):
        if str(option).strip() in text:  # equality is a special case of containment
            return label
    return None


_MARKER = re.compile(
    r"(?:final\s+answer|answer\s+is|answer\s*[:=]|correct\s+(?:option|choice|answer)\s+(?:is|would\s+be)"
    r"|(?:option|choice)\s+is|\boption|\bchoice|i\s+(?:choose|pick|select))"
    r"\s*[:\-]?\s*\**\s*\(?\s*([A-Za-z])\s*\)?(?![A-Za-z0-9])",
    re.IGNORECASE,
)
_ONLY_LETTER = re.compile(r"^\(?\s*([A-Za-z])\s*\)?[.):]?$")
_LEADING_LETTER = re.compile(r"^\(?([A-Za-z])(?:\)|[.:]\s|\s+-\s)")
_CORRECTION = re.compile(r"(?:\.\.\.|[,;.])\s*(?:no|actually|wait)[,:!]?\s*\(?([A-Za-z])\)?[.!]?$", re.IGNORECASE)
_PARENTHESISED = re.compile(r"\(([A-Za-z])\)")
_HEDGE = re.compile(r"^\(?([A-Za-z])\)?\s+(?:or|and/or|/)\s+\(?([A-Za-z])\)?\W*$", re.IGNORECASE)
_NEGATED = re.compile(r"(?:\bnot|n't|\bisn't)\s+(?:the\s+|option\s+)?$", re.IGNORECASE)


def extract_strict(prediction: str | None, options: Sequence[object]) -> str | None:
    """The option the answer commits to, or `None` when it commits to none (see module docstring)."""
    text = (prediction or "").replace("**", "").replace("__", "").strip()
    if not text:
        return None
    labels = [chr(ord("A") + i) for i in range(len(options))]

    def label(letter: str) -> str | None:
        upper = letter.upper()
        return upper if upper in labels else None

    if _HEDGE.match(text):
        return None
    markers = [label(m.group(1)) for m in _MARKER.finditer(text)]
    markers = [m for m in markers if m]
    if markers:
        return markers[-1]
    correction = _CORRECTION.search(text)
    if correction and label(correction.group(1)):
        return label(correction.group(1))
    for shape in (_ONLY_LETTER, _LEADING_LETTER):
        found = shape.match(text)
        if found and label(found.group(1)):
            return label(found.group(1))
    bracketed = {label(letter) for letter in _PARENTHESISED.findall(text)} - {None}
    if len(bracketed) == 1:
        return bracketed.pop()
    return _match_option_text(text, labels, options)


def _match_option_text(text: str, labels: list[str], options: Sequence[object]) -> str | None:
    """The one option whose text the answer affirms: word-bounded, longest match first, negated mentions dropped."""
    lowered = text.lower()
    spans: list[tuple[int, int, str]] = []
    for letter, option in sorted(zip(labels, options), key=lambda pair: -len(str(pair[1]))):
        needle = str(option).strip().lower()
        if not needle:
            continue
        for found in re.finditer(rf"(?<![\w-]){re.escape(needle)}(?![\w])", lowered):
            start, end = found.span()
            if any(start < e and s < end for s, e, _ in spans):
                continue  # inside a longer option's match
            spans.append((start, end, letter))
    affirmed = {letter for start, _, letter in spans if not _NEGATED.search(lowered[max(0, start - 20) : start])}
    return affirmed.pop() if len(affirmed) == 1 else None
