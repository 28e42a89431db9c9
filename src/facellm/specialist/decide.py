"""Choosing and writing an option: each option's chance from the worlds the measurements allow (specialist/joint.py)
or, for an option the reading left unread, from what it names (specialist/facts.py); the likeliest option written
"B. text (specialist: measured ...; 57%)", with how the other options were judged; an either/or question's
alternative named."""

from __future__ import annotations

from dataclasses import replace

from PIL import Image

from facellm.specialist import facts, joint, meaning
from facellm.specialist.reading import Reading


def lettered(reading: Reading) -> list[tuple[str, str]]:
    return [(letter, text) for letter, text, _ in reading.options]


def pick(options: list[tuple[str, str]], scores: dict[str, float], what: str) -> str:
    """The option letter with the highest score. A "None of the above" option scores the probability left over
    for what no other option names (scores are probabilities of the options being right)."""
    none = next((letter for letter, text in options if "none of the above" in text.lower()), None)
    listed = sum(scores.get(text, 0.0) for letter, text in options if letter != none)
    scored = [
        (max(0.0, 1.0 - listed) if letter == none else scores.get(text, 0.0), letter, text) for letter, text in options
    ]
    best = max(scored, default=(0.0, "", ""))
    if best[1] == none:
        return f"{none}. {best[2]} (specialist: no listed option fits the measured {what}; {best[0]:.0%} left over)"
    return f"{best[1]}. {best[2]} (specialist: measured {what}, {best[0]:.0%})"


def decide(images: list[Image.Image], reading: Reading, worlds, measured: str) -> str:
    """The option most likely true over `worlds` (specialist/joint.py; an option saying "no image" presupposed
    unlikely), options the reading left unread weighed by what they name (specialist/facts.py), written "B. text
    (specialist: ...)"."""
    scores = joint.chances(reading, joint.presupposed(reading, worlds)) or {}
    judged = {letter: p for letter, p in scores.items() if claim_of(reading, letter).kind != "other"}
    return written(reading, weighed(images, reading, judged), measured)


def claim_of(reading: Reading, letter: str) -> meaning.Claim:
    return next(claim for option, _, claim in reading.options if option == letter)


def weighed(images: list[Image.Image], reading: Reading, scores: dict[str, float]) -> dict[str, facts.Judged]:
    """Every option's chance: `scores` for those the reading judged, specialist/facts.py for the others."""
    measured = facts.Measurements(images)
    return {
        letter: facts.Judged(scores[letter], reading.task) if letter in scores else facts.chance(measured, text)
        for letter, text, _ in reading.options
    }


UNLIKELY = 0.2  # an either/or answer whose alternative is less likely than this says that neither is likely


def written(reading: Reading, judged: dict[str, facts.Judged], measured: str) -> str:
    """The likeliest option (ties: the first listed), with its chance; options judged otherwise than by the question's
    measurement are listed with how they were judged. An either/or question's answer names the alternative."""
    if not any(j.by != "not measured" for j in judged.values()):
        return f"cannot measure: the options could not be judged from the measurements; measured {measured}"
    letter = max(judged, key=lambda k: judged[k].chance)
    text = next(text for option, text, _ in reading.options if option == letter)
    if reading.alternatives:
        others = "; ".join(f"{t} {judged[k].chance:.0%}" for k, t, _ in reading.options if k != letter)
        chosen = f"{text[:1].upper()}{text[1:]} ({judged[letter].chance:.0%}; {others}"
        unlikely = "neither is likely; " if judged[letter].chance < UNLIKELY else ""
        return f"{chosen}; {unlikely}measured {measured}; specialist estimate)."
    elsewhere = [
        f"{k} {j.chance:.0%} by {j.by}" if j.by != "not measured" else f"{k} not measured, prior {j.chance:.0%}"
        for k, j in judged.items()
        if j.by != reading.task
    ]
    how = f"; other options: {', '.join(elsewhere)}" if elsewhere else ""
    return f"{letter}. {text} (specialist: measured {measured}; {judged[letter].chance:.0%}{how})"


def yes_no(reading: Reading, worlds) -> float:
    """P(yes) of an open yes/no question."""
    asked = replace(reading, options=(("Y", "yes", meaning.Claim("yes")),))
    return (joint.chances(asked, worlds) or {"Y": 0.0})["Y"]
