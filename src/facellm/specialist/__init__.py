"""The `specialist` backend: face questions answered by the face-analysis models, no language model involved.

A question is first read (specialist/reading.py: which measurement, which form, what each option claims), then
answered by the model that measures it (specialist/answers.py). Multiple-choice questions (options as "(A) ..." lines,
as FaceXBench writes them) get the option most likely true given the measurements of all the images
(specialist/joint.py), written "B. option text (specialist: measured ...)" so that both FaceXBench extractors read
B; open questions get one factual sentence. A question about nothing the models measure gets an explicit
"cannot measure" answer instead of a guess.

Also here: `grounding_facts`, the measured facts block that `--ground` puts before a question for a real MLLM.
"""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
from PIL import Image

from facellm.conversation import option_letters
from facellm.errors import NoFaceError, ResearchModelsOff
from facellm.faces import analyze_image, image_descriptor
from facellm.faces.celeb_attributes import predict_many
from facellm.faces.detect import Box, count_faces
from facellm.specialist import celeb, facts
from facellm.specialist.answers import ANSWERS, SAME_PERSON, options_of, question_text, without_options
from facellm.specialist.head_pose import angles
from facellm.specialist.reading import read
from facellm.specialist.tasks import either_or, task_of


def answer(images: list[Image.Image], prompt: str, options: list[str] | tuple[str, ...] | None = None) -> str:
    """The specialist's answer to one question about `images`; a multiple-choice question's options are read from
    its "(A) ..." lines ("A. ...", "A) ..." too) unless given as data."""
    question = question_text(prompt)
    lettered = list(zip(option_letters(len(options)), options)) if options else options_of(prompt)
    context = "\n".join(without_options(prompt))
    task = task_of(question, context, lettered, len(images))
    if task is None:
        return (
            "cannot measure: the specialist answers age, gender, race, expression, head-pose, image-quality, "
            "face-count or crowd-count, CelebA attribute, same-person, anti-spoofing and synthetic-face questions "
            "from face-analysis models; this question is outside what it measures."
        )
    images = faces_as_images(images, question, task)
    if task == "attribute":
        return _attribute_answer(images, question, lettered)
    alternatives = [] if lettered else either_or(question, task)
    reading = read(question, alternatives or lettered, len(images), task)
    if reading is None:  # pragma: no cover - task_of gave a task, so read() reads it
        return "cannot measure: the question could not be read"
    if alternatives:
        reading = replace(reading, alternatives=True)
    if reading.options and not any(claim.kind != "other" for _, _, claim in reading.options):
        if not any(facts.measurable(text) for _, text, _ in reading.options):
            return (
                f"cannot measure: none of the options is something the face-analysis models measure or count "
                f"({task} question); rephrase the options as labels, image numbers, counts or ranges"
            )
    try:
        return ANSWERS[task](images, prompt, reading)
    except ResearchModelsOff as error:
        return f"cannot measure: {error.message}"


# A question about the people of one photo as a group ("How many women are in this photo?", "Is anyone smiling?").
GROUP = re.compile(
    r"\b(how many (women|men|girls|boys|ladies|guys|people|persons|faces|children|kids|adults|of them)|"
    r"anyone|anybody|everyone|everybody|both|(all|any|each|none|either|neither) of them|"
    r"(all|any|each|every|some) (of )?(the |these )?(people|persons|faces|person|face))\b"
)
ONE_FACE_TASKS = ("crowd", "identity", "presence", "quality", "aspect")  # tasks that read the photo as a whole


def faces_as_images(images: list[Image.Image], question: str, task: str) -> list[Image.Image]:
    """For a question about the people of one photo as a group (GROUP), each face found (`detect.count_faces`), from
    left to right, stands for an image of its own (`_alone`), so "how many women" counts faces and "anyone" means any
    of them; any other question gets its images as they are."""
    if len(images) != 1 or task in ONE_FACE_TASKS or not GROUP.search(question.lower()):
        return images
    boxes = sorted(count_faces(images[0]), key=lambda box: box.left + box.right)
    if len(boxes) < 2:
        return images
    photo = images[0].convert("RGB")
    fill = tuple(int(v) for v in np.asarray(photo).reshape(-1, 3).mean(axis=0))
    return [_alone(photo, box, boxes, fill) for box in boxes]


def _alone(photo: Image.Image, box: Box, boxes: list[Box], fill: tuple[int, ...]) -> Image.Image:
    """The face in `box` with its surroundings (a square twice its larger side about its centre), the other faces
    painted over in `fill` (the photo's mean colour), so that it is the face the models find there."""
    painted = photo.copy()
    for other in boxes:
        if other != box:
            painted.paste(fill, (other.left, other.top, other.right, other.bottom))
    own = (box.left, box.top, box.right, box.bottom)
    painted.paste(photo.crop(own), own[:2])
    x, y, half = (box.left + box.right) / 2, (box.top + box.bottom) / 2, max(box.width, box.height)
    return painted.crop((round(x - half), round(y - half), round(x + half), round(y + half)))


def _attribute_answer(images: list[Image.Image], question: str, lettered: list[tuple[str, str]]) -> str:
    """A CelebA attribute question's answer from every image's 40 attribute probabilities (one batched pass: faster
    than spreading a few small faces over the worker pool): FaceXBench's forms, or a free question about any
    attribute ("Is this person wearing glasses?")."""

    if not images:
        return "cannot measure: an attribute question needs an image"
    try:
        probs = predict_many(images)
    except ResearchModelsOff as error:
        return f"cannot measure: {error.message}"
    reading = celeb.read(question, lettered, len(images))
    if reading is None:
        return celeb.free_answer(question, probs, lettered)
    return celeb.describe(probs) if reading.form == "describe" else celeb.answer(reading, probs)


def ground(images: list[Image.Image], prompt: str) -> str:
    """The prompt with the measured-facts block before it (unchanged when there are no images)."""
    return f"{grounding_facts(images)}\n{prompt}" if images else prompt


def grounding_facts(images: list[Image.Image]) -> str:
    """A delimited block of measured facts for every image and face, to put before a question (`--ground`)."""

    lines = ["[measured facts from face-analysis models]"]
    vectors = []
    for number, image in enumerate(images, 1):
        analysis = analyze_image(image, with_attributes=True)
        lines.append(f"image {number}: {analysis.face_count} face(s)")
        for k, face in enumerate(analysis.faces, 1):
            pose, quality = face.pose, face.quality
            guesses = ", ".join(
                f"{name} {max(p, key=lambda k: p[k])} ({max(p.values()):.0%})"
                for name, p in (face.attributes or {}).items()
            )
            head = f"{pose.label} ({angles(pose)})" if pose else "n/a"
            lines.append(
                f"  face {k}: pose {head}; quality brightness {quality.brightness:.0f}, sharpness "
                f"{quality.sharpness:.0f}, width {quality.face_width}px; {guesses}"
            )
        if len(images) > 1 and analysis.faces:
            try:
                vectors.append((number, image_descriptor(image)[0]))
            except NoFaceError:  # found by the analysis, not after the descriptor's padding: no distance to give
                pass
    for i in range(len(vectors)):
        for j in range(i + 1, len(vectors)):
            (a, va), (b, vb) = vectors[i], vectors[j]
            lines.append(
                f"identity distance image {a} - image {b}: {np.linalg.norm(va - vb):.2f} "
                f"(below {SAME_PERSON} usually means the same person)"
            )
    lines.append("[end of measured facts]")
    return "\n".join(lines)
