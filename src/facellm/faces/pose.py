"""Head pose from the face's pixels and its 68 landmarks, learned on AFLW2000-3D, in its convention (degrees):
yaw positive when the face turns towards the image's left, pitch positive when the chin is raised, roll positive when
the head leans clockwise in the image.

Landmarks alone (three MLPs, the previous model) were 8.2 degrees off on average, 50 degrees past 60 degrees of yaw,
where dlib's 68 points fold onto the visible half of the face. The pixels carry what the landmarks lose: two square
crops around the detected box (1.2 and 1.6 box sides, 150 px) go through dlib's face descriptor network (frozen), its
128- and 256-filter maps are average-pooled to 4 x 4 and 3 x 3 grids (where on the crop the face's parts are), and a
ridge regression maps them and the normalised landmarks to yaw and pitch. Roll is measured the same way after turning
the image about the box's centre until the eyes' landmarks lie level: the turn plus a second regression's remainder,
so it follows any turn of the image (a regression on the image as it is followed a 15-degree turn with 5-10 degrees
of roll). Both regressions are trained on the faces and their mirror images (yaw and roll negate) and predict the
average of the face and its mirror; each axis's ridge strength is chosen inside the training folds. `facellm faces
train-pose` reproduces it; the shipped model never saw fold 1 (listed in the card, used by the benchmarks).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

from facellm.faces import weight_files
from facellm.faces.descriptor_net import LEVELS, descriptor_network, first_conv_of_level, residual_levels
from facellm.faces.detect import Box, detect_faces, pose_box
from facellm.faces.dlib_models import require_research_models, research_models_allowed
from facellm.faces.geometry import Pose, landmarks, pnp_pose, pose_label

WEIGHTS = Path(__file__).parent / "weights" / "aflw2000-headpose-v2.pt"
AXES = ("yaw", "pitch", "roll")
CROPS = (1.2, 1.6)  # square crops around the detected box's centre, in box sides
CHIP = 150  # the crops' size: the descriptor network's input
GRIDS = ((2, 4), (3, 3))  # (level of dlib's network, g): that level's maps average-pooled to g x g cells
LANDMARK_WEIGHT = 5**0.5  # the landmarks' standardised features count as five copies would in the ridge penalty
STRENGTHS = (100, 300, 1000, 3000, 10000, 30000, 100000)  # ridge strengths tried per axis, inside the training folds
# iBUG-68 index of each point's mirror partner (jaw, brows, nose, eyes, outer and inner lips).
MIRROR = [
    *range(16, -1, -1), *range(26, 16, -1),  # jaw, brows
    27, 28, 29, 30, 35, 34, 33, 32, 31,  # nose
    45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40,  # eyes
    54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60, 67, 66, 65,  # outer and inner lips
]  # fmt: skip
FLIP = np.array([-1.0, 1.0, -1.0])  # how yaw, pitch, roll change in the mirror image


def normalised(points: np.ndarray) -> np.ndarray:
    """(n, 68, 2) landmarks -> (n, 136): centred on their mean, divided by their RMS radius."""
    centred = points - points.mean(axis=1, keepdims=True)
    radius = np.sqrt((centred**2).sum(axis=2).mean(axis=1))[:, None, None]
    return (centred / radius).reshape(len(points), -1)


def mirrored(points: np.ndarray) -> np.ndarray:
    flipped = points.copy()
    flipped[..., 0] = -flipped[..., 0]
    return flipped[:, MIRROR]


def upright_angle(points: np.ndarray) -> float:
    """Degrees the image must turn counter-clockwise (as PIL's rotate) for the eyes' centres to lie level: the roll
    the landmarks see (positive when the head leans clockwise)."""
    (left_x, left_y), (right_x, right_y) = points[36:42].mean(axis=0), points[42:48].mean(axis=0)
    return float(np.degrees(np.arctan2(right_y - left_y, right_x - left_x)))


def crops(image: Image.Image, box: Box) -> np.ndarray:
    """(len(CROPS), CHIP, CHIP, 3) uint8 square crops centred on the box (black where they leave the image)."""
    x, y, side = (box.left + box.right) / 2, (box.top + box.bottom) / 2, max(box.width, box.height)
    return np.stack(
        [
            np.asarray(
                image.crop(
                    (round(x - f * side / 2), round(y - f * side / 2), round(x + f * side / 2), round(y + f * side / 2))
                ).resize((CHIP, CHIP), Image.Resampling.BILINEAR)
            )
            for f in CROPS
        ]
    )


@dataclass
class Views:
    """What the pose model reads of faces, stacked along a first axis."""

    as_is: np.ndarray  # (n, len(CROPS), CHIP, CHIP, 3) crops of the image as it is
    points: np.ndarray  # (n, 68, 2) landmarks
    upright: np.ndarray  # the crops after the image is turned by `turn` about the box's centre
    turned: np.ndarray  # the landmarks after that turn
    turn: np.ndarray  # (n,) degrees, counter-clockwise (as PIL's rotate)


def views(image: Image.Image, box: Box, points: np.ndarray) -> Views:
    """The face's crops and landmarks as they are and turned upright (eyes' centres level)."""
    image = image.convert("RGB")
    degrees = upright_angle(points)
    centre = np.array([(box.left + box.right) / 2, (box.top + box.bottom) / 2])
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    turned = centre + (points - centre) @ np.array([[c, -s], [s, c]])  # counter-clockwise with y growing downwards
    upright = crops(image.rotate(degrees, Image.Resampling.BILINEAR, center=tuple(centre)), box)
    return Views(crops(image, box)[None], points[None], upright[None], turned[None], np.array([degrees]))


def stacked(faces: list[Views]) -> Views:
    return Views(*(np.concatenate([getattr(f, k) for f in faces]) for k in Views.__dataclass_fields__))


def pixel_features(chips: np.ndarray) -> np.ndarray:
    """(n, len(CROPS), CHIP, CHIP, 3) crops -> (n, features): the pooled grids of every crop."""
    import torch
    from torch.nn import functional

    net = descriptor_network()

    def features(part: np.ndarray):
        x = net.trunk(torch.from_numpy(np.ascontiguousarray(part.reshape(-1, CHIP, CHIP, 3))), GRIDS[0][0] + 1)
        maps = {GRIDS[0][0]: x}
        for level in range(GRIDS[0][0] + 1, GRIDS[-1][0] + 1):
            x = residual_levels(net.convs[first_conv_of_level(level) :], x, LEVELS[level : level + 1])
            maps[level] = x
        pooled = [
            functional.adaptive_avg_pool2d(maps[level], g).reshape(len(part), len(CROPS), -1) for level, g in GRIDS
        ]
        return torch.cat(pooled, 2).reshape(len(part), -1)

    with torch.inference_mode():  # 32 faces a pass: one face's eight crops go in one pass, a training set in many
        return torch.cat([features(chips[s : s + 32]) for s in range(0, len(chips), 32)]).numpy().astype(np.float64)


@dataclass
class Inputs:
    """Both regressions' inputs, each for the faces and for their mirror images, and the turn to upright."""

    as_is: tuple[np.ndarray, np.ndarray]
    upright: tuple[np.ndarray, np.ndarray]
    turn: np.ndarray

    def take(self, index: np.ndarray) -> Inputs:
        (plain, flipped), (upright, upright_flipped) = self.as_is, self.upright
        return Inputs((plain[index], flipped[index]), (upright[index], upright_flipped[index]), self.turn[index])


def model_inputs(faces: Views) -> Inputs:
    """The crops' pooled maps (all views of all faces in one run of the network) beside the normalised landmarks."""
    chips = [faces.as_is, faces.as_is[..., ::-1, :], faces.upright, faces.upright[..., ::-1, :]]
    points = [faces.points, mirrored(faces.points), faces.turned, mirrored(faces.turned)]
    pixels = np.split(pixel_features(np.concatenate(chips)), len(chips))
    rows = [np.hstack([p, normalised(q)]) for p, q in zip(pixels, points, strict=True)]
    return Inputs((rows[0], rows[1]), (rows[2], rows[3]), faces.turn)


@dataclass
class Ridge:
    """Standardised inputs -> (yaw, pitch, roll); the landmark columns (the last 136) scaled by LANDMARK_WEIGHT."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray  # (features, 3)
    intercept: np.ndarray  # (3,)

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        return ((inputs - self.mean) / self.scale) @ self.weights + self.intercept

    def both_ways(self, inputs: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """The average of the prediction for the faces and for their mirror images (flipped back)."""
        plain, flipped = inputs
        return (self(plain) + self(flipped) * FLIP) / 2


@dataclass
class PoseModel:
    """Yaw and pitch from the crops as they are, roll from the upright crops (plus the turn)."""

    as_is: Ridge
    upright: Ridge

    def __call__(self, inputs: Inputs) -> np.ndarray:
        """(n, 3) yaw, pitch, roll in degrees."""
        roll = self.upright.both_ways(inputs.upright)[:, 2] + inputs.turn
        return np.column_stack([self.as_is.both_ways(inputs.as_is)[:, :2], roll])


def load_model(path: Path = WEIGHTS) -> PoseModel:
    """The two regressions saved at `path` (the shipped file by default)."""
    state = weight_files.load(path, "head-pose", "train-pose")
    return PoseModel(
        *(Ridge(**{k: v.double().numpy() for k, v in state[part].items()}) for part in ("as_is", "upright"))
    )


@cache
def shipped_model() -> PoseModel:
    """The shipped regressions, loaded once."""
    return load_model()


def angles(image: Image.Image, box: Box, points: np.ndarray) -> tuple[float, float, float]:
    """Yaw, pitch, roll of the face in `box` with its 68 landmarks."""
    require_research_models("the head-pose model")
    yaw, pitch, roll = shipped_model()(model_inputs(views(image, box, points)))[0]
    return float(yaw), float(pitch), float(roll)


def predict(image: Image.Image, box: Box | None = None, *, points: np.ndarray | None = None) -> Pose:
    """The pose of the face in `box` (the largest face when None) from its 68 landmarks (`points`, found when None):
    the learned model, or solvePnP on the landmarks when research-only weights are off. A face YuNet saw turned far
    is measured in the box dlib's CNN detector would give it (`detect.pose_box`), its landmarks found again there."""
    box = box or detect_faces(image, fallback=True)[0]
    aimed = pose_box(image, box)
    if points is None or aimed is not box:
        box, points = aimed, landmarks(np.asarray(image.convert("RGB")), aimed, 68)
    if len(points) == 68 and research_models_allowed():
        yaw, pitch, roll = angles(image, box, points)
        return Pose(round(yaw, 1), round(pitch, 1), round(roll, 1), pose_label(yaw, pitch))
    return pnp_pose(points, image.size)
