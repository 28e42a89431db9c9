"""What a question is about: the words that make it about one measurement (`topic`), the label vocabularies and
yes/no properties its options are read against, and the FairFaceGPT aspects a description request names."""

from __future__ import annotations

import re

from facellm.labels import FAIRFACE_AGES, FAIRFACE_GENDERS, FAIRFACE_RACES
from facellm.specialist.meaning import Property
from facellm.specialist.vocabulary import mentions

EXPRESSIONS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise", "contempt")
EXPRESSION_WORDS = {
    "angry": ("anger", "angry", "angrier", "angriest"),
    "disgust": ("disgust",),
    "fear": ("fear", "afraid", "scared"),
    "happy": ("happy", "happier", "happiest", "happiness", "joy", "smil"),
    "neutral": ("neutral", "calm"),
    "sad": ("sad", "sadder", "saddest", "sadness"),
    "surprise": ("surprise", "surprised"),
    "contempt": ("contempt",),
}
FACE_ATTACK = Property(
    ("attack", "spoof", "not bonafide", "not bona fide"), ("bonafide", "bona fide", "real", "genuine", "live")
)
SYNTHETIC_FACE = Property(
    ("fake", "deepfake", "manipulated", "synthetic", "generated", "swapped"),
    ("real", "genuine", "authentic", "pristine", "not deepfake"),
)
AXES = ("yaw", "pitch", "roll")
# The axis a question means when it names none, by its verb (tried in order): turning is yaw, nodding or tilting up
# or down is pitch, tilting or leaning otherwise is roll.
IMPLIED_AXES = (
    (r"\b(turn\w*|rotat\w*|to the side)\b", "yaw"),
    (r"\b(nod\w*|(tilt\w*|lean\w*) (up|down|forward|back)\w*)", "pitch"),
    (r"\b(tilt\w*|lean\w*)\b", "roll"),
)
VOCABULARY = {"age": FAIRFACE_AGES, "gender": FAIRFACE_GENDERS, "race": FAIRFACE_RACES, "expression": EXPRESSIONS}

# Topics, first match wins: the words that make a question about one measurement.
NOT_PEOPLE = r"(?! (?:people|persons|individuals|faces|heads))"
# People counted, as questions name them ("how many human faces", "the number of different people").
PEOPLE = (
    r"((human|different|distinct|separate|visible|real|individual) )?"
    r"(faces|people|persons|individuals|folks|humans|human beings|heads|kids|children|adults)"
)
TOPICS = (
    (
        "attack",
        r"\b(spoof\w*|bona ?fide|anti-spoofing|presentation attack|attacks?|attacked|genuine|liveness|"
        r"live (face|person|people)s?)\b",
    ),
    ("fake", r"\b(deepfakes?|fakes?|(is|are) real|image is real|manipulated|synthetic|generated|authentic)\b"),
    (
        "expression",
        r"\b(expressions?|emotions?|feeling|surprised?|happy|happier|happiest|happiness|sad|sadder|saddest|sadness|"
        r"fear\w*|afraid|angry|angrier|angriest|"
        r"anger|disgust\w*|neutral|smil\w*|joy|contempt)\b",
    ),
    (
        "identity",
        r"\b(same (person|individual|identity|people|man|woman|guy|dude|fellow|lady|gal|face)|"
        r"one and the same|(unique|distinct|different|"
        r"separate) (people|persons|"
        r"individuals|identities)|identities|person a(?=[.?,;!]|\s+(is|are)\b|$)|who is who|pairs? of "
        r"images show|different from (that|this|the) (person|individual))",
    ),
    (
        "age",
        rf"\b(age|ages|aged|how old|years old|older|younger|oldest|youngest|more youthful|elder\w*|teen\w*|"
        rf"adolescen\w*|child\w*|kids?|(under|over|below|above) (the age of )?\d+\+?{NOT_PEOPLE}|\d+ years|\d+\+)",
    ),
    ("gender", r"\b(gender|sex|males?|females?|man|woman|men|women|boys?|girls?)\b"),
    (
        "race",
        r"\b(race|races|racial|ethnic\w*|descent|origins?|asian|black|white|indian|latino\w*|hispanic|"
        r"middle eastern)\b",
    ),
    ("headpose", r"\b(yaw|pitch|roll|head ?pose|head orientation|facing|turned)\b"),
    (
        "crowd",
        rf"\b(how many {PEOPLE}|number of {PEOPLE}|count of {PEOPLE}|people count|crowd|"
        rf"count (the |all )?{PEOPLE}|"
        rf"((more|fewer|less) than|at (least|most)|exactly|only|just) "
        rf"(\d+|one|a single|two|three|four|five|six|seven|eight|nine|ten) ({PEOPLE}|person|face|individual|human))\b",
    ),
    ("quality", r"\b(image quality|blurry|blurred|sharpness|brightness|lighting)\b"),
)

RACE_WORDS = (  # longest first: "southeast asian" before "asian"
    ("south asian", {"Indian"}),
    ("southeast asian", {"Southeast Asian"}),
    ("south east asian", {"Southeast Asian"}),
    ("east asian", {"East Asian"}),
    ("asian", {"East Asian", "Southeast Asian"}),
    ("black", {"Black"}),
    ("white", {"White"}),
    ("indian", {"Indian"}),
    ("middle eastern", {"Middle Eastern"}),
    ("latino", {"Latino/Hispanic"}),
    ("hispanic", {"Latino/Hispanic"}),
)


# Questions about what no shipped model measures, whatever words they share with the topics above: CelebA's 40
# attributes ("Smiling", "Male" among them), celebrities' names, segmentation regions, tool (API) choices.
ELSEWHERE = r"\b((?<!demographic )attributes?|celebrit\w*|segment\w*|api_\w+)\b"


# FairFaceGPT's aspect questions ("Describe the face pose of the image based on the visual information.", "Describe
# this image.") and other requests for a description: the aspects named, in the order of data/prompts' aspects.
DESCRIBE = r"^\s*(please\s+)?(describe|summari[sz]e|characteri[sz]e)\b"
ASPECT_WORDS = (
    ("demographics", r"demographic|age\b|gender|race|ethnic"),
    ("facial_structure", r"structure|shape|features"),
    ("skin_texture", r"skin|texture"),
    ("expression", r"expression|emotion|mood|feel"),
    ("lighting_quality", r"lighting|light\b|quality|sharp|blur"),
    ("pose", r"pose|orientation|head\b"),
    ("forensic", r"forensic|identification"),
)


def aspects(question: str) -> tuple[str, ...]:
    """The FairFaceGPT aspects a description request names; ("detail",) when it names none ("Describe this image.")."""
    lowered = question.lower()
    return tuple(key for key, words in ASPECT_WORDS if re.search(rf"\b({words})", lowered)) or ("detail",)


# Words that only free wordings use, tried after TOPICS: feelings, directions, presence, CelebA attributes, quality.
FREE_TOPICS = (
    (
        "identity",
        r"\b(one (person|individual|human)|a single (person|individual)|odd one out|(doesn't|does not) belong|"
        r"(somebody|someone) else|shows? a different (person|individual)|"
        r"same (man|woman|guy|dude|fellow|lady|gal|face|one|individuals?|human)|"
        r"match(es|ing)?|identical|also (in|the one in|"
        r"shown in|present in|appears? in)|appears? in both|in both (photos|pictures|images)|"
        r"(appears?|shows? up|turns? up|seen|recurs?) again|the same as (in|the one in)|(shows?|showing|depicts?|"
        r"depicting|contains?|containing|includes?|including|features?|featuring) the (same )?person (in|from|of) "
        r"(the )?(image|photo|picture|pic|first|second|third|fourth))\b",
    ),
    ("expression", r"\b(feel|feels|mood|emotional|emotion|seem to be feeling)\b"),
    (
        "headpose",
        r"\b(angle|view|direction|looking|look (to|toward|towards|up|down|left|right|at|away)|pointing|points|"
        r"profile|orientation|which way|tilt\w*|rotated|frontal|turning|faces (left|right|the camera))\b",
    ),
    (
        "presence",
        r"\b(is there|are there|anybody|anyone|someone|somebody|nobody|no one|any (person|people|faces?|human)|"
        r"(contains?|shows?|includes?) (a|any) (face|person|human))\b",
    ),
    ("quality", r"\b(sharp|in focus|out of focus|dark|bright|well lit|exposure|resolution|blur)\b"),
    ("fake", r"\b(real|fake|genuine|authentic|ai|photoshopped|edited)\b"),
)


def free_topic(text: str, n_images: int) -> str | None:
    """The measurement a free wording is about by FREE_TOPICS or a CelebA attribute it names (glasses, a beard)."""
    lowered = text.lower()
    for task, pattern in FREE_TOPICS:
        if task == "presence" and mentions(lowered, ("attribute",)):
            return "attribute"  # after feelings and directions, before presence, quality and fakes
        if re.search(pattern, lowered) and (task != "identity" or n_images >= 2):
            return task
    return None


def topic(text: str, describe: bool = True) -> str | None:
    """The measurement a question is about, from its words; None when it is about none the specialist has.
    `describe`: a request for a description is one (not for a question with options)."""
    lowered = text.lower()
    if re.search(ELSEWHERE, lowered):
        return None
    if describe and re.search(DESCRIBE, lowered):
        return "aspect"
    return next((task for task, pattern in TOPICS if re.search(pattern, lowered)), None)
