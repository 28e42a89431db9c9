"""Face questions in people's words: the vocabulary and its normalisation, the task decided once, views of the head
in either convention, options weighed instead of declined, and free questions answered on real faces. Wordings are
written here; none is copied from FaceXBench."""

from __future__ import annotations

import csv
import re

import numpy as np
import pytest
from PIL import Image

from facellm.images import read_image
from facellm.specialist import answer, vocabulary
from facellm.specialist.reading import read
from facellm.specialist.tasks import either_or, task_of
from facellm.specialist.views import view_region
from tests.conftest import SHARED

DATA = SHARED / "data"


@pytest.mark.parametrize(
    ("text", "dimension", "value", "negated"),
    [
        ("She looks cheerful", "expression", "happy", False),
        ("He seemed terrified", "expression", "fear", False),
        ("Smiles a lot", "expression", "happy", False),
        ("Grinning", "expression", "happy", False),
        ("The child isn't smiling", "expression", "happy", True),
        ("Without any emotion on the face", "expression", "neutral", False),
        ("Two ladies", "gender", "Female", False),
        ("Gentlemen", "gender", "Male", False),
        ("An elderly person", "age", "60-69", False),
        ("A teenager", "age", "10-19", False),
        ("Of Caucasian descent", "race", "White", False),
        ("Photographed from the side", "view", "profile", False),
        ("Looking straight at the camera", "view", "frontal", False),
        ("Wearing spectacles", "attribute", "Eyeglasses", False),
        ("Has a full beard", "attribute", "Beard", False),
        ("The picture was made by a computer", "fake", "fake", False),
        ("Nobody is there", "presence", "nobody", False),
    ],
)
def test_everyday_words_name_what_the_models_measure(text, dimension, value, negated):
    found = [(m.value, m.negated) for m in vocabulary.mentions(text, (dimension,))]
    assert (value, negated) in found, found


def test_one_phrase_per_place_within_a_dimension():
    """ "east asian" is not also "asian" (two more races); "young man" is an age and a gender."""
    assert vocabulary.values("an East Asian face", "race") == {"East Asian"}
    assert vocabulary.values("a young man", "gender") == {"Male"}
    assert vocabulary.values("a young man", "age") == {"20-29"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("turned to their left", "subject"),
        ("towards his own right", "subject"),
        ("to the viewer's left", "viewer"),
        ("on the left of the image", "viewer"),
        ("to the left", None),
    ],
)
def test_directions_say_which_side_they_mean(text, expected):
    assert vocabulary.convention(text) == expected


def test_left_and_right_follow_the_convention():
    """Yaw is positive when the face turns to the viewer's left, which is the person's own right."""
    viewer_left = view_region("turned left", "viewer", False, False)
    own_left = view_region("turned to their left", "subject", False, False)
    assert viewer_left is not None and own_left is not None
    assert all(low >= 0 for box in viewer_left for axis, (low, _) in box if axis == "yaw")
    assert all(high <= 0 for box in own_left for axis, (_, high) in box if axis == "yaw")
    profile = view_region("in profile", "viewer", False, False)
    assert profile is not None and len(profile) == 2  # either side


@pytest.mark.parametrize(
    ("question", "options", "n", "task"),
    [
        ("How does this person seem to feel?", ["Cheerful", "Gloomy", "Furious", "Calm"], 1, "expression"),
        ("How does the man seem?", ["cheerful", "gloomy", "furious"], 1, "expression"),
        ("From which angle was this face photographed?", ["From the front", "From the side"], 1, "headpose"),
        ("Which way is the woman looking?", [], 1, "headpose"),
        ("Is there anybody in this photo?", [], 1, "presence"),
        ("What does the picture show?", ["A face", "An empty room with nobody in it"], 1, "presence"),
        ("Is this person wearing glasses?", [], 1, "attribute"),
        ("Does this person look astonished?", ["Yes", "No"], 1, "expression"),
        (
            "Of the two people shown, who looks younger?",
            ["The person on the left", "The person on the right"],
            2,
            "age",
        ),
        ("Is this a man or a woman?", [], 1, "gender"),
        ("Do these faces match?", ["Yes", "No"], 2, "identity"),
        ("Which statement is true?", ["This is a real person", "This face was made by a computer"], 1, "fake"),
        (
            "Are these two snapshots of one and the same man?",
            ["Yep, same guy", "Nope, two different men"],
            2,
            "identity",
        ),
        ("Is this a genuine photo of a real person or a computer-made face?", [], 1, "fake"),
        ("Is the man or woman in the first photo also the one in the second?", [], 2, "identity"),
        ("Who is this celebrity?", ["A", "B"], 1, None),
        ("Is the person in image 3 the same as in image 1?", [], 3, "identity"),
        ("How many of the other photos show the man in photo 1?", ["0", "1", "2"], 3, "identity"),
        (
            "In which pictures does the person from the first picture appear again?",
            ["Picture 2", "Neither"],
            3,
            "identity",
        ),
        ("Do these two pictures depict one individual?", ["Yes", "No"], 2, "identity"),
        ("Which picture is the odd one out?", ["Picture 1", "Picture 2", "Picture 3"], 3, "identity"),
        ("Who looks happier, the first or the second person?", ["The first", "The second"], 2, "expression"),
        ("Which person looks more serious?", ["First", "Second"], 2, "expression"),
        ("Count the people in this picture.", ["1", "2", "3", "4"], 1, "crowd"),
        ("Are there more than two people in this photo?", [], 1, "crowd"),
        ("Are there at least 3 faces?", [], 1, "crowd"),
        ("Which photo shows somebody else?", ["The first", "The second", "The third"], 3, "identity"),
        ("How many human faces are in this image?", [], 1, "crowd"),
        ("What is the number of distinct faces visible?", [], 1, "crowd"),
        ("How many different people are in this photo?", [], 1, "crowd"),
        ("How many different people are in these photos?", [], 3, "identity"),
        ("Which picture has more than one person?", ["The first", "The second", "Both", "Neither"], 2, "crowd"),
        ("Are there exactly three people in this photo?", [], 1, "crowd"),
        ("Is there only one person in this picture?", [], 1, "crowd"),
        ("How many women are in this photo?", [], 1, "gender"),
    ],
)
def test_the_task_is_decided_once_from_question_and_options(question, options, n, task):
    assert task_of(question, "", list(zip("ABCD", options)), n) == task


def test_either_or_questions_offer_their_alternatives():
    assert [t for _, t in either_or("Does this person look sad or angry?", "expression")] == ["sad", "angry"]
    assert [t for _, t in either_or("Is the face turned to the left or to the right?", "headpose")] == ["left", "right"]
    assert either_or("Is this person sad?", "expression") == []
    # two wordings of one value are one alternative, so this is not an either/or about liveness
    assert either_or("Is this a genuine photo of a real person or a computer-made face?", "attack") == []


def test_pictures_named_by_words_are_read_as_image_sets():
    options = [("A", "Only the first"), ("B", "Only the second"), ("C", "Both of them"), ("D", "Neither of them")]
    reading = read("Which pictures show a female?", options, 2, "gender")
    assert reading.form == "select" and reading.target == frozenset({"Female"})
    assert [c.value for _, _, c in reading.options] == [{1}, {2}, {1, 2}, set()]
    younger = read("Who looks younger?", [("A", "The person on the left"), ("B", "They look the same age")], 2)
    assert younger.form == "extreme" and [c.kind for _, _, c in younger.options] == ["images", "same"]


def test_identity_questions_name_the_image_the_others_are_compared_with():
    options = [("A", "Photo 1"), ("B", "Photo 3"), ("C", "Photos 1 and 3"), ("D", "None")]
    for question, anchor in [
        ("Which photos show the same person as photo 2?", 2),
        ("Which images show the same individual as in the third image?", 3),
        ("How many of the other pictures show the person from picture 2?", 2),
        ("The first image is of person A. Which of the other images show person A?", 1),
    ]:
        reading = read(question, options, 3, "identity")
        assert (reading.form, reading.target) == ("first", anchor), question
    assert read("Is the person in image 3 the same as in image 1?", [], 3, "identity").form == "yesno"
    pairs = read("Which two photos are of the same person?", [("A", "1 and 2"), ("B", "2 and 3")], 3, "identity")
    assert [c.value for _, _, c in pairs.options] == [{1, 2}, {2, 3}]
    assert read("Do all three photos show the same man?", [("A", "Yes"), ("B", "No")], 3).target == (1, 2, 3)
    printed = read("Is this a photo of a printed picture held up to the camera?", [("A", "yes"), ("B", "no")], 1)
    assert (printed.task, printed.asked) == ("attack", True)
    younger = read("Who appears younger?", [("A", "Person 1"), ("B", "Person 2")], 2)
    assert [c.value for _, _, c in younger.options] == [{1}, {2}]


def test_sizes_of_a_turn_are_read_on_the_axis_the_verb_means():
    sizes = [("A", "0-15"), ("B", "15-30"), ("C", "more than 45")]
    for question, axis in [
        ("About how many degrees is the head turned?", "yaw"),
        ("How far is the face rotated to the side?", "yaw"),
        ("How much is the head tilted?", "roll"),
        ("How far does the head tilt down?", "pitch"),
    ]:
        reading = read(question, sizes, 1, "headpose")
        assert (reading.form, reading.target, reading.magnitude) == ("classify", (axis,), True), question
    degrees = read("How far is the head turned?", [("A", "less than 10 degrees"), ("B", "10 to 30 degrees")], 1)
    assert [c.value for _, _, c in degrees.options] == [(0.0, 9.0), (10.0, 30.0)]
    signed = read("What is the yaw angle of the face?", [("A", "0 to 10"), ("B", "10 to 20")], 1, "headpose")
    assert not signed.magnitude  # a named axis keeps its sign


def test_labels_stated_image_by_image():
    options = [("A", "The first photo shows a woman and the second a man"), ("B", "Both photos show men")]
    reading = read("Select the true statement.", options, 2, "gender")
    assert reading.options[0][2].kind == "per_image"
    assert reading.options[0][2].value == {1: frozenset({"Female"}), 2: frozenset({"Male"})}


@pytest.fixture(scope="module")
def sample(face_images):
    """val_119 (a man, 20-29, FairFace val) and a picture with nobody in it."""
    return read_image("src/facellm/samples/fairface/val_119.jpg"), Image.fromarray(np.full((224, 224, 3), 90, np.uint8))


@pytest.mark.slow
def test_the_five_free_questions_are_answered(sample):
    face, empty = sample
    sad_or_angry = answer([face], "Does this person look sad or angry?")
    assert sad_or_angry.split()[0] in ("Sad", "Angry") and "%" in sad_or_angry
    side = answer([face], "Is the face turned to the left or to the right?")
    assert side.split()[0] in ("Left", "Right") and "viewer's" in side and "person's own" in side
    glasses = answer([face], "Is this person wearing glasses?")
    assert glasses.split()[0] in ("Yes", "No") and "Eyeglasses" in glasses and "celebrity photos" in glasses
    assert answer([face], "Is this a man or a woman?").startswith("Man")
    assert answer([face], "Is there anybody in this photo?").startswith("Yes")
    assert answer([empty], "Is there anybody in this photo?").startswith("No")


@pytest.mark.slow
def test_direction_and_yes_no_questions_in_plain_words(sample):
    face, _ = sample
    where = answer([face], "Which way is the person looking?")
    assert "viewer's" in where and "yaw" in where
    assert answer([face], "Is the face shown in profile?").startswith("No")
    assert answer([face], "Is he smiling?").split()[0] in ("Yes", "No")


@pytest.mark.slow
def test_options_are_weighed_not_declined(sample):
    """An unfamiliar option costs nothing: the measured ones are weighed and the answer says how each was judged;
    only options that name nothing measured are declined."""
    face, _ = sample
    reply = answer([face], "Who is shown?\n(A) A man\n(B) A woman\n(C) Nobody is in the picture\n(D) A purple cat")
    assert reply.startswith("A.") and "D not measured" in reply
    judged = re.search(r"C (\d+)% by presence", reply)  # "nobody is shown", checked by face detection: unlikely
    assert judged and int(judged.group(1)) < 20, reply
    reply = answer([face], "How does this person seem to feel?\n(A) cheerful\n(B) furious\n(C) gloomy")
    assert reply[:2] in ("A.", "B.", "C.")
    declined = answer([face], "Which colour is the sky?\n(A) Purple\n(B) Teal")
    assert declined.startswith("cannot measure")


def _fairface_rows(count: int) -> list[dict]:
    with open(DATA / "fairface" / "fairface_label_val.csv", newline="") as f:
        return list(csv.DictReader(f))[1000 : 1000 + count]  # development faces (val 1-2500)


@pytest.mark.slow
@pytest.mark.skipif(not (DATA / "fairface").is_dir(), reason="../shared/data/fairface is not present")
def test_gender_in_everyday_words_on_development_faces():
    """Forty FairFace val faces, each asked in four wordings: well above chance (50%) and nothing declined."""
    wordings = [
        ("Is this a man or a woman?", "", {"Male": "Man", "Female": "Woman"}),
        ("Identify the gender of the individual.\n(A) Feminine\n(B) Masculine", "", {"Male": "B", "Female": "A"}),
        ("Pick the statement that is correct.\n(A) The photo shows a lady\n(B) The photo shows a gentleman", "",
         {"Male": "B", "Female": "A"}),
        ("Is the person in this picture a girl or a boy?", "", {"Male": "Boy", "Female": "Girl"}),
    ]  # fmt: skip
    right = total = 0
    for row in _fairface_rows(40):
        image = read_image(DATA / "fairface" / "fairface_img_margin025" / row["file"])
        for question, _, expected in wordings:
            reply = answer([image], question)
            assert not reply.startswith("cannot measure"), (question, reply)
            right += reply.startswith(expected[row["gender"]])
            total += 1
    assert right / total >= 0.8, right / total


@pytest.mark.slow
@pytest.mark.skipif(not (DATA / "aflw2000").is_dir(), reason="../shared/data/aflw2000 is not present")
def test_head_views_in_words_on_faces_the_pose_model_never_saw():
    """AFLW2000-3D faces of the pose model's held-out fold, clearly frontal (|yaw| < 10) or clearly turned (|yaw| >
    40): "from the front" or "from the side", and which side in the viewer's convention."""
    import json

    from facellm.faces.pose import WEIGHTS

    held = json.loads(WEIGHTS.with_suffix(".json").read_text())["held_out_faces"]
    with open(DATA / "aflw2000" / "labels.csv", newline="") as f:
        yaws = {r["file"]: float(r["yaw"]) for r in csv.DictReader(f)}
    frontal = [name for name in held if abs(yaws[name]) < 10][:5]
    turned = [name for name in held if abs(yaws[name]) > 40][:5]
    right = 0
    for name in frontal + turned:
        image = read_image(DATA / "aflw2000" / name)
        reply = answer([image], "From which angle was this photo taken?\n(A) From the front\n(B) From the side")
        right += reply.startswith("A." if name in frontal else "B.")
        if name in turned:
            side = answer([image], "Is the face turned to the left or to the right?")
            right += side.lower().startswith("left" if yaws[name] > 0 else "right")  # positive yaw: viewer's left
    assert right >= 13, right  # of 15
