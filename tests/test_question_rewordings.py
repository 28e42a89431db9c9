"""Other words, same question: for each of FaceXBench's question forms, three or more rewordings written here reach
the reading the real wording reaches (same measurement, form, target and negation), with the real options."""

from __future__ import annotations

import pytest

from facellm.specialist.reading import read

IMAGES = ["Image 1", "Image 2", "Image 3", "None of the above"]
PAIRS = ["Image 1, Image 2", "Image 2, Image 3", "Image 3, Image 1", "None of the above"]
TWO = ["Image 1", "Image 2", "Both Images", "None of the above"]
COUNTS = ["0", "1", "2", "3"]
ORDERS = [
    "Image 1, Image 2, Image 3",
    "Image 3, Image 1, Image 2",
    "Image 2, Image 1, Image 3",
    "Image 3, Image 2, Image 1",
]
YES_NO = ["Yes", "No"]
BINS = ["-10 to 0", "0 to 10", "10 to 20", "20 to 30"]

# (real FaceXBench question, its options, number of images, rewordings)
FORMS = [
    (
        "Who among these two appears to be older?",
        ["Image 1", "Image 2", "Both are of the same age group", "None of the above"],
        2,
        ["Which of the two people looks older?", "Who is the elder of these two?", "Which person seems older?"],
    ),
    (
        "Among these images, which image shows the oldest person?",
        ["Image 1", "Image 2", "Image 3", "All are of same age group"],
        3,
        ["Which picture has the oldest individual?", "Who is the oldest here?", "Pick the image of the oldest person."],
    ),
    (
        "Among these images, which image shows the youngest person?",
        ["Image 1", "Image 2", "Image 3", "All are of same age group"],
        3,
        ["Which photo shows the youngest face?", "Who looks youngest?", "Which of these people is the youngest?"],
    ),
    (
        "Arrange the following images in ascending order of age.",
        ORDERS,
        3,
        [
            "Sort these pictures from youngest to oldest.",
            "Order the photos by increasing age.",
            "Rank these people by age, youngest first.",
        ],
    ),
    (
        "Arrange the following images in descending order of age.",
        ORDERS,
        3,
        [
            "Sort the images from oldest to youngest.",
            "Order these faces by decreasing age.",
            "List the pictures in descending age order.",
        ],
    ),
    (
        "Which image shows a teenager?",
        IMAGES,
        3,
        ["Which picture shows an adolescent?", "Who here is a teen?", "Which image has someone aged 10-19?"],
    ),
    (
        "Which image shows a person in 30-39 age group?",
        TWO,
        2,
        [
            "Which photo shows someone aged 30 to 39?",
            "Which picture has a person between 30 and 39 years old?",
            "Identify the image of a person aged 30-39.",
        ],
    ),
    (
        "Which of these individuals appears to be under the age of 49?",
        IMAGES,
        3,
        [
            "Who looks younger than 49?",
            "Which person seems to be below 49 years of age?",
            "Which image shows someone under 49?",
        ],
    ),
    (
        "How many images have a person of age between 10 and 49?",
        COUNTS,
        3,
        [
            "How many of the people are aged 10 to 49?",
            "Count the images showing someone between 10 and 49 years old.",
            "What number of pictures show a person aged 10-49?",
        ],
    ),
    (
        "Which image shows a person in more than 70 age group?",
        TWO,
        2,
        ["Which image shows someone older than 70?", "Who is over 70?", "Which picture has a person aged 70+?"],
    ),
    (
        "Which images depict female individuals?",
        PAIRS,
        3,
        ["Which pictures show women?", "Select the photos of females.", "Which of the images show a woman?"],
    ),
    (
        "How many images show male individuals?",
        COUNTS,
        3,
        ["How many of these pictures show men?", "Count the male faces.", "What number of images depict a man?"],
    ),
    (
        "Select the images that show individuals with male features.",
        PAIRS,
        3,
        ["Which photos are of men?", "Pick the pictures of male persons.", "Which images show a boy or a man?"],
    ),
    (
        "How many images depict individuals belonging to East Asian race?",
        COUNTS,
        3,
        [
            "How many East Asian people are shown?",
            "Count the images of East Asian individuals.",
            "How many of the faces are East Asian?",
        ],
    ),
    (
        "Which image shows a person of East Asian descent?",
        IMAGES,
        3,
        [
            "Which photo shows an East Asian person?",
            "Who here is of East Asian origin?",
            "Pick the image of an East Asian individual.",
        ],
    ),
    (
        "Do both images depict individuals of the same race category?",
        ["No", "Yes", "Image 2", "Image 1"],
        2,
        [
            "Are the two people of the same race?",
            "Do these two share an ethnicity?",
            "Is the race of both people the same?",
        ],
    ),
    (
        "Which images depict people of the same race?",
        PAIRS,
        3,
        [
            "Which images share the same ethnicity?",
            "Which photos show individuals of identical race?",
            "Which pictures have people with matching race?",
        ],
    ),
    (
        "Which combination of images depicts individuals of mixed origins?",
        PAIRS,
        3,
        [
            "Which images show people of different races?",
            "Which pair of photos has mixed ethnic origins?",
            "Which images depict individuals of different ethnicities?",
        ],
    ),
    (
        "Are there any images showing individuals belonging to the Middle Eastern race?",
        PAIRS,
        3,
        [
            "Which pictures show Middle Eastern people?",
            "Is anyone here Middle Eastern?",
            "Which images depict a person of Middle Eastern origin?",
        ],
    ),
    (
        "How many images have a person with the expression 'surprise'?",
        COUNTS,
        3,
        [
            "How many faces look surprised?",
            "Count the pictures where someone shows surprise.",
            "How many images show a surprised expression?",
        ],
    ),
    (
        "Which images do not have a person with the expression 'fear'?",
        PAIRS,
        3,
        [
            "Which images don't show a fearful face?",
            "Which pictures are without an expression of fear?",
            "In which images is the person not afraid?",
        ],
    ),
    (
        "Which image has a person with the expression 'Happy'?",
        ["Both", "Neither", "Image 2", "Image 1"],
        2,
        ["Which photo shows a happy person?", "Who is smiling?", "Which picture shows joy?"],
    ),
    (
        "Which pair of images share the same expression?",
        ["Image 2 & Image 3", "Image 1 & Image 3", "Image 1 & Image 2"],
        3,
        [
            "Which two faces show the same emotion?",
            "Which images have matching expressions?",
            "Which pictures share an expression?",
        ],
    ),
    (
        "Which expression is the person showing in the image?",
        ["happy", "sad", "neutral", "surprise"],
        1,
        ["What emotion does this face show?", "How is this person feeling?", "Name the facial expression."],
    ),
    (
        "Which two images show the same person?",
        ["Images 1 and 2", "Images 4 and 5", "Images 1 and 4", "Images 5 and 4"],
        5,
        [
            "Which pair of pictures shows the same individual?",
            "Which two photos are of the same person?",
            "Which 2 images depict the same identity?",
        ],
    ),
    (
        "The first image is of a person A. The same person A is present in which of the other images?",
        ["Image 2", "Image 5", "Image 4", "Image 3"],
        5,
        [
            "Which of the other images show the same person as the first image?",
            "Person A is in the first photo; which other photos show person A?",
            "In which other pictures does the same individual as in the first picture appear?",
        ],
    ),
    (
        "The first image is of a person A. The same person A is present in how many of the remaining images?",
        ["5", "4", "1", "3"],
        6,
        [
            "How many of the other photos show the same person as the first image?",
            "Person A is in the first picture. How many of the other pictures show person A?",
            "Count the other images that show the same individual as the first photo.",
        ],
    ),
    (
        "There are two images of the same person. Which images are of people different from that person?",
        ["Image 4", "Image 1", "Image 3", "Image 3 and Image 4"],
        4,
        [
            "Two photos show one person; which images show someone different from that person?",
            "Exactly two pictures are of one individual. Which pictures show people different from this individual?",
            "Two of the images show the same person: which images are different from that person?",
        ],
    ),
    (
        "How many pairs of images show the same person?",
        COUNTS,
        6,
        [
            "How many pairs of photos are of the same individual?",
            "Count the pairs of images that show the same person.",
            "What is the number of matching pairs of the same person?",
        ],
    ),
    (
        "How many unique identities are present in these images?",
        ["4", "2", "1", "3"],
        4,
        [
            "How many different people appear in these photos?",
            "How many distinct individuals are shown?",
            "Count the unique identities in the images.",
        ],
    ),
    (
        "Are the people in Image 1 and Image 2 the same individual?",
        YES_NO,
        2,
        ["Is this the same person?", "Same individual?", "Do image 1 and image 2 show the same person?"],
    ),
    (
        "What is the roll angle range of headpose orientation for the person in this image?",
        BINS,
        1,
        [
            "In which range is the head's roll angle?",
            "What is the roll of the head pose?",
            "How much is the head rolled? Pick the roll range.",
        ],
    ),
    (
        "Which images have a person with the yaw angle of headpose orientation in range 0 to 10?",
        IMAGES,
        3,
        [
            "Which photos show a head yaw between 0 and 10 degrees?",
            "In which images is the yaw from 0 to 10?",
            "Select the pictures whose yaw angle lies in 0 to 10.",
        ],
    ),
    (
        "How many images have a person with the pitch angle of headpose orientation in range 10 to 20?",
        COUNTS,
        3,
        [
            "How many faces have a pitch between 10 and 20 degrees?",
            "Count the images with head pitch from 10 to 20.",
            "In how many pictures is the pitch angle in 10 to 20?",
        ],
    ),
    (
        "Which pair of images have person that share the same roll angle bin index of headpose orientation, given "
        "that the total roll angle range is from -100 to 100 degrees, with bins of 10 degrees each?",
        PAIRS,
        3,
        [
            "Which two heads fall in the same 10-degree roll bin?",
            "Which pair of photos share a roll bin?",
            "Which images have their roll angle in the same bin?",
        ],
    ),
    (
        "Estimate the count of people present in this image.",
        ["22 to 26", "27 to 31", "32 to 36", "17 to 21"],
        1,
        [
            "How many people are in this crowd?",
            "Roughly how many individuals does the photo show?",
            "What is the people count in this picture?",
        ],
    ),
    (
        "Which image is spoof attacked?",
        TWO,
        2,
        ["Which photo is a presentation attack?", "Which picture shows a spoof?", "Which image is the attack?"],
    ),
    (
        "How many images are bonafide?",
        COUNTS,
        3,
        ["How many of the faces are genuine?", "Count the bona fide images.", "How many pictures are live faces?"],
    ),
    (
        "Which images are not deepfakes?",
        PAIRS,
        3,
        ["Which pictures are real?", "Which photos are authentic?", "Which images are not manipulated?"],
    ),
    (
        "How many images are deepfakes?",
        COUNTS,
        3,
        ["How many of the pictures are fake?", "Count the synthetic faces.", "How many images were generated?"],
    ),
]


ASPECTS = [
    (
        "Describe the face pose of the image based on the visual information.",
        [],
        1,
        ["Describe the head pose.", "Please describe how the head is oriented.", "Describe the pose of this face."],
    ),
    (
        "Describe the lighting and image quality of the image based on the visual information.",
        [],
        1,
        [
            "Describe the lighting of this photo.",
            "Describe the image quality.",
            "Please describe how sharp the face is.",
        ],
    ),
    ("Describe this image.", [], 1, ["Describe the photo.", "Please describe this picture.", "Describe it."]),
]
FORMS += ASPECTS


def _key(question: str, options: list[str], n: int):
    reading = read(question, list(zip("ABCD", options)), n)
    assert reading is not None and reading.understood, question
    return reading.task, reading.form, reading.target, reading.negated, reading.asked


@pytest.mark.parametrize(("real", "options", "n", "rewordings"), FORMS, ids=[f[0][:50] for f in FORMS])
def test_rewordings_reach_the_real_forms_reading(real, options, n, rewordings):
    assert len(rewordings) >= 3
    expected = _key(real, options, n)
    for question in rewordings:
        assert _key(question, options, n) == expected, question


def test_free_questions_are_read_without_options():
    older = read("Is the person in the second photo older than the first?", [], 2)
    assert (older.task, older.form, older.target) == ("age", "yesno", ("older", 2))
    same = read("Same individual?", [], 2)
    assert (same.task, same.form, same.target) == ("identity", "yesno", (1, 2))
    woman = read("Is this person a woman?", [], 1)
    assert (woman.task, woman.form, woman.target) == ("gender", "yesno", frozenset({"Female"}))


@pytest.mark.parametrize(
    ("question", "n", "expected"),
    [
        (
            "Which images do not have a person with the expression 'fear'?",
            4,
            ("expression", "select", frozenset({"fear"}), True),
        ),
        ("Which images are not deepfakes?", 3, ("fake", "statement", None, False)),
        ("Which images depict female individuals?", 3, ("gender", "select", frozenset({"Female"}), False)),
        ("How many images show male individuals?", 3, ("gender", "count", frozenset({"Male"}), False)),
        ("Among these images, which image shows the youngest person?", 3, ("age", "extreme", "younger", False)),
        ("Arrange the following images in descending order of age.", 3, ("age", "order", "descending", False)),
        (
            "Which of these individuals appears to be under the age of 49?",
            3,
            ("age", "select", frozenset({"0-2", "3-9", "10-19", "20-29", "30-39", "40-49"}), False),
        ),
        (
            "The first image is of person A. Which of the other images are not person A?",
            4,
            ("identity", "first", 1, True),
        ),
    ],
)
def test_real_forms_are_read_as_meant(question, n, expected):
    """The reading itself, not only its agreement with rewordings: a polarity or target misread fails here (the key
    check over the real files cannot see polarity, since some labelling fits either way)."""
    reading = read(question, list(zip("ABCD", ["Image 1", "Image 2", "Image 3", "None of the above"])), n)
    assert (reading.task, reading.form, reading.target, reading.negated) == expected
    if reading.prop is not None:
        assert reading.asked is False  # "not deepfakes": the images where the property does not hold
