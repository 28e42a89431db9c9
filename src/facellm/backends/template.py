"""`TemplateBackend`: offline, deterministic answers built only from known and measured attributes (no model).

The default data teacher when none is configured, so the pipeline runs anywhere; its records carry the teacher
name "template". It reads the prompt's `facts` (aspect, known labels, measured facts), never its text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from facellm.backends.base import Backend, BackendSpec, Prompt, Reply
from facellm.conversation import GenerationSettings
from facellm.prompts import PromptSpec, load_prompts, person_word


class TemplateBackend(Backend):
    name = "template"
    chunk_size = 64

    def __init__(self, spec: PromptSpec) -> None:
        self.spec = spec

    @classmethod
    def from_spec(cls, spec: BackendSpec) -> TemplateBackend:

        return cls(spec.prompts if isinstance(spec.prompts, PromptSpec) else load_prompts())

    def answer(self, prompts: Sequence[Prompt], settings: GenerationSettings) -> list[Reply | Exception]:
        return [Reply(self._text(p.facts)) for p in prompts]

    def _text(self, facts: dict) -> str:
        values = template_values(facts.get("known", {}), facts.get("measured", {}))
        aspect = facts.get("aspect")
        if aspect is None:  # a per-image request: every aspect as one JSON object
            return json.dumps({k: a.template.format(**values) for k, a in self.spec.aspects.items()})
        return self.spec.aspects[aspect].template.format(**values)


def template_values(known: dict, measured: dict) -> dict[str, str]:
    """The placeholders the prompt file's templates may use, filled from what is known or measured."""
    person = person_word(known)
    race = known.get("race")
    a_person = f"{'an' if person[0] in 'aeiou' else 'a'} {person}"
    age = known.get("age")
    quality = _quality(measured)
    pose = measured.get("pose_label")
    return {
        "person": person,
        "a_person": a_person,
        "age_clause": _age_clause(age),
        "ethnicity_clause": f", of {race} appearance" if race else "",
        "size_clause": f", with the face about {measured['face_width']:.0f} pixels wide"
        if "face_width" in measured
        else "",
        "sharpness_clause": f", and the image is {quality}" if quality else "",
        "expression_clause": f"; it most resembles {measured['expression']}" if "expression" in measured else "",
        "quality_clause": f" is {quality}" if quality else " was not measured for brightness or sharpness",
        "quality_clause_short": f", {quality}" if quality else "",
        "pose_clause": f" is in a {pose} pose" + _angles(measured)
        if pose
        else " is visible; its angle was not measured",
        "pose_clause_short": f", head {pose}" if pose else "",
    }


def _age_clause(age: str | None) -> str:
    if not age:
        return ""
    if age == "more than 70":
        return " over 70 years old"
    return f" aged {age} years"


def _quality(measured: dict) -> str:
    parts = []
    if "brightness" in measured:
        b = measured["brightness"]
        parts.append("dark" if b < 70 else "bright" if b > 190 else "evenly lit")
    if "sharpness" in measured:
        parts.append("sharp" if measured["sharpness"] > 100 else "soft or blurred")
    return " and ".join(parts)


def _angles(measured: dict) -> str:
    angles = ", ".join(f"{k} {measured[k]:.0f}°" for k in ("yaw", "pitch", "roll") if k in measured)
    return f" ({angles})" if angles else ""
