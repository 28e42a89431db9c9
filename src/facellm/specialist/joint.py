"""Which option is most likely true: each option's claim (specialist/reading.py) judged in every world the
measurements allow, weighted by the world's probability.

A world gives every image one value: a label (age group, race, expression, pose bin), a yes/no (attack, fake, in
the named angle range) or an identity group. Independent per-image measurements give worlds as the product of their
distributions (`independent`); identity gives partitions of the images weighted by the pairwise same-person
probabilities (`partitions`). "None of the above" is true in a world where no other option is.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence

from facellm.labels import FAIRFACE_AGES
from facellm.specialist import meaning
from facellm.specialist.forms import Form
from facellm.specialist.meaning import Claim
from facellm.specialist.reading import Reading

World = tuple


def independent(distributions: Sequence[dict], keep: float = 0.999) -> list[tuple[World, float]]:
    """Worlds from independent per-image distributions {value: probability}; per image only the likeliest values
    holding `keep` of its mass are enumerated (the rest is too unlikely to move an answer)."""
    kept = []
    for dist in distributions:
        ranked = sorted(dist.items(), key=lambda kv: -kv[1])
        total, chosen = 0.0, []
        for value, p in ranked:
            chosen.append((value, p))
            total += p
            if total >= keep * sum(dist.values()):
                break
        kept.append(chosen)
    return [(tuple(v for v, _ in combo), math.prod(p for _, p in combo)) for combo in itertools.product(*kept)]


def partitions(same: Sequence[Sequence[float]]) -> list[tuple[World, float]]:
    """Every grouping of n images into people (as group numbers per image), weighted by the product over pairs of
    P(same) for pairs in one group and 1 - P(same) for the others, normalised."""
    n = len(same)
    worlds = []
    for groups in _set_partitions(n):
        weight = 1.0
        for i in range(n):
            for j in range(i + 1, n):
                p = min(max(same[i][j], 1e-6), 1 - 1e-6)
                weight *= p if groups[i] == groups[j] else 1 - p
        worlds.append((groups, weight))
    total = sum(w for _, w in worlds) or 1.0
    return [(g, w / total) for g, w in worlds]


def _set_partitions(n: int) -> Iterable[tuple[int, ...]]:
    """Restricted growth strings: each image's group number is at most one more than the largest before it."""

    def grow(prefix: tuple[int, ...]):
        if len(prefix) == n:
            yield prefix
            return
        for g in range(max(prefix, default=-1) + 2):
            yield from grow((*prefix, g))

    return grow(())


def chances(reading: Reading, worlds: Iterable[tuple[World, float]]) -> dict[str, float] | None:
    """Probability that each option (by letter) is true; None when no option can be judged in any world."""
    judged = [(letter, claim) for letter, _, claim in reading.options if claim.kind != "none_of_above"]
    nones = [letter for letter, _, claim in reading.options if claim.kind == "none_of_above"]
    scores = {letter: 0.0 for letter, _, _ in reading.options}
    readable = False
    for world, weight in worlds:
        verdicts = [(letter, holds(reading, claim, world)) for letter, claim in judged]
        readable |= any(v is not None for _, v in verdicts)
        for letter, verdict in verdicts:
            if verdict:
                scores[letter] += weight
        if not any(v for _, v in verdicts):
            for letter in nones:
                scores[letter] += weight
    return scores if readable else None


PRESUPPOSED = 0.2  # weight kept by a world where the option "None of the images" holds


def presupposed(reading: Reading, worlds: Iterable[tuple[World, float]]) -> list[tuple[World, float]]:
    """Asking which images show something presupposes that some do ("how many" does not: none is an answer to it):
    a world where an option naming no image ("None of the images") holds keeps PRESUPPOSED of its weight, so strong
    evidence still answers "none" (a value chosen on development forms, where "none" was picked for faces measured a
    little outside what was asked, as head poses a few degrees off the range)."""
    worlds = list(worlds)
    empty = next((claim for _, _, claim in reading.options if claim.kind == "images" and not claim.value), None)
    if empty is None:
        return worlds
    weighed = [(world, p * (PRESUPPOSED if holds(reading, empty, world) else 1.0)) for world, p in worlds]
    total = sum(p for _, p in weighed) or 1.0
    return [(world, p / total) for world, p in weighed]


def only_key_true(reading: Reading, world: World, key: str) -> bool:
    """Whether, in `world`, the option lettered `key` is the only true one (an option claiming the same, as "Images
    3 and 2" beside "Images 2 and 3", counts as the key; a "None of the above" key: no listed option is true)."""
    claims = {letter: claim for letter, _, claim in reading.options}
    keyed = {letter for letter, claim in claims.items() if claim == claims[key]}
    true = {
        letter for letter, claim in claims.items() if claim.kind != "none_of_above" and holds(reading, claim, world)
    }
    return true == keyed or (claims[key].kind == "none_of_above" and not true)


def choose(
    options: list[tuple[str, str]],
    question: str,
    probabilities: list[float],
    prop: meaning.Property,
    asked: bool | None = None,
) -> tuple[str, str, float] | None:
    """(letter, text, probability) of the likeliest option when image i has a yes/no property (attack, fake) with
    probabilities[i]; None when the options cannot be read this way. `asked`: whether the question asks for the
    images where the property holds (read from the question when not given)."""
    n = len(probabilities)
    asked = meaning.asked_property(question, prop) if asked is None else asked
    claims = tuple((letter, text, meaning.parse(text, n, prop)) for letter, text in options)
    reading = Reading("property", "statement", images=n, options=claims, prop=prop, asked=asked)
    scores = chances(reading, independent([{True: p, False: 1 - p} for p in probabilities]))
    if scores is None:
        return None
    letter = max(scores, key=lambda k: scores[k])
    return letter, dict(options)[letter], scores[letter]


def _rank(value) -> int:
    return FAIRFACE_AGES.index(value) if value in FAIRFACE_AGES else int(value)


Judge = Callable[[Reading, Claim, World], "bool | None"]


def holds(reading: Reading, claim: Claim, world: World) -> bool | None:
    """Whether `claim` is true when image i+1 has value world[i]; None when the claim says nothing in this form.
    Claims that mean the same in every form are judged here; the rest by the form's judge in JUDGES."""
    n = len(world)
    if claim.kind in ("undetermined", "no_face"):
        return False
    if claim.kind == "images" and any(not 1 <= k <= n for k in claim.value):
        return False
    if reading.prop is not None and reading.target != "identity":  # attack / fake: a yes/no per image
        return meaning.true_under(claim, tuple(world), reading.asked)
    if claim.kind == "per_image":  # "the first is a woman, the second a man"
        return all(1 <= i <= n and world[i - 1] in labels for i, labels in claim.value.items())
    if reading.task == "fake":  # deepfakes of one identity: world values are (fake, identity group)
        return _fakes_of_one_person(reading, claim, world)
    judge = JUDGES.get(reading.form)
    return judge(reading, claim, world) if judge else None


def _fakes_of_one_person(reading: Reading, claim: Claim, world: World) -> bool | None:
    n = len(world)
    if reading.form == "count":  # fakes that share their identity with another image
        fakes = [i for i in range(n) if world[i][0]]
        shared = sum(any(world[j][1] == world[i][1] for j in range(n) if j != i) for i in fakes)
        return claim.kind == "count" and claim.value == shared
    return _same_group(claim, [world[i][1] if world[i][0] else ("real", i) for i in range(n)])


def _classify(reading: Reading, claim: Claim, world: World) -> bool | None:
    """One image: the option names its label."""
    return world[0] in claim.value if claim.kind == "class" else None


def _chosen_images(reading: Reading, claim: Claim, world: World) -> bool | None:
    """select / count / first: the option names the images asked for, or how many there are."""
    chosen = _chosen(reading, world)
    if chosen is None:
        return False
    if claim.kind == "images":
        return claim.value == chosen
    if claim.kind == "count":
        return claim.value == len(chosen)
    if claim.kind == "class" and len(world) == 1:  # "Yes"-like label options on one image are read as classify
        return world[0] in claim.value
    return None


def _yes_or_no(reading: Reading, claim: Claim, world: World) -> bool | None:
    if claim.kind not in ("yes", "no"):
        return None
    return _verdict(reading, world) == (claim.kind == "yes")


def _extreme(reading: Reading, claim: Claim, world: World) -> bool | None:
    """The one oldest (youngest) image, or all of one age group."""
    ranks = [_rank(v) for v in world]
    if claim.kind == "same":
        return len(set(ranks)) == 1
    if claim.kind == "images" and len(claim.value) == 1:
        (k,) = claim.value
        best = (max if reading.target == "older" else min)(ranks)
        return ranks[k - 1] == best and ranks.count(best) == 1
    return None


def _order(reading: Reading, claim: Claim, world: World) -> bool | None:
    """An age order of every image, ascending or descending."""
    n = len(world)
    if claim.kind != "order" or sorted(claim.value) != list(range(1, n + 1)):
        return False if claim.kind == "order" else None
    ranks = [_rank(world[k - 1]) for k in claim.value]
    ordered = ranks if reading.target == "ascending" else ranks[::-1]
    return all(a <= b for a, b in itertools.pairwise(ordered))


def _same(reading: Reading, claim: Claim, world: World) -> bool | None:
    """The images sharing a value (a label, a pose bin, a person), or yes/no: do all share one."""
    if claim.kind in ("yes", "no"):
        return (len(set(world)) == 1) == (claim.kind == "yes")
    return _same_group(claim, list(world))


def _mixed(reading: Reading, claim: Claim, world: World) -> bool | None:
    """Images of all different values ("of mixed origins")."""
    if claim.kind != "images":
        return None
    members = [world[k - 1] for k in claim.value]
    return len(members) >= 2 and len(set(members)) == len(members)


def _others(reading: Reading, claim: Claim, world: World) -> bool | None:
    """The images outside the one group of two or more (the one same-person pair)."""
    groups = [g for g in set(world) if world.count(g) >= 2]
    if len(groups) != 1:
        return False
    if claim.kind != "images":
        return None
    return claim.value == frozenset(k + 1 for k in range(len(world)) if world[k] != groups[0])


def _pairs(reading: Reading, claim: Claim, world: World) -> bool | None:
    """How many pairs of images share a value (show one person)."""
    value = sum(a == b for a, b in itertools.combinations(world, 2))
    return claim.value == value if claim.kind == "count" else None


def _people(reading: Reading, claim: Claim, world: World) -> bool | None:
    """How many distinct values (people) the images show."""
    return claim.value == len(set(world)) if claim.kind == "count" else None


# How each form's claims are judged on a labelling of the images (reading.py's module docstring lists the forms;
# "statement" is judged by meaning.true_under, "view", "types" and "describe" are not judged over worlds).
JUDGES: dict[Form, Judge] = {
    "classify": _classify,
    "select": _chosen_images,
    "count": _chosen_images,
    "first": _chosen_images,
    "yesno": _yes_or_no,
    "extreme": _extreme,
    "order": _order,
    "same": _same,
    "mixed": _mixed,
    "others": _others,
    "pairs": _pairs,
    "people": _people,
}


def _same_group(claim: Claim, values: list) -> bool | None:
    """An image set is "the ones that share a value": at least two, all equal, nobody outside has that value."""
    if claim.kind != "images":
        return None
    members = sorted(claim.value)
    if len(members) < 2 or len({values[k - 1] for k in members}) != 1:
        return False
    value = values[members[0] - 1]
    return all(values[k] != value for k in range(len(values)) if k + 1 not in claim.value)


def _chosen(reading: Reading, world: World) -> frozenset[int] | None:
    """The images a select/count/first question asks for, in this world."""
    n = len(world)
    if reading.form == "first":
        anchor = reading.target - 1
        return frozenset(k + 1 for k in range(n) if k != anchor and (world[k] == world[anchor]) != reading.negated)
    if reading.task == "headpose":
        return frozenset(k + 1 for k in range(n) if world[k] != reading.negated)
    if not reading.target:
        return None
    return frozenset(k + 1 for k in range(n) if (world[k] in reading.target) != reading.negated)


def _verdict(reading: Reading, world: World) -> bool:
    """A yes/no question's answer in this world."""
    target = reading.target
    if reading.task == "identity":  # the named images (a pair, or all of them) show one person
        return len({world[k - 1] for k in target}) == 1
    if target == "same":
        return len(set(world)) == 1
    if isinstance(target, tuple) and target and target[0] in ("older", "younger"):
        direction, subject = target
        others = [_rank(v) for k, v in enumerate(world) if k != subject - 1]
        mine = _rank(world[subject - 1])
        return all(mine > o for o in others) if direction == "older" else all(mine < o for o in others)
    inside = [bool(v) for v in world] if reading.task in ("headpose", "presence") else [v in target for v in world]
    return (all(inside) if reading.every else any(inside)) != reading.negated
