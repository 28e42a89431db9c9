"""The question reader on FaceXBench's real question files (../shared/facexbench, no images): every question of a
sub-task the specialist claims is read, every option's claim is read, and the reading agrees with the benchmark's
answer key: some assignment of values to the images makes the keyed option the only true one. A misread question
(wrong form, wrong target, negation missed) has no such assignment and fails here."""

from __future__ import annotations

import itertools
import json

import pytest

from facellm.specialist import joint
from facellm.specialist.reading import read
from facellm.specialist.topics import VOCABULARY
from tests.conftest import SHARED

BENCHMARK = SHARED / "facexbench" / "benchmark"
CLAIMED = {
    "age": "age",
    "gender": "gender",
    "race": "race",
    "expression": "expression",
    "hr_fr": "identity",
    "lr_fr": "identity",
    "headpose": "headpose",
    "crowd_counting": "crowd",
    "fas": "attack",
    "deepfakes": "fake",
}


def _questions():
    for path in sorted(BENCHMARK.glob("*.json")):
        payload = json.loads(path.read_text(encoding="utf-8"))
        for number, q in payload["questions"].items():
            yield payload["sub-category"], f"{path.stem}#{number}", q


def _worlds(reading):
    """Every assignment that can tell the reading's options apart (values reduced to what the form compares)."""
    n = reading.images
    if reading.task == "identity":
        return [g for g, _ in joint.partitions([[0.5] * n] * n)]
    if reading.task == "fake" and reading.target == "identity":
        groups = [g for g, _ in joint.partitions([[0.5] * n] * n)]
        return [tuple(zip(f, g)) for f in itertools.product((True, False), repeat=n) for g in groups]
    if reading.prop is not None or (reading.task == "headpose" and reading.form != "same"):
        return list(itertools.product((True, False), repeat=n))
    if reading.task == "headpose":
        return list(itertools.product(range(n), repeat=n))
    vocabulary = VOCABULARY[reading.task]
    if reading.form in ("select", "count", "yesno") and reading.target and not isinstance(reading.target, str):
        inside = sorted(reading.target)[0]
        outside = next(v for v in vocabulary if v not in reading.target)
        vocabulary = (inside, outside)
    elif len(vocabulary) ** n > 5000:
        vocabulary = vocabulary[: n + 1]
    return list(itertools.product(vocabulary, repeat=n))


def _key_can_be_the_only_true_option(reading, key: str) -> bool:
    """Some world makes the keyed option true and every other option false."""
    return any(joint.only_key_true(reading, world, key) for world in _worlds(reading))


# Keys no reading can make the only true answer, as the files hold them (question, keyed answer): two images where
# neither is older nor both of one age group; "the same race" keyed with one image; a "mixed origins" pair whose
# every other listed pair must then be of one race.
KEY_ODDITIES = {
    ("Who among these two appears to be older?", "None of the above"): 10,
    ("Which images depict people of the same race?", "Image 1"): 4,
    ("Which combination of images depicts individuals of mixed origins?", "Image 1, Image 2"): 1,
}


@pytest.mark.slow
@pytest.mark.skipif(not BENCHMARK.is_dir(), reason="needs ../shared/facexbench")
def test_every_real_question_of_a_claimed_subtask_is_read_and_agrees_with_its_key():
    misread, disagree, total, oddities = [], [], 0, {}
    for subtask, where, q in _questions():
        if subtask not in CLAIMED:
            continue
        total += 1
        options = list(zip("ABCDEFGH", map(str, q["options"])))
        reading = read(q["question_text"], options, len(q["image_paths"]))
        if reading is None or reading.task != CLAIMED[subtask] or not reading.understood or reading.form == "describe":
            misread.append((where, q["question_text"], reading and (reading.task, reading.form)))
            continue
        if reading.form == "types":
            continue  # attack types: read, answered "cannot measure" (the liveness model has no types)
        if reading.task == "crowd":
            allowed = [c for letter, _, c in reading.options if letter == q["correct_answer_option"]][0]
            value = float(q["answer"])
            low, high = (allowed.value, allowed.value) if allowed.kind == "count" else allowed.value
            if not low <= value <= high:
                disagree.append((where, q["question_text"], q["answer"]))
            continue
        if reading.task == "headpose" and reading.form == "classify":
            continue  # the bin options are ranges; the route weighs each by the measured angle
        if not _key_can_be_the_only_true_option(reading, q["correct_answer_option"]):
            oddities[(q["question_text"], q["answer"])] = oddities.get((q["question_text"], q["answer"]), 0) + 1
            if (q["question_text"], q["answer"]) not in KEY_ODDITIES:
                disagree.append((where, q["question_text"], q["options"], q["answer"], reading.form, reading.target))
    assert total == 3800
    assert oddities == KEY_ODDITIES
    assert not misread, f"{len(misread)} questions not read, e.g. {misread[:5]}"
    assert not disagree, f"{len(disagree)} readings disagree with the key, e.g. {disagree[:5]}"


@pytest.mark.skipif(not BENCHMARK.is_dir(), reason="needs ../shared/facexbench")
def test_questions_of_unclaimed_subtasks_are_declined_not_guessed(face_images):
    """Celebrities, segmentation regions and tool choices share words with the claimed tasks; no shipped model
    measures them, so every one is declined before any image is measured. (CelebA's attribute questions are
    claimed by specialist/celeb.py: tests/test_celeb_attributes.py.)"""
    from facellm.specialist import answer

    declined = total = 0
    for subtask, _, q in _questions():
        if subtask in CLAIMED or subtask == "attributes":
            continue
        total += 1
        prompt = q["question_text"] + "\n" + "".join(f"({k}) {o}\n" for k, o in zip("ABCDEFGH", q["options"]))
        reply = answer(face_images[: len(q["image_paths"])], prompt)
        declined += reply.startswith("cannot measure") and "not something" in reply or "outside" in reply
    assert total == 800 and declined == total


def test_order_and_extremes_follow_the_ages():
    """Direction is what the key check cannot see: with image 2 a child, image 1 in its twenties and image 3 in its
    sixties, only the right order and the right extreme hold."""
    orders = ["Image 2, Image 1, Image 3", "Image 3, Image 1, Image 2", "Image 1, Image 2, Image 3"]
    options = list(zip("ABC", orders))
    world = ("20-29", "3-9", "60-69")
    for question, true in (
        ("Arrange the following images in ascending order of age.", "A"),
        ("Arrange the following images in descending order of age.", "B"),
    ):
        reading = read(question, options, 3)
        assert [letter for letter, _, c in reading.options if joint.holds(reading, c, world)] == [true]
    extremes = [("A", "Image 1"), ("B", "Image 2"), ("C", "Image 3"), ("D", "All are of same age group")]
    for question, true in (
        ("Among these images, which image shows the oldest person?", "C"),
        ("Among these images, which image shows the youngest person?", "B"),
    ):
        reading = read(question, extremes, 3)
        assert [letter for letter, _, c in reading.options if joint.holds(reading, c, world)] == [true]
