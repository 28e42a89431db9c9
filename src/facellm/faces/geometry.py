"""Landmarks and what follows from them geometrically: a solvePnP head pose against a generic 3-D face (turned to
AFLW2000-3D's convention, the one FaceXBench's head-pose questions use), eye and mouth openness. The learned head pose
that is used when it may be (faces/pose.py) builds on these."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facellm.faces.detect import Box
from facellm.faces.dlib_models import landmark_predictor

# A generic 3-D face (millimetres, y up, nose tip at the origin) for the 68-point indices below; a widely used
# approximation of an average head, good to a few degrees for pose.
MODEL_POINTS = np.array(
    [
        (0.0, 0.0, 0.0),  # 30 nose tip
        (0.0, -330.0, -65.0),  # 8 chin
        (-225.0, 170.0, -135.0),  # 36 outer corner of the image-left eye
        (225.0, 170.0, -135.0),  # 45 outer corner of the image-right eye
        (-150.0, -150.0, -125.0),  # 48 image-left mouth corner
        (150.0, -150.0, -125.0),  # 54 image-right mouth corner
    ]
)
POSE_POINTS = [30, 8, 36, 45, 48, 54]
# Mean pitch error of the solvePnP fit on 482 development AFLW2000-3D faces (docs/benchmarks.md): a constant
# of the generic face's geometry, removed so the fallback has no systematic offset.
PNP_PITCH_OFFSET = 8.2


@dataclass(frozen=True)
class Pose:
    yaw: float  # degrees; positive when the face turns towards the image's left (the person's own right)
    pitch: float  # degrees; positive when the face tilts up (chin raised)
    roll: float  # degrees; positive when the head leans clockwise in the image
    label: str
    method: str = "learned"  # "learned" (faces/pose.py) or "pnp" (solvePnP: 10.4 degrees mean error, 5.7 learned)

    def __post_init__(self) -> None:
        for axis in ("yaw", "pitch", "roll"):  # + 0.0 turns -0.0 into 0.0: no "-0" in what is printed or sent
            object.__setattr__(self, axis, float(getattr(self, axis)) + 0.0)


def landmarks(rgb: np.ndarray, box: Box, points: int | None = None) -> np.ndarray:
    """(x, y) points: 68 in dlib's iBUG layout, or 5 (eye corners, nose base); `points` None: FACELLM_LANDMARKS."""
    shape = landmark_predictor(points)(rgb, box.as_dlib())
    return np.array([(shape.part(i).x, shape.part(i).y) for i in range(shape.num_parts)], dtype=np.float64)


def pnp_pose(points: np.ndarray, image_size: tuple[int, int]) -> Pose:
    """Yaw and pitch from solvePnP with a pinhole camera (focal length = image width); roll from the eye line."""
    import cv2

    width, height = image_size
    camera = np.array([[width, 0, width / 2], [0, width, height / 2], [0, 0, 1]], dtype=np.float64)
    image_points = points[POSE_POINTS].copy()
    image_points[:, 1] *= -1  # image y points down, the model's y points up
    camera_up = camera.copy()
    camera_up[1, 2] = -height / 2
    ok, rotation, _ = cv2.solvePnP(MODEL_POINTS, image_points, camera_up, np.zeros(4), flags=cv2.SOLVEPNP_ITERATIVE)
    matrix, _ = cv2.Rodrigues(rotation)
    yaw = float(np.degrees(np.arcsin(np.clip(matrix[2, 0], -1, 1))))  # sign checked on AFLW2000-3D
    # Sign checked on AFLW2000-3D; the generic face's plane sits PNP_PITCH_OFFSET degrees off AFLW's zero pitch.
    pitch = -float(np.degrees(np.arctan2(matrix[2, 1], matrix[2, 2]))) - PNP_PITCH_OFFSET
    left_eye, right_eye = points[36:42].mean(axis=0), points[42:48].mean(axis=0)
    roll = float(np.degrees(np.arctan2(right_eye[1] - left_eye[1], right_eye[0] - left_eye[0])))
    return Pose(round(yaw, 1), round(pitch, 1), round(roll, 1), pose_label(yaw, pitch), "pnp")


def pose_label(yaw: float, pitch: float) -> str:
    turn = abs(yaw)
    label = "frontal" if turn < 10 else "slight turn" if turn < 25 else "three-quarter" if turn < 55 else "profile"
    if pitch > 15:
        label += ", tilted up"
    elif pitch < -15:
        label += ", tilted down"
    return label


def eye_openness(points: np.ndarray) -> float | None:
    """Mean eye aspect ratio of both eyes (about 0.3 open, under 0.15 closed); None without the 68 points."""
    if len(points) != 68:
        return None

    def ratio(eye: np.ndarray) -> float:
        vertical = np.linalg.norm(eye[1] - eye[5]) + np.linalg.norm(eye[2] - eye[4])
        return float(vertical / (2 * np.linalg.norm(eye[0] - eye[3]) + 1e-9))

    return round((ratio(points[36:42]) + ratio(points[42:48])) / 2, 3)


def mouth_openness(points: np.ndarray) -> float | None:
    """Inner-lip aspect ratio (near 0 closed, above 0.3 wide open); None without the 68 points."""
    if len(points) != 68:
        return None
    inner = points[60:68]
    vertical = sum(np.linalg.norm(inner[i] - inner[8 - i]) for i in (1, 2, 3))
    return round(float(vertical / (3 * np.linalg.norm(inner[0] - inner[4]) + 1e-9)), 3)
