"""Attribute vocabularies and their normalisation (FairFace first), shared by data building and evaluation."""

from __future__ import annotations

from facellm.errors import InputError

# FairFace (Kärkkäinen and Joo, WACV 2021): 9 age groups, 2 genders, 7 race groups, in the dataset's own order.
FAIRFACE_AGES = ("0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "more than 70")
FAIRFACE_GENDERS = ("Male", "Female")
FAIRFACE_RACES = (
    "White",
    "Black",
    "Latino/Hispanic",
    "East Asian",
    "Southeast Asian",
    "Indian",
    "Middle Eastern",
)
FAIRFACE_VOCAB = {"age": FAIRFACE_AGES, "gender": FAIRFACE_GENDERS, "race": FAIRFACE_RACES}

_ALIASES = {
    "race": {"latino_hispanic": "Latino/Hispanic", "latino": "Latino/Hispanic", "hispanic": "Latino/Hispanic"},
    "gender": {"m": "Male", "man": "Male", "f": "Female", "woman": "Female"},
    "age": {"70+": "more than 70", ">70": "more than 70"},
}


def normalise(attribute: str, value: str) -> str:
    """The canonical FairFace spelling of `value` (e.g. `Latino_Hispanic` -> `Latino/Hispanic`)."""
    vocab = FAIRFACE_VOCAB[attribute]
    key = value.strip()
    for canonical in vocab:
        if key.lower() == canonical.lower():
            return canonical
    alias = _ALIASES.get(attribute, {}).get(key.lower().replace(" ", "_"))
    if alias:
        return alias
    raise InputError(f"unknown FairFace {attribute} label {value!r}", f"use one of {', '.join(vocab)}")
