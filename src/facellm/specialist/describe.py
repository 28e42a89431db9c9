"""Answers that describe rather than choose: the image-quality question and FairFaceGPT's aspect questions, written
from what the face-analysis models measure, and saying what they do not."""

from __future__ import annotations

from PIL import Image

from facellm.faces import analyze_image
from facellm.faces.quality import face_quality
from facellm.specialist import measure
from facellm.specialist.reading import Reading


def quality(images: list[Image.Image], prompt: str, reading: Reading) -> str:
    """Brightness, sharpness and width of the first detected face (as `analyze` reports it first); no landmarks or
    pose are needed for that."""

    if len(images) != 1:
        return "cannot measure: this image-quality question needs exactly one image"
    box = measure.largest_face(images[0])
    if box is None:
        return "cannot measure: no face was found in the image"
    return f"{_quality_words(face_quality(images[0], box))} (specialist measurement)."


def _quality_words(q, subject: str = "The face region") -> str:
    light = "dark" if q.brightness < 70 else "bright" if q.brightness > 190 else "evenly lit"
    focus = "sharp" if q.sharpness > 100 else "soft or blurred"
    return (
        f"{subject} is {light} (mean brightness {q.brightness:.0f}/255), {focus} (Laplacian variance "
        f"{q.sharpness:.0f}) and {q.face_width} px wide"
    )


def describe(images: list[Image.Image], prompt: str, reading: Reading) -> str:
    """FairFaceGPT's aspect questions answered with what the models measure (and what they do not), per image."""

    if not images:
        return "cannot measure: a description needs an image"
    parts = []
    for number, image in enumerate(images, 1):
        analysis = analyze_image(
            image,
            detector="quick",
            with_attributes="demographics" in reading.target
            or "detail" in reading.target
            or "forensic" in reading.target,
        )
        if not analysis.faces:
            return f"cannot measure: no face was found in image {number}"
        face = analysis.faces[0]
        found = [_aspect_sentence(aspect, face, analysis.face_count, image) for aspect in reading.target]
        parts.append((f"Image {number}: " if len(images) > 1 else "") + " ".join(found))
    return " ".join(parts) + " (specialist measurement: face-analysis models, not a language model)"


def _amount(value: float | None) -> str:
    return "not measured (5-point landmarks)" if value is None else f"{value:.2f}"


def _aspect_sentence(aspect: str, face, face_count: int, image: Image.Image) -> str:
    pose, q = face.pose, face.quality
    head = (
        f"The head is {pose.label} (yaw {round(pose.yaw)}, pitch {round(pose.pitch)}, roll {round(pose.roll)} degrees)."
        if pose
        else "Head pose is not measured (it needs the 68-point landmarks)."
    )
    if aspect == "demographics":
        return (
            "Apparent "
            + ", ".join(
                f"{name} {max(p, key=p.get)} ({max(p.values()):.0%})"
                for name, p in (face.attributes or {}).items()
                if name in ("age", "gender", "race")
            )
            + "."
        )
    if aspect == "facial_structure":
        return (
            f"The face is {q.face_width} x {q.face_height} px; eye openness {_amount(face.eye_openness)}, mouth "
            f"openness {_amount(face.mouth_openness)}. The shape of the eyes, nose, lips, jaw and cheekbones is not "
            "measured."
        )
    if aspect == "skin_texture":
        return (
            f"Skin texture is not measured; the face region's sharpness (Laplacian variance {q.sharpness:.0f}) "
            f"and width ({q.face_width} px) bound how much fine detail is visible."
        )
    if aspect == "expression":
        probs = measure.expression(image, face.box)
        first, second = sorted(probs, key=lambda k: probs[k], reverse=True)[:2]
        return (
            f"The expression looks most like {first} ({probs[first]:.0%}), then {second} "
            f"({probs[second]:.0%}); mouth openness {_amount(face.mouth_openness)}."
        )
    if aspect == "lighting_quality":
        return _quality_words(q) + "."
    if aspect == "pose":
        return head
    if aspect == "forensic":
        return (
            f"{face_count} face(s) found; the largest: {_quality_words(q, 'it')}"
            f". {head} Occlusion, makeup and signs of ageing are not measured."
        )
    return " ".join(
        _aspect_sentence(a, face, face_count, image) for a in ("demographics", "expression", "pose", "lighting_quality")
    )
