"""Face questions in everyday words: a development set written here, answered by the specialist.

About 700 questions over every sub-task the specialist claims, worded the way people who never read FaceXBench ask:
questions and commands, yes/no, either/or, options as words or sentences, options about other checkable facts beside
the right one, synonyms. Every answer key comes from the labels of ../shared/data's development parts:

  gender, age, race     FairFace val 1-2500 (the attribute model trained on FairFace train)
  who looks younger     pairs of FairFace val faces two or more age groups apart
  same person           LFW View-2 folds 1-5 pairs
  expression            RAF-DB's held-out fifth (faces/splits.py)
  head view             AFLW2000-3D's held-out fold (the 97 faces the pose model never saw), faces away from
                        the wording's boundaries (frontal |yaw| < 12, three-quarter 28-52, profile > 68 degrees)
  anybody there         FairFace val faces, and plain pictures made here (noise, gradients, flat colours)
  live or printed       NUAA subjects 7-9 (held out from the liveness model)
  real or generated     the real/StyleGAN set's held-out fifth

A third of the questions (by a hash of their id) is kept aside: its results are printed only with --aside, to be
looked at once, at the end of the work, not while the reader is being written. The vocabulary and these wordings
were written by the same person, so the development part flatters the reader; the part aside is the fairer figure,
and held-out wordings written by others fairer still.

Run: python -m bench.accuracy.wording_set [--aside] [--only gender_one,head_view] [--show-wrong 5] [--write FILE.jsonl]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import time
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from bench.paths import SHARED
from facellm.faces import splits
from facellm.faces.embed import read_pairs
from facellm.faces.pose import WEIGHTS as POSE_WEIGHTS
from facellm.images import read_image
from facellm.labels import normalise
from facellm.specialist import answer

DATA = SHARED / "data"


@dataclass
class Item:
    """One question: its images, text, options (none for a free question) and what a right answer is."""

    id: str
    category: str
    images: list  # paths or PIL images made here
    question: str
    options: list[str] = field(default_factory=list)
    key: str = ""  # the right option's text (multiple choice)
    starts: tuple[str, ...] = ()  # a free answer is right when it starts with one of these (case-insensitive)

    @property
    def aside(self) -> bool:
        return zlib.crc32(self.id.encode()) % 3 == 0

    def prompt(self) -> str:
        return self.question + "".join(f"\n({letter}) {text}" for letter, text in zip("ABCDEFGH", self.options))


def _mc(rng: random.Random, right: str, wrong: list[str], keep_order: bool = False) -> tuple[list[str], str]:
    options = [right, *wrong]
    if not keep_order:
        rng.shuffle(options)
    return options, right


# ---------------------------------------------------------------------------------------------------------- pools


def _fairface() -> list[dict]:
    folder = DATA / "fairface"
    with open(folder / "fairface_label_val.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["path"] = folder / "fairface_img_margin025" / r["file"]
        r["age"], r["gender"], r["race"] = (normalise(a, r[a]) for a in ("age", "gender", "race"))
    return rows


def _aflw_held_out() -> list[tuple[Path, float, float]]:
    held = json.loads(POSE_WEIGHTS.with_suffix(".json").read_text())["held_out_faces"]
    with open(DATA / "aflw2000" / "labels.csv", newline="") as f:
        angles = {r["file"]: (float(r["yaw"]), float(r["pitch"])) for r in csv.DictReader(f)}
    return [(DATA / "aflw2000" / name, *angles[name]) for name in held]


def _plain_pictures(rng: random.Random, count: int) -> list[Image.Image]:
    """Pictures with nobody in them: noise, gradients, flat colours and stripes (224 px)."""
    made = []
    for k in range(count):
        kind = k % 4
        if kind == 0:
            pixels = np.random.default_rng(k).integers(0, 256, (224, 224, 3), dtype=np.uint8)
        elif kind == 1:
            ramp = np.linspace(0, 255, 224, dtype=np.uint8)
            pixels = np.stack([np.tile(ramp, (224, 1))] * 3, axis=2)
        elif kind == 2:
            pixels = np.full((224, 224, 3), [rng.randrange(256) for _ in range(3)], dtype=np.uint8)
        else:
            pixels = np.zeros((224, 224, 3), dtype=np.uint8)
            pixels[::16] = 255
        made.append(Image.fromarray(pixels))
    return made


# ------------------------------------------------------------------------------------------------ question makers

SEX_WORDS = {"Female": ("a woman", "female", "a lady", "a girl"), "Male": ("a man", "male", "a gentleman", "a boy")}


def gender_one(rng: random.Random, faces: list[dict], count: int) -> list[Item]:
    items = []
    for k in range(count):
        face = rng.choice(faces)
        g = face["gender"]
        other = "Male" if g == "Female" else "Female"
        t = k % 10
        item = Item(f"g1-{k}", "gender_one", [face["path"]], "")
        if t == 0:
            item.question = "Is this a man or a woman?"
            item.options, item.key = _mc(
                rng, "A woman" if g == "Female" else "A man", ["A man" if g == "Female" else "A woman"]
            )
        elif t == 1:
            item.question = "What is the sex of the person shown?"
            item.options, item.key = _mc(rng, g, [other, "Impossible to tell"], keep_order=True)
        elif t == 2:
            item.question = "Tell me whether the person in the photo is male or female."
            item.starts = (g,)
        elif t == 3:
            item.question = "Would you describe this person as a woman?"
            item.options, item.key = ["Yes", "No"], "Yes" if g == "Female" else "No"
        elif t == 4:
            item.question = "Which best describes the photo?"
            right = "A woman's portrait" if g == "Female" else "A man's portrait"
            wrong = ["A man's portrait" if g == "Female" else "A woman's portrait", "Nobody is in the picture"]
            item.options, item.key = _mc(rng, right, wrong)
        elif t == 5:
            item.question = "Pick the statement that is correct."
            lady, gent = "The photo shows a lady", "The photo shows a gentleman"
            item.options, item.key = _mc(rng, lady if g == "Female" else gent, [gent if g == "Female" else lady])
        elif t == 6:
            item.question = "Is the person in this picture a girl or a boy?"
            item.starts = ("girl",) if g == "Female" else ("boy",)
        elif t == 7:
            item.question = "Does this picture show a female?"
            item.options, item.key = ["Yes", "No"], "Yes" if g == "Female" else "No"
        elif t == 8:
            item.question = "Identify the gender of the individual."
            item.options, item.key = _mc(
                rng, "Feminine" if g == "Female" else "Masculine", ["Masculine" if g == "Female" else "Feminine"]
            )
        else:
            item.question = "Is this person male?"
            item.starts = ("yes",) if g == "Male" else ("no",)
        items.append(item)
    return items


def gender_two(rng: random.Random, faces: list[dict], count: int) -> list[Item]:
    items = []
    for k in range(count):
        a, b = rng.sample(faces, 2)
        ga, gb = a["gender"], b["gender"]
        t = k % 8
        item = Item(f"g2-{k}", "gender_two", [a["path"], b["path"]], "")
        females = [ga == "Female", gb == "Female"]
        which = {(True, False): 0, (False, True): 1, (True, True): 2, (False, False): 3}
        if t == 0:
            item.question = "Which pictures show a female?"
            item.options = ["Only the first", "Only the second", "Both of them", "Neither of them"]
            item.key = item.options[which[tuple(females)]]
        elif t == 1:
            males = (ga == "Male", gb == "Male")
            item.question = "Which of the two people is a man?"
            item.options = ["The person on the left", "The person on the right", "Both", "Neither"]
            item.key = item.options[which[males]]
        elif t == 2:
            item.question = "Are both of these people women?"
            item.options, item.key = ["Yes", "No"], "Yes" if all(females) else "No"
        elif t == 3:
            item.question = "Do the two photos show people of the same gender?"
            item.options, item.key = ["Yes", "No"], "Yes" if ga == gb else "No"
        elif t == 4:
            item.question = "Select the true statement."
            item.options = [
                "The first photo shows a woman and the second a man",
                "The first photo shows a man and the second a woman",
                "Both photos show women",
                "Both photos show men",
            ]
            item.key = item.options[
                {(True, False): 0, (False, True): 1, (True, True): 2, (False, False): 3}[tuple(females)]
            ]
        elif t == 5:
            item.question = "Is either of these people male?"
            item.starts = ("yes",) if "Male" in (ga, gb) else ("no",)
        elif t == 6:
            item.question = "How many of the two pictures show a man?"
            item.options = ["None", "One", "Two"]
            item.key = item.options[(ga == "Male") + (gb == "Male")]
        else:
            item.question = "Look at both photos. Is the second person a woman?"
            item.options, item.key = ["Yes", "No"], "Yes" if gb == "Female" else "No"
        items.append(item)
    return items


AGE_ORDER = ("0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "more than 70")


def younger(rng: random.Random, faces: list[dict], count: int) -> list[Item]:
    items = []
    k = 0
    while len(items) < count:
        a, b = rng.sample(faces, 2)
        ra, rb = AGE_ORDER.index(a["age"]), AGE_ORDER.index(b["age"])
        if abs(ra - rb) < 2:
            continue
        first_younger = ra < rb
        t = k % 6
        item = Item(f"yo-{k}", "younger", [a["path"], b["path"]], "")
        if t == 0:
            item.question = "Of the two people shown, who looks younger?"
            item.options = ["The person on the left", "The person on the right", "They look about the same age"]
            item.key = item.options[0 if first_younger else 1]
        elif t == 1:
            item.question = "Which photo shows the younger person?"
            item.options = ["The first photo", "The second photo"]
            item.key = item.options[0 if first_younger else 1]
        elif t == 2:
            item.question = "Who is older?"
            item.options = ["Image 1", "Image 2", "Both are the same age"]
            item.key = item.options[1 if first_younger else 0]
        elif t == 3:
            item.question = "Is the person in the second picture older than the person in the first?"
            item.starts = ("yes",) if first_younger else ("no",)
        elif t == 4:
            item.question = "Point out the more youthful face."
            item.options = ["The first one", "The second one", "Neither"]
            item.key = item.options[0 if first_younger else 1]
        else:
            item.question = "Which of these two people is the elder?"
            item.options = ["The left one", "The right one"]
            item.key = item.options[1 if first_younger else 0]
        items.append(item)
        k += 1
    return items


def same_person(rng: random.Random, count: int) -> list[Item]:
    pairs = read_pairs(DATA / "lfw" / "pairs.txt", DATA / "lfw" / "images")
    chosen = rng.sample(pairs, count)
    items = []
    for k, (_, a, b, same) in enumerate(chosen):
        t = k % 6
        item = Item(f"id-{k}", "same_person", [a, b], "")
        if t == 0:
            item.question = "Is this the same person in both pictures?"
            item.options, item.key = ["Yes", "No"], "Yes" if same else "No"
        elif t == 1:
            item.question = "Do these two photos show one person or two different people?"
            item.options = ["One person", "Two different people"]
            item.key = item.options[0 if same else 1]
        elif t == 2:
            item.question = "Are these photos of the same individual?"
            item.starts = ("same", "yes") if same else ("different", "no")
        elif t == 3:
            item.question = "Compare the two faces. Which statement is correct?"
            item.options = [
                "They belong to the same person",
                "They belong to different people",
                "There is no face in the second image",
            ]
            item.key = item.options[0 if same else 1]
        elif t == 4:
            item.question = "Do these faces match?"
            item.options = ["Yes, they match", "No, they don't match"]
            item.key = item.options[0 if same else 1]
        else:
            item.question = "Is the man or woman in the first photo also the one in the second?"
            item.starts = ("same", "yes") if same else ("different", "no")
        items.append(item)
    return items


FEELINGS = {
    "happy": ("cheerful", "joyful", "delighted", "glad"),
    "sad": ("unhappy", "gloomy", "sorrowful", "miserable"),
    "angry": ("furious", "annoyed", "irritated", "mad"),
    "fear": ("scared", "frightened", "terrified", "afraid"),
    "disgust": ("disgusted", "revolted", "repulsed", "grossed out"),
    "surprise": ("astonished", "amazed", "shocked", "startled"),
    "neutral": ("calm", "expressionless", "blank", "composed"),
}
NOUNS = {
    "happy": "happiness",
    "sad": "sadness",
    "angry": "anger",
    "fear": "fear",
    "disgust": "disgust",
    "surprise": "surprise",
    "neutral": "no particular emotion",
}


def expression(rng: random.Random, count: int) -> list[Item]:
    pool = splits.expression(DATA / "rafdb").held_out
    items = []
    for k in range(count):
        path, label = rng.choice(pool)
        others = rng.sample([e for e in FEELINGS if e != label], 3)
        t = k % 7
        item = Item(f"ex-{k}", "expression", [path], "")
        if t == 0:
            item.question = "How does this person seem to feel?"
            item.options, item.key = _mc(rng, rng.choice(FEELINGS[label]), [rng.choice(FEELINGS[o]) for o in others])
        elif t == 1:
            item.question = "What emotion is shown on this face?"
            item.options, item.key = _mc(rng, NOUNS[label], [NOUNS[o] for o in others])
        elif t == 2:
            item.question = "Describe the mood of this person in one word."
            item.options, item.key = _mc(rng, rng.choice(FEELINGS[label]), [rng.choice(FEELINGS[o]) for o in others])
        elif t == 3:
            asked = label if rng.random() < 0.5 else others[0]
            item.question = f"Does this person look {rng.choice(FEELINGS[asked])}?"
            item.options, item.key = ["Yes", "No"], "Yes" if asked == label else "No"
        elif t == 4:
            pair = [FEELINGS[label][0], FEELINGS[others[0]][0]]
            rng.shuffle(pair)
            item.question = f"Does this person look {pair[0]} or {pair[1]}?"
            item.starts = (FEELINGS[label][0],)
        elif t == 5:
            item.question = "Which option best matches the facial expression?"
            item.options, item.key = _mc(
                rng,
                f"The person looks {rng.choice(FEELINGS[label])}",
                [f"The person appears {rng.choice(FEELINGS[o])}" for o in others],
            )
        else:
            item.question = "Is the person smiling?"
            item.starts = ("yes",) if label == "happy" else ("no",)
        items.append(item)
    return items


def head_view(rng: random.Random, count: int) -> list[Item]:
    faces = _aflw_held_out()
    items = []
    k = 0
    tries = 0
    while len(items) < count and tries < 100 * count:
        tries += 1
        path, yaw, pitch = rng.choice(faces)
        t = k % 7
        item = Item(f"hv-{k}", "head_view", [path], "")
        turn = abs(yaw)
        if t == 0:
            view = "front" if turn < 12 else "three-quarter" if 28 < turn < 52 else "side" if turn > 68 else None
            if view is None:
                continue
            item.question = "From which angle was this face photographed?"
            item.options = ["From the front", "From the side", "At a three-quarter angle"]
            item.key = {"front": item.options[0], "side": item.options[1], "three-quarter": item.options[2]}[view]
        elif t == 1:
            if 10 <= turn <= 30:
                continue
            item.question = "Which way is the person facing?"
            item.options = ["Toward the camera", "To the viewer's left", "To the viewer's right"]
            item.key = item.options[0 if turn < 10 else 1 if yaw > 0 else 2]
        elif t == 2:
            if turn < 20:
                continue
            item.question = "Is the face turned to their left or to their right?"
            item.starts = ("right",) if yaw > 0 else ("left",)  # positive yaw: the person's own right
        elif t == 3:
            if abs(pitch) < 20:
                continue
            item.question = "Is the head tilted up or down?"
            item.starts = ("up",) if pitch > 0 else ("down",)
        elif t == 4:
            if 35 <= turn <= 65:
                continue
            item.question = "Is this face shown in profile?"
            item.options, item.key = ["Yes", "No"], "Yes" if turn > 65 else "No"
        elif t == 5:
            if not (turn < 10 and abs(pitch) < 10) and turn <= 35:
                continue
            item.question = "Is the person looking straight into the camera?"
            item.options, item.key = ["Yes", "No"], "Yes" if turn < 10 else "No"
        else:
            if 10 <= turn <= 30:
                continue
            item.question = "Choose the best description of the head's position."
            item.options = [
                "Facing the camera directly",
                "Turned to the left (as we see it)",
                "Turned to the right (as we see it)",
                "There is no face",
            ]
            item.key = item.options[0 if turn < 10 else 1 if yaw > 0 else 2]
        items.append(item)
        k += 1
    return items


AGE_WORDS = {
    "0-2": "A child", "3-9": "A child", "10-19": "A teenager", "20-29": "A young adult", "40-49": "Middle-aged",
    "50-59": "Middle-aged", "60-69": "Elderly", "more than 70": "Elderly",
}  # fmt: skip


def age_words(rng: random.Random, faces: list[dict], count: int) -> list[Item]:
    items = []
    k = 0
    while len(items) < count:
        face = rng.choice(faces)
        age = face["age"]
        t = k % 3
        item = Item(f"ag-{k}", "age_words", [face["path"]], "")
        if t == 0:
            if age not in AGE_WORDS:
                continue
            item.question = "Roughly how old is this person?"
            item.options = ["A child", "A teenager", "A young adult", "Middle-aged", "Elderly"]
            item.key = AGE_WORDS[age]
        elif t == 1:
            if age not in ("3-9", "20-29", "30-39", "40-49", "50-59"):
                continue
            item.question = "Is this person a child or an adult?"
            item.starts = ("child",) if age == "3-9" else ("adult",)
        else:
            if age in ("50-59",):
                continue
            item.question = "Is this person over 60?"
            item.options, item.key = ["Yes", "No"], "Yes" if age in ("60-69", "more than 70") else "No"
        items.append(item)
        k += 1
    return items


RACE_WORDS = {
    "White": "Caucasian", "Black": "African", "East Asian": "East Asian", "Indian": "South Asian",
    "Latino/Hispanic": "Hispanic", "Middle Eastern": "Middle Eastern", "Southeast Asian": "Southeast Asian",
}  # fmt: skip


def race_words(rng: random.Random, faces: list[dict], count: int) -> list[Item]:
    items = []
    for k in range(count):
        face = rng.choice(faces)
        race = face["race"]
        item = Item(f"ra-{k}", "race_words", [face["path"]], "")
        if k % 2 == 0:
            item.question = "What is this person's ethnic background?"
            wrong = rng.sample([w for r, w in RACE_WORDS.items() if r != race], 3)
            item.options, item.key = _mc(rng, RACE_WORDS[race], wrong)
        else:
            item.question = "Does this person appear to be of Asian descent?"
            item.options, item.key = ["Yes", "No"], "Yes" if "Asian" in race else "No"
        items.append(item)
    return items


def anybody(rng: random.Random, faces: list[dict], count: int) -> list[Item]:
    plain = _plain_pictures(rng, count // 2)
    items = []
    for k in range(count):
        empty = k % 2 == 1
        image = plain[k // 2] if empty else rng.choice(faces)["path"]
        t = k % 3
        item = Item(f"pr-{k}", "anybody", [image], "")
        if t == 0:
            item.question = "Is there anybody in this photo?"
            item.starts = ("no",) if empty else ("yes",)
        elif t == 1:
            item.question = "Does this image contain a human face?"
            item.options, item.key = ["Yes", "No"], "No" if empty else "Yes"
        else:
            item.question = "What does the picture show?"
            item.options = ["A person's face", "An empty scene with nobody in it"]
            item.key = item.options[1 if empty else 0]
        items.append(item)
    return items


# (question, options, the right option when the property holds, when it does not); no options: what a right free
# answer starts with.
LIVENESS = (
    (
        "Is this a live person or a photo held up to the camera?",
        ["A live person", "A printed photo held up to the camera"],
        "A printed photo held up to the camera",
        "A live person",
    ),
    ("Could this be a spoofing attempt?", ["Yes", "No"], "Yes", "No"),
    (
        "Was a real, present person in front of the camera, or a printout? Choose one.",
        ["A genuine live face", "A printout of a face", "There is no face"],
        "A printout of a face",
        "A genuine live face",
    ),
)
SYNTHETIC = (
    ("Is this face AI-generated?", ["Yes", "No"], "Yes", "No"),
    ("Is this a real photograph or a computer-generated face?", [], "computer", "real"),
    (
        "Which statement is true?",
        ["This is a photo of a real person", "This face was made by a computer"],
        "This face was made by a computer",
        "This is a photo of a real person",
    ),
)


def property_questions(rng: random.Random, pool: list, positive: str, name: str, wordings: tuple, count: int):
    """Questions about a yes/no property of one face (an attack, a generated face), in turn by `wordings`."""
    items = []
    prefix, category = name.split(":")
    for k in range(count):
        path, label = rng.choice(pool)
        question, options, if_holds, if_not = wordings[k % len(wordings)]
        item = Item(f"{prefix}-{k}", category, [path], question, list(options))
        right = if_holds if label == positive else if_not
        if options:
            item.key = right
        else:
            item.starts = (right,)
        items.append(item)
    return items


def build(seed: int = 0) -> list[Item]:
    rng = random.Random(seed)
    faces = _fairface()
    return [
        *gender_one(rng, faces, 90),
        *gender_two(rng, faces, 80),
        *younger(rng, faces, 72),
        *same_person(rng, 78),
        *expression(rng, 91),
        *head_view(rng, 84),
        *age_words(rng, faces, 51),
        *race_words(rng, faces, 50),
        *anybody(rng, faces, 30),
        *property_questions(rng, splits.liveness(DATA / "nuaa").held_out, "attack", "at:live_or_printed", LIVENESS, 39),
        *property_questions(
            rng, splits.synthetic(DATA / "synthetic_faces").held_out, "fake", "fk:real_or_generated", SYNTHETIC, 39
        ),
    ]


# ------------------------------------------------------------------------------------------------------- scoring


def right(item: Item, reply: str) -> bool:
    if item.options:
        m = re.match(r"\s*([A-H])\.", reply)
        return bool(m) and item.options["ABCDEFGH".index(m.group(1))] == item.key
    return reply.lower().startswith(tuple(s.lower() for s in item.starts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--aside", action="store_true", help="also report the third kept aside")
    parser.add_argument("--only", help="comma-separated categories")
    parser.add_argument("--show-wrong", type=int, default=0, help="print this many wrong development answers")
    parser.add_argument("--write", type=Path, help="write the questions as JSON Lines")
    args = parser.parse_args()
    items = build()
    if args.only:
        items = [i for i in items if i.category in args.only.split(",")]
    if args.write:
        with open(args.write, "w") as f:
            for i in items:
                images = [str(p) if not isinstance(p, Image.Image) else "(plain picture made here)" for p in i.images]
                f.write(json.dumps({"id": i.id, "category": i.category, "images": images, "prompt": i.prompt(),
                                    "key": i.key or list(i.starts), "aside": i.aside}) + "\n")  # fmt: skip
    tally: dict[tuple[str, bool], list[int]] = defaultdict(lambda: [0, 0, 0])
    wrong = []
    seconds = 0.0
    for item in items:
        images = [p if isinstance(p, Image.Image) else read_image(p) for p in item.images]
        started = time.perf_counter()
        reply = answer(images, item.prompt())
        seconds += time.perf_counter() - started
        cell = tally[(item.category, item.aside)]
        cell[0] += right(item, reply)
        cell[1] += 1
        cell[2] += reply.startswith("cannot measure")
        if not right(item, reply) and not item.aside:
            wrong.append((item, reply))
    parts = [False, True] if args.aside else [False]
    header = "| category | " + " | ".join("aside" if p else "development" for p in parts) + " |"
    print(header + "\n|---|" + "---|" * len(parts))
    categories = list(dict.fromkeys(i.category for i in items))
    for category in [*categories, "all"]:
        cells = []
        for part in parts:
            keys = [(c, part) for c in categories] if category == "all" else [(category, part)]
            r, n, d = (sum(tally[k][j] for k in keys) for j in range(3))
            cells.append(f"{100 * r / max(n, 1):.1f}% of {n}, {d} declined")
        print(f"| {category} | " + " | ".join(cells) + " |")
    print(f"\n{seconds / len(items):.3f} s per question on average (one process, models loaded once)")
    for item, reply in wrong[: args.show_wrong]:
        print(f"\n[{item.id}] {item.prompt()}\n  key: {item.key or item.starts}\n  got: {reply}")


if __name__ == "__main__":
    main()
