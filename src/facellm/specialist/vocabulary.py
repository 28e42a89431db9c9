"""Everyday words for everything the face-analysis models measure, and the matcher that finds them in any wording.

Each `Term` says that a phrase names one value of one measured `Dimension` ("cheerful" names expression happy,
"a senior" names age 60-69 and 70+, "looking to their left" names view left in the subject's convention). Text and
phrases go through the same `tokens` normalisation (case, punctuation, plurals, -ed/-ing, a final -e, men/women),
so "smiled", "smiling" and "smiles" are one word, and "looks X", "appears X", "seems X" need no rule of their own:
the matcher looks for X anywhere. A mention is negated when "not", "no", "n't", "never", "without" or "neither"
comes shortly before it in the same clause.

Directions: the pose model's yaw is positive when the face turns towards the image's left (the person's own
right). Left and right are read in the viewer's convention (the image's left) unless the text says the subject's
("their left", "his own right", "the person's left"); `convention` tells which, and answers name it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from facellm.faces.celeb_attributes import NAMES as CELEB_ATTRIBUTES

Dimension = Literal[
    "gender", "age", "race", "expression", "view", "presence", "identity", "attack", "fake", "quality", "attribute"
]
Convention = Literal["viewer", "subject"]


@dataclass(frozen=True)
class Mention:
    """One phrase of the vocabulary found in a text: which value of which dimension, and where (token index)."""

    dimension: Dimension
    value: str
    negated: bool
    start: int
    end: int
    phrase: str  # the vocabulary's phrase that matched, as written there


_IRREGULAR = {
    "men": "man",
    "women": "woman",
    "children": "child",
    "people": "person",
    "persons": "person",
    "ladies": "lady",
    "gentlemen": "gentleman",
    "babies": "baby",
    "aged": "aged",
    "grey": "gray",
    "moustache": "mustache",
    "moustaches": "mustache",
    "photograph": "photo",
    "photographs": "photo",
    "pictures": "photo",
    "picture": "photo",
    "images": "photo",
    "image": "photo",
    "pics": "photo",
    "pic": "photo",
    "shots": "photo",
    "isn't": "is not",
}
_KEEP = {"glasses", "less", "ss", "this", "is", "has", "was", "his", "yes", "us", "bus", "always", "news", "does"}


def stem(word: str) -> str:
    """One word in the form every inflection of it shares: plurals, -ed, -ing and a final -e removed."""
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if word in _KEEP or len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith(("sses", "shes", "ches", "xes")):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            if word.endswith("i"):
                word = word[:-1] + "y"
            elif len(word) > 3 and word[-1] == word[-2] and word[-1] not in "ls":
                word = word[:-1]  # grinning -> grin, stopped -> stop
            break
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    return word


def tokens(text: str) -> list[str]:
    """`text` as normalised words: lower case, "n't" split into "not", punctuation dropped, each word stemmed."""
    lowered = str(text).lower().replace("’", "'").replace("n't", " not").replace("3/4", "three quarter")
    lowered = re.sub(r"'s\b", "", lowered)
    words = re.findall(r"[a-z]+|\d+", lowered.replace("-", " "))
    out: list[str] = []
    for word in words:
        out += stem(word).split()
    return out


# (dimension, value) -> its phrases, comma-separated. Within a dimension the longest phrase at a place wins.
_TERMS: dict[tuple[Dimension, str], str] = {
    ("gender", "Female"): (
        "woman, female, girl, lady, feminine, gal, madam, womanly, she is a woman, wife, mother, daughter, "
        "sister, actress"
    ),
    ("gender", "Male"): "man, male, boy, guy, gentleman, masculine, dude, lad, husband, father, son, brother, actor",
    ("age", "0-2"): "baby, infant, toddler, newborn",
    ("age", "3-9"): "child, kid, young child, little child, schoolchild, little boy, little girl",
    ("age", "10-19"): "teen, teenager, teenage, adolescent, youth, high school",
    ("age", "20-29"): "adult, grown up, twenty, twenties, young adult, young man, young woman, early adulthood",
    ("age", "30-39"): "adult, grown up, thirty, thirties",
    ("age", "40-49"): "adult, grown up, forty, forties, middle aged, middle age",
    ("age", "50-59"): "adult, grown up, fifty, fifties, middle aged, middle age",
    ("age", "60-69"): "sixty, sixties, senior, elderly, old man, old woman, old person, retiree",
    ("age", "more than 70"): (
        "seventy, seventies, eighty, senior, elderly, old man, old woman, old person, retiree, very old, aged person"
    ),
    ("race", "White"): "white, caucasian, european, white skinned",
    ("race", "Black"): "black, african, african american, afro",
    ("race", "Latino/Hispanic"): "latino, latina, latinx, hispanic, latin american, mexican, latino hispanic",
    ("race", "East Asian"): "east asian, asian, chinese, japanese, korean",
    ("race", "Southeast Asian"): (
        "southeast asian, south east asian, asian, vietnamese, thai, filipino, indonesian, malaysian"
    ),
    ("race", "Indian"): "indian, south asian, pakistani, bangladeshi, sri lankan",
    ("race", "Middle Eastern"): "middle eastern, middle east, arab, arabic, persian, iranian, turkish",
    ("expression", "angry"): (
        "angry, angrier, angriest, anger, mad, madder, furious, annoyed, irritated, irate, enraged, rage, cross, "
        "hostile, fuming, outraged"
    ),
    ("expression", "disgust"): "disgust, disgusted, revolted, grossed out, repulsed, nauseated, repelled, disgusting",
    ("expression", "fear"): (
        "fear, fearful, afraid, scared, frightened, terrified, anxious, nervous, worried, panic, panicked, "
        "alarmed, horrified"
    ),
    ("expression", "happy"): (
        "upbeat, beaming, radiant, sunny, in a good mood, good mood, happy, happier, happiest, happiness, joy, joyful, "
        "cheerful, glad, "
        "pleased, delighted, smile, smiling, grin, laugh, amused, cheery, elated, merry, jolly"
    ),
    ("expression", "neutral"): (
        "neutral, without any emotion, without emotion, showing no emotion, calm, expressionless, blank, "
        "impassive, emotionless, indifferent, straight face, poker face, deadpan, relaxed, serene, composed, serious, "
        "no emotion, no particular emotion, no expression, unemotional, "
        "nothing in particular"
    ),
    ("expression", "sad"): (
        "sad, sadder, saddest, sadness, unhappy, unhappier, sorrowful, upset, gloomy, depressed, miserable, "
        "melancholy, downcast, crying, tearful, sorrow, grief, grieving, heartbroken, dejected, feeling down"
    ),
    ("expression", "surprise"): (
        "surprise, surprised, astonished, amazed, shocked, startled, stunned, astounded, taken aback"
    ),
    ("expression", "contempt"): "contempt, contemptuous, scornful, disdain, disdainful, sneer, sneering",
    ("view", "frontal"): (
        "front, frontal, facing the camera, face the camera, straight ahead, straight at the camera, head on, "
        "full face, face on, directly at the camera, at the camera, into the camera, toward the camera, towards "
        "the camera, facing forward, straight on, straight"
    ),
    ("view", "three-quarter"): (
        "three quarter, half profile, partial profile, semi profile, slightly turned, at an angle, angled, "
        "oblique, diagonal, partly turned, somewhat turned, slight angle, slightly to the side"
    ),
    ("view", "profile"): "profile, side view, from the side, side on, sideways, side, full profile, side profile",
    ("view", "away"): "turned away, looking away, away from the camera, averted, not facing the camera",
    ("view", "left"): "left, leftward, leftwards",
    ("view", "right"): "right, rightward, rightwards",
    ("view", "up"): "up, upward, upwards, raised, chin up, to the sky, ceiling, from below, low angle, tilted back",
    ("view", "down"): (
        "down, downward, downwards, lowered, to the floor, to the ground, from above, high angle, bowed, tilted forward"
    ),
    ("presence", "face"): (
        "face, person, someone, somebody, anybody, anyone, human, individual, people, a person, visible face"
    ),
    ("presence", "nobody"): (
        "no one, nobody, no face, no person, no people, empty, no human, nothing, not anyone, no faces"
    ),
    ("identity", "same"): (
        "same person, same individual, one person, same guy, same dude, same man, same woman, same lady, same face, "
        "identical, match, "
        "one and the same, same people, same identity, single person, same human, both of the same, one individual, "
        "single individual"
    ),
    ("identity", "different"): (
        "different people, different person, different individual, two people, two different, not the same, "
        "distinct, stranger, two individual, different identity, separate people, two person, different face, "
        "don't match, not match, mismatch"
    ),
    ("attack", "spoof"): (
        "spoof, attack, presentation attack, printed photo, print, photo of a photo, replay, screen, mask, "
        "recaptured, printout, photo of a printout, paper, not live, fraud"
    ),
    ("attack", "live"): "live, bona fide, bonafide, living person, live person, genuine, real person",
    ("fake", "fake"): (
        "made by a computer, computer made, made by ai, created by ai, created by a computer, computer, ai, "
        "fake, deepfake, synthetic, generated, ai generated, computer generated, gan, manipulated, swapped, "
        "artificial, not real, forged, doctored, rendered, fabricated"
    ),
    ("fake", "real"): "real, genuine, authentic, natural, real photo, pristine, unaltered",
    ("quality", "blurry"): "blurry, blurred, blur, out of focus, unfocused, soft, fuzzy, not sharp",
    ("quality", "sharp"): "sharp, in focus, crisp, clear, focused, well focused",
    ("quality", "dark"): "dark, underexposed, dim, poorly lit, badly lit, low light, dimly lit",
    ("quality", "bright"): "bright, overexposed, well lit, brightly lit, washed out",
}

_ATTRIBUTE_WORDS: dict[str, str] = {
    "5_o_Clock_Shadow": "stubble, five o'clock shadow, 5 o'clock shadow, unshaven",
    "Arched_Eyebrows": "arched eyebrows, arched brows",
    "Attractive": "attractive, good looking, handsome, beautiful, pretty",
    "Bags_Under_Eyes": "bags under the eyes, eye bags, puffy eyes, bags under eyes",
    "Bald": "bald, hairless head, shaved head, no hair",
    "Bangs": "bangs, fringe",
    "Big_Lips": "big lips, full lips, thick lips, large lips",
    "Big_Nose": "big nose, large nose",
    "Black_Hair": "black hair, black haired, dark hair",
    "Blond_Hair": "blond, blonde, fair hair, golden hair",
    "Blurry": "blurry photo, blurry picture, blurry image",
    "Brown_Hair": "brown hair, brunette, brown haired",
    "Bushy_Eyebrows": "bushy eyebrows, thick eyebrows, bushy brows",
    "Chubby": "chubby, plump, round faced",
    "Double_Chin": "double chin",
    "Eyeglasses": "glasses, eyeglasses, spectacles, specs, sunglasses, eyewear",
    "Goatee": "goatee",
    "Gray_Hair": "gray hair, grey hair, white hair, silver hair, gray haired, grey haired",
    "Heavy_Makeup": "makeup, make up, heavy makeup, cosmetics",
    "High_Cheekbones": "high cheekbones",
    "Male": "",
    "Mouth_Slightly_Open": "mouth open, open mouth, mouth slightly open, parted lips, lips parted",
    "Mustache": "mustache",
    "Narrow_Eyes": "narrow eyes, squinting, squint",
    "No_Beard": "clean shaven, no beard, beardless",
    "Oval_Face": "oval face",
    "Pale_Skin": "pale skin, pale, fair skin",
    "Pointy_Nose": "pointy nose, pointed nose",
    "Receding_Hairline": "receding hairline, balding",
    "Rosy_Cheeks": "rosy cheeks, red cheeks, flushed cheeks",
    "Sideburns": "sideburns",
    "Smiling": "",
    "Straight_Hair": "straight hair",
    "Wavy_Hair": "wavy hair, curly hair, curls",
    "Wearing_Earrings": "earring, earrings",
    "Wearing_Hat": "hat, cap, beanie, headwear, hood, helmet",
    "Wearing_Lipstick": "lipstick",
    "Wearing_Necklace": "necklace",
    "Wearing_Necktie": "necktie, tie",
    "Young": "",
}
# A beard is measured as CelebA's No_Beard being false: "has a beard" names the value BEARD_ATTRIBUTE.
BEARD_ATTRIBUTE = "Beard"

for _name in CELEB_ATTRIBUTES:
    _TERMS[("attribute", _name)] = ", ".join(
        filter(None, (_name.lower().replace("_", " "), _ATTRIBUTE_WORDS.get(_name)))
    )
_TERMS[("attribute", BEARD_ATTRIBUTE)] = "beard, bearded, facial hair, full beard"


_Entry = tuple[tuple[str, ...], Dimension, str, str]


def _phrase_index() -> dict[str, list[_Entry]]:
    """Every phrase as its token sequence (with its dimension, value and written form), by its first token."""
    index: dict[str, list[_Entry]] = {}
    for (dimension, value), phrases in _TERMS.items():
        for phrase in phrases.split(","):
            words = tuple(tokens(phrase))
            if words:
                index.setdefault(words[0], []).append((words, dimension, value, phrase.strip()))
    for entries in index.values():
        entries.sort(key=lambda entry: -len(entry[0]))
    return index


_INDEX = _phrase_index()
NEGATORS = {"not", "no", "never", "without", "neither", "nor", "non", "lack", "nobody"}
_CLAUSE_BREAKS = {"but", "and", "or", "while", "whereas", "than"}
NEGATION_REACH = 4  # tokens before a mention in which a negator negates it


def mentions(text: str, dimensions: tuple[Dimension, ...] | None = None) -> list[Mention]:
    """The vocabulary's phrases found in `text`, in order, each with its negation. Within one dimension the longest
    phrase wins ("east asian" is not also "asian"); phrases of other dimensions may overlap it ("young man" is an
    age and a gender)."""
    words = tokens(text)
    found: list[Mention] = []
    for i, word in enumerate(words):
        longest: dict[Dimension, int] = {}
        for phrase, dimension, value, written in _INDEX.get(word, ()):
            if dimensions is not None and dimension not in dimensions:
                continue
            if len(phrase) < longest.get(dimension, 0) or tuple(words[i : i + len(phrase)]) != phrase:
                continue
            longest[dimension] = len(phrase)
            found.append(Mention(dimension, value, _negated(words, i, phrase), i, i + len(phrase), written))
    unique = list(dict.fromkeys(found))
    return [
        m
        for m in unique
        if not any(
            o.dimension == m.dimension and o.start <= m.start and m.end <= o.end and o.end - o.start > m.end - m.start
            for o in unique
        )
    ]


def _negated(words: list[str], start: int, phrase: tuple[str, ...]) -> bool:
    if phrase[0] in NEGATORS:  # "no one", "not real": the negation is the phrase's own
        return False
    for k in range(start - 1, max(-1, start - 1 - NEGATION_REACH), -1):
        if words[k] in _CLAUSE_BREAKS:
            return False
        if words[k] in NEGATORS:
            return True
    return False


def values(text: str, dimension: Dimension, include_negated: bool = False) -> set[str]:
    """The values of `dimension` that `text` names (not negated, unless `include_negated`)."""
    return {m.value for m in mentions(text, (dimension,)) if include_negated or not m.negated}


def convention(text: str) -> Convention | None:
    """Which side "left" and "right" mean in `text`: the subject's ("their left", "his own right", "the person's
    left") or the viewer's ("the viewer's left", "our left", "the left of the image"); None when it does not say."""
    lowered = str(text).lower()
    if re.search(
        r"\b(their|his|her|its|own|the (person|subject|man|woman|individual)'?s?|subject'?s?) (own )?(left|right)\b"
        r"|\bsubject'?s (point of view|perspective)",
        lowered,
    ):
        return "subject"
    if re.search(
        r"\b(viewer|camera|observer|our|my|image|picture|photo)'?s? (left|right)\b|\bfrom (our|the viewer'?s|the "
        r"camera'?s|my) (point of view|perspective|side)\b|\b(left|right) (side )?of the (image|picture|photo|frame)"
        r"|\bas (we|you) (see|look at|view) it\b|\bin the (image|picture|photo)'?s? (left|right)",
        lowered,
    ):
        return "viewer"
    return None
