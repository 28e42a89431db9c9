"""Everything measured about the faces of one image, as plain data (JSON-ready)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
from PIL import Image

from facellm.faces import attributes
from facellm.faces.crowd import CrowdCount
from facellm.faces.detect import Box, detect_faces
from facellm.faces.dlib_models import research_models_allowed
from facellm.faces.expression import predict as predict_expression
from facellm.faces.geometry import Pose, eye_openness, landmarks, mouth_openness
from facellm.faces.pose import predict as head_pose
from facellm.faces.quality import Quality, face_quality


@dataclass
class FaceAnalysis:
    box: Box
    landmarks: list[list[float]]
    pose: Pose | None  # None on the 5-point path (FACELLM_LANDMARKS=5): pose needs the 68 points
    eye_openness: float | None  # None on the 5-point path
    mouth_openness: float | None
    quality: Quality
    attributes: dict[str, dict[str, float]] | None = None  # age, gender, race, expression probabilities if asked


@dataclass
class ImageAnalysis:
    width: int
    height: int
    face_count: int
    faces: list[FaceAnalysis]
    people: CrowdCount | None = None  # the crowd model's estimate of the people in the image, when asked for

    def as_dict(self) -> dict:
        """Plain data, each face's box clipped to the image (a detector's box may reach past the edges); the crowd
        estimate as its count (rounded to a tenth) when there is one."""
        data = asdict(replace(self, people=None))  # the density map is not copied only to be dropped
        data.pop("people")
        if self.people is not None:
            data["people"] = {"count": round(self.people.count, 1)}
        for face in data["faces"]:
            box = face["box"]
            box["left"], box["right"] = (min(max(box[k], 0), self.width) for k in ("left", "right"))
            box["top"], box["bottom"] = (min(max(box[k], 0), self.height) for k in ("top", "bottom"))
        return data


def analyze_image(
    image: Image.Image, detector: str = "auto", with_attributes: bool = False, points: int | None = None
) -> ImageAnalysis:
    """Detect every face and measure it (and predict its attributes if asked). An image without a face gives an
    empty list, not an error. `points`: 68 or 5 landmarks (None: FACELLM_LANDMARKS, default 68)."""
    rgb = np.asarray(image.convert("RGB"))
    faces = []
    for box in detect_faces(image, detector):
        found = landmarks(rgb, box, points)
        faces.append(
            FaceAnalysis(
                box=box,
                landmarks=np.round(found, 1).tolist(),
                pose=head_pose(image, box, points=found) if len(found) == 68 else None,
                eye_openness=eye_openness(found),
                mouth_openness=mouth_openness(found),
                quality=face_quality(image, box),
                attributes=face_attributes(image, box, points, found) if with_attributes else None,
            )
        )
    return ImageAnalysis(image.width, image.height, len(faces), faces)


def face_attributes(
    image: Image.Image, box: Box | None = None, points: int | None = None, found: np.ndarray | None = None
) -> dict[str, dict[str, float]]:
    """Probabilities of FairFace's age groups, genders and races and of the 7 basic expressions for the face in
    `box` (the largest face when None; `found`: its landmarks when already known); no expression when research-only
    weights are off (FACELLM_RESEARCH_MODELS=0)."""

    box = box or detect_faces(image, fallback=True)[0]
    predicted = vars(attributes.predict(image, box, points=points, found=found))
    return {**predicted, "expression": predict_expression(image, box)} if research_models_allowed() else predicted


def measured_facts(analysis: ImageAnalysis) -> dict:
    """The largest face's measurements in the shape dataset prompts and templates use."""
    if not analysis.faces:
        return {"face_count": 0}
    face = analysis.faces[0]
    pose = face.pose
    angles = {"pose_label": pose.label, "yaw": pose.yaw, "pitch": pose.pitch, "roll": pose.roll} if pose else {}
    return {
        "face_count": analysis.face_count,
        **angles,
        "brightness": face.quality.brightness,
        "sharpness": face.quality.sharpness,
        "face_width": face.quality.face_width,
    }
