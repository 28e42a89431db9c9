"""Quality filters over stored answers. They only mark records (the `flags` column); nothing is deleted, so
thresholds can change without new requests. Exports leave flagged records out.

Flags: `refusal`, `too_short`, `too_long`, `duplicate` (same normalised answer as an earlier record of the same
aspect), `broken_encoding` (mojibake, replacement or control characters), and `contradicts_gender`,
`contradicts_age`, `contradicts_race` (the answer states an attribute that disagrees with a known label).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from facellm.data.sources import age_group
from facellm.data.store import QARecord
from facellm.labels import FAIRFACE_AGES

REFUSALS = re.compile(
    r"\b(?:i(?:'m| am)? (?:sorry|unable|not able)|i can(?:'|no)t (?:help|assist|analy[sz]e|identify|determine|provide)"
    r"|unable to (?:analy[sz]e|assist|help|determine|identify)|as an ai\b|i (?:won't|will not) (?:identify|speculate)"
    r"|cannot (?:identify|determine) (?:the )?(?:person|individual|race|ethnicity))",
    re.IGNORECASE,
)
BROKEN = re.compile(r"[\ufffd\x00-\x08\x0b\x0c\x0e-\x1f]|Ã.|â€|Â[\s\xa0]")
MALE_WORDS = re.compile(r"\b(?:man|men|male|boy|gentleman|he|his|him)\b", re.IGNORECASE)
FEMALE_WORDS = re.compile(r"\b(?:woman|women|female|girl|lady|she|her|hers)\b", re.IGNORECASE)
AGE_NUMBERS = re.compile(
    r"\b(?:aged?|in (?:his|her|their) (?:early |mid-?|late )?|around|about|approximately)\s*(\d{1,2})(?:s|\b)",
    re.IGNORECASE,
)
DECADE_WORDS = {
    "teens": 15,
    "twenties": 25,
    "thirties": 35,
    "forties": 45,
    "fifties": 55,
    "sixties": 65,
    "seventies": 75,
    "eighties": 85,
}
DECADES = re.compile(r"\b(?:in (?:his|her|their) (?:early |mid-?|late )?)(" + "|".join(DECADE_WORDS) + r")\b", re.I)
RACE_TERMS = {
    "White": r"white|caucasian",
    "Black": r"black|african",
    "Latino/Hispanic": r"latino|latina|hispanic",
    "East Asian": r"east asian",
    "Southeast Asian": r"southeast asian|south-east asian",
    "Indian": r"indian|south asian",
    "Middle Eastern": r"middle eastern|arab",
}
# Race words only count when they describe the person, not a colour ("white background", "black hair").
RACE_CONTEXT = (
    r"(?:man|woman|person|individual|boy|girl|child|male|female|adult|descent|ethnicity|heritage|origin|features"
    r"|appearance)"
)


@dataclass
class FilterSettings:
    min_chars: int = 40
    max_chars: int = 4000


def flag_records(records: list[QARecord], settings: FilterSettings | None = None) -> dict[str, list[str]]:
    """Flags for every done record, by key (an empty list means the record passes)."""
    settings = settings or FilterSettings()
    seen: set[tuple[str, str]] = set()
    flags: dict[str, list[str]] = {}
    for record in sorted(records, key=lambda r: (r.aspect, r.image, r.key)):
        answer = record.answer or ""
        found = []
        if REFUSALS.search(answer):
            found.append("refusal")
        if len(answer) < settings.min_chars:
            found.append("too_short")
        if len(answer) > settings.max_chars:
            found.append("too_long")
        normalised = (record.aspect, re.sub(r"\W+", " ", answer.lower()).strip())
        if normalised in seen:
            found.append("duplicate")
        seen.add(normalised)
        if BROKEN.search(answer):
            found.append("broken_encoding")
        found += contradictions(answer, record.known)
        flags[record.key] = found
    return flags


def contradictions(answer: str, known: dict) -> list[str]:
    """Which known labels (FairFace vocabulary) the answer contradicts."""
    found = []
    gender = known.get("gender")
    male, female = len(MALE_WORDS.findall(answer)), len(FEMALE_WORDS.findall(answer))
    if gender == "Male" and female > male or gender == "Female" and male > female:
        found.append("contradicts_gender")
    age = known.get("age")
    if age in FAIRFACE_AGES and _age_disagrees(answer, age):
        found.append("contradicts_age")
    race = known.get("race")
    if race in RACE_TERMS:
        stated = {
            name
            for name, terms in RACE_TERMS.items()
            if re.search(rf"\b(?:{terms})\b(?:[\w\s,-]{{0,20}}?)\b{RACE_CONTEXT}\b", answer, re.IGNORECASE)
        }
        if race == "Southeast Asian":
            stated.discard("East Asian")  # "South-east Asian" contains "east Asian"
        if stated and race not in stated:
            found.append("contradicts_race")
    return found


def _age_disagrees(answer: str, group: str) -> bool:
    """True when the answer states an age more than one FairFace group away from the label."""
    stated = [int(n) for n in AGE_NUMBERS.findall(answer) if 0 < int(n) < 110]
    stated += [DECADE_WORDS[w.lower()] for w in DECADES.findall(answer)]
    if not stated:
        return False
    label = FAIRFACE_AGES.index(group)
    return all(abs(FAIRFACE_AGES.index(age_group(age)) - label) > 1 for age in stated)
