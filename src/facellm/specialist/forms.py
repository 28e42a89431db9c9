"""The forms a question takes (`Form`), and the table that gives a label question (age, gender, race, expression)
with options its form: each row's cue words and what else must hold; the first row that fits wins. How each form's
claims are judged on a labelling of the images is specialist/joint.JUDGES."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Form = Literal[
    "classify",
    "select",
    "count",
    "yesno",
    "extreme",
    "order",
    "same",
    "mixed",
    "statement",
    "first",
    "others",
    "pairs",
    "people",
    "types",
    "view",
    "describe",
]


Needs = Literal["any", "age", "age, no target", "target", "one image, labels", "yes/no", "one image"]


@dataclass(frozen=True)
class LabelForm:
    """A row of LABEL_FORMS: the form a label question (age, gender, race, expression) with options takes when its
    words match `cue` (a regex; "" matches any) and `needs` holds of the task, the question's target and the options'
    claims. How the form's claims are judged is joint.JUDGES[form]."""

    form: Form
    cue: str
    needs: Needs = "any"


# First matching row wins: "Arrange ... by age" is an order before anything else, a count before a selection.
LABEL_FORMS = (
    LabelForm("order", r"\b(ascending|descending|arrange|order|sort|rank)\b", "age"),
    LabelForm("extreme", r"\b(older|oldest|elder|elderly|younger|youngest|youthful)\b", "age, no target"),
    LabelForm("mixed", r"\bmixed\b|\bdifferent (race|origin|ethnicit|gender|age|expression)"),
    LabelForm("same", r"\b(same|share|identical|matching)\b"),
    LabelForm("count", r"\bhow many\b|\bnumber of\b|\bcount\b"),
    LabelForm("classify", "", "one image, labels"),
    LabelForm("yesno", "", "yes/no"),
    LabelForm("select", "", "target"),
    LabelForm("classify", "", "one image"),
    LabelForm("select", ""),
)


def fits(row: LabelForm, task: str, q: str, target: frozenset, claims: tuple, n: int) -> bool:
    if row.cue and not re.search(row.cue, q):
        return False
    kinds = [c.kind for _, _, c in claims]
    return {
        "any": True,
        "age": task == "age",
        "age, no target": task == "age" and not target,
        "target": bool(target),
        "one image, labels": n == 1 and all(k == "class" for k in kinds),
        "yes/no": any(k in ("yes", "no") for k in kinds) and (n == 1 or bool(target)),
        "one image": n == 1,
    }[row.needs]
