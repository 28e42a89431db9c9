"""The labels of a measured task (age groups, genders, races, expressions) that a text names: in FaceXBench's words
("20-29", "Female", "'happy'", "under the age of 49") and in everyday words from the vocabulary ("a cheerful face",
"a senior", "not smiling")."""

from __future__ import annotations

import re
from typing import cast

from facellm.labels import FAIRFACE_AGES
from facellm.specialist import vocabulary
from facellm.specialist.topics import EXPRESSION_WORDS, RACE_WORDS, VOCABULARY
from facellm.specialist.vocabulary import Dimension


def everyday_labels(task: str, text: str) -> set[str]:
    """The labels of `task` an option names in everyday words; a negated one ("not smiling") names the others."""
    found = vocabulary.mentions(text, (cast(Dimension, task),))  # the label tasks are dimensions too
    named = {m.value for m in found if not m.negated}
    denied = {m.value for m in found if m.negated}
    if named:
        return named & set(VOCABULARY[task])
    return set(VOCABULARY[task]) - denied if denied else set()


def target_labels(task: str, q: str) -> frozenset[str]:
    """The labels a question asks about: as FaceXBench names them, else in everyday words ("a cheerful face")."""
    return frozenset(named_labels(task, q) or _everyday_named(task, q))


def _everyday_named(task: str, q: str) -> set[str]:
    """Labels the question names in everyday words, not negated ones ("Is she not smiling?" asks about happy)."""
    return {m.value for m in vocabulary.mentions(q, (cast(Dimension, task),))} & set(VOCABULARY[task])


def named_labels(task: str, q: str, whole: bool = False) -> set[str]:
    """The labels of `task` that `q` names: age groups by range or word, genders, races, expressions. `whole`: the
    text is an option (a bare range such as "20-29" or "50-60" names the groups it covers)."""
    if task == "gender":
        female = re.search(r"\b(females?|woman|women|girls?|lady|ladies|feminine)\b", q)
        male = re.search(r"\b(males?|man|men|boys?|gentlemen|masculine)\b", q)
        return {"Female"} if female and not male else {"Male"} if male and not female else set()
    if task == "race":
        found: set[str] = set()
        for word, races in RACE_WORDS:
            if re.search(rf"\b{word}", q) and not any(
                word in longer and longer in q for longer, _ in RACE_WORDS if longer != word and len(longer) > len(word)
            ):
                found |= races
        return found
    if task == "expression":
        quoted = re.findall(r"'([^']+)'", q)
        text = " ".join(quoted) if quoted else q
        return {name for name, words in EXPRESSION_WORDS.items() if any(re.search(rf"\b{w}", text) for w in words)}
    if task == "age":
        return _age_groups(q, whole)
    return set()


def _group_bounds(group: str) -> tuple[int, int]:
    numbers = [int(n) for n in re.findall(r"\d+", group)]
    return (70, 120) if group.startswith("more") else (numbers[0], numbers[-1])


def _age_groups(q: str, whole: bool) -> set[str]:
    """Age groups named by "30-39 age group", "between 10 and 49", "under the age of 49", "more than 70",
    "teenager", "children", "elderly" (a group counts when most of its years lie in the named span)."""
    low: int | None = None
    high = 120
    if m := re.search(r"(?:more than|over|above|older than|at least) (?:the age of )?(\d+)|(\d+) ?(?:\+|or older)", q):
        low, high = int(m.group(1) or m.group(2)), 120
    elif m := re.search(r"(?:under|below|younger than|less than) (?:the age of )?(\d+)", q):
        low, high = 0, int(m.group(1))
    elif m := re.search(r"(\d+) ?(?:-|to|and) ?(\d+)", q):
        low, high = sorted((int(m.group(1)), int(m.group(2))))
    if low is not None:
        groups = set()
        for group in FAIRFACE_AGES:
            g_low, g_high = _group_bounds(group)
            inside = max(0, min(high, g_high) - max(low, g_low) + 1)
            if inside * 2 > g_high - g_low + 1:
                groups.add(group)
        return groups
    words = {
        r"\b(teen\w*|adolescen\w*)": {"10-19"},
        r"\b(bab(y|ies)|infants?|toddlers?)\b": {"0-2"},
        r"\b(child\w*|kids?)\b": {"0-2", "3-9"},
        r"\b(elderly|seniors?|old people)\b": {"60-69", "more than 70"},
    }
    return next((groups for pattern, groups in words.items() if re.search(pattern, q)), set())
