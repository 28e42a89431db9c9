"""Prompt specs: the teacher's system prompt, the attribute-aware request per aspect, the label-free stored question.

A spec is a YAML file (the shipped one is `prompts/fairfacegpt-v1.yaml`); its `version` is written into every
record. The known labels go into the request sent to the teacher, never into the stored question, so a student
trained on the answers has to see the attributes instead of reading them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from facellm.errors import InputError
from facellm.files import read_text

DEFAULT_PROMPTS = Path(__file__).parent / "fairfacegpt-v1.yaml"
# FairFace age groups under 10 get "boy"/"girl" instead of "man"/"woman".
CHILD_AGES = {"0-2", "3-9"}


@dataclass(frozen=True)
class Aspect:
    key: str
    title: str
    focus: str
    template: str
    stored_question: str


@dataclass(frozen=True)
class PromptSpec:
    version: str
    system: str
    known_prefix: str
    fact_templates: dict
    measured_prefix: str
    ask: str
    per_image_ask: str
    aspects: dict[str, Aspect]

    def user_prompt(self, aspect: str, known: dict, measured: dict | None = None) -> str:
        """The request for one aspect: known labels and measured facts, then what to describe."""
        item = self.aspects[aspect]
        return " ".join(
            part for part in (*self._context(known, measured), self.ask.format(title=item.title, focus=item.focus))
        )

    def per_image_prompt(self, known: dict, measured: dict | None = None) -> str:
        """One request asking for every aspect as a JSON object keyed by aspect."""
        keys = ", ".join(json.dumps(k) for k in self.aspects)
        aspect_list = " ".join(f"{k}: the {a.title} ({a.focus})" for k, a in self.aspects.items())
        ask = self.per_image_ask.format(keys=keys, aspect_list=aspect_list)
        return " ".join((*self._context(known, measured), ask))

    def _context(self, known: dict, measured: dict | None) -> list[str]:
        parts = []
        facts = [self.fact_templates[name].format(**values) for name, values in _fact_values(known).items()]
        if facts:
            parts.append(self.known_prefix.format(facts="; ".join(facts)))
        if measured:
            parts.append(self.measured_prefix.format(measured=describe_measured(measured)))
        return parts


def person_word(known: dict) -> str:
    """man/woman, boy/girl (FairFace age under 10), or person when gender is unknown."""
    gender = (known.get("gender") or "").lower()
    child = known.get("age") in CHILD_AGES
    if gender == "male":
        return "boy" if child else "man"
    if gender == "female":
        return "girl" if child else "woman"
    return "child" if child else "person"


def _fact_values(known: dict) -> dict[str, dict]:
    values = {}
    if known.get("gender") or known.get("age") in CHILD_AGES:
        values["person"] = {"person": person_word(known)}
    if known.get("race"):
        values["ethnicity"] = {"ethnicity": known["race"]}
    if known.get("age"):
        values["age"] = {"age": known["age"]}
    if known.get("traits"):
        values["traits"] = {"traits": known["traits"]}
    return values


def describe_measured(measured: dict) -> str:
    """Measured facts as a short clause list, e.g. "head pose frontal (yaw 3°, pitch -5°, roll 1°); 1 face"."""
    parts = []
    if "pose_label" in measured:
        angles = ", ".join(f"{k} {measured[k]:.0f}°" for k in ("yaw", "pitch", "roll") if k in measured)
        parts.append(f"head pose {measured['pose_label']}" + (f" ({angles})" if angles else ""))
    for key, label in (("brightness", "brightness"), ("sharpness", "sharpness"), ("face_width", "face width px")):
        if key in measured:
            parts.append(f"{label} {measured[key]:.0f}")
    if "face_count" in measured:
        parts.append(f"{measured['face_count']} face(s) detected")
    if "expression" in measured:
        parts.append(f"expression classifier: {measured['expression']}")
    return "; ".join(parts)


def load_prompts(path: str | Path | None = None) -> PromptSpec:
    """Read a prompt spec; errors name the file and the missing or malformed part."""
    source = Path(path) if path else DEFAULT_PROMPTS
    text = read_text(source, "prompt file", "pass --prompts with a YAML like the shipped one")
    try:
        raw = yaml.safe_load(text)
        default_question = raw["stored_question"]
        aspects = {
            key: Aspect(
                key=key,
                title=spec["title"],
                focus=spec["focus"],
                template=spec.get("template", ""),
                stored_question=spec.get("stored_question", default_question).format(title=spec["title"]),
            )
            for key, spec in raw["aspects"].items()
        }
        return PromptSpec(
            version=str(raw["version"]),
            system=raw["system"].strip(),
            known_prefix=raw["known_prefix"],
            fact_templates=raw["fact_templates"],
            measured_prefix=raw["measured_prefix"],
            ask=raw["ask"],
            per_image_ask=raw["per_image_ask"],
            aspects=aspects,
        )
    except (yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"malformed prompt file {source}: {exc!r}", "compare it with fairfacegpt-v1.yaml") from None
