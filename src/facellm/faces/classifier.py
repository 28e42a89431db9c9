"""Small face-crop classifiers trained here: anti-spoofing (liveness) and synthetic (GAN) faces.

Each `Task` names its classes, its input (the largest face's box widened by a margin, resized to a square of `side`
pixels, colour) and its weights file. One small CNN serves them all; it is trained from scratch on a development
split of its labelled set (`facellm faces train-classifier TASK`), shipped in half precision with a JSON model card,
and predicts probabilities averaged with the mirror image. Weights trained on research-only data are refused when
FACELLM_RESEARCH_MODELS=0.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from facellm.faces import weight_files
from facellm.faces.detect import detect_faces
from facellm.faces.dlib_models import require_research_models
from facellm.faces.small_cnn import small_cnn

if TYPE_CHECKING:
    import torch

    from facellm.faces.detect import Box


WEIGHTS_DIR = Path(__file__).parent / "weights"


@dataclass(frozen=True)
class Task:
    name: str
    classes: tuple[str, ...]
    weights: str  # file name in faces/weights
    side: int  # input square side in pixels
    margin: float | None  # box widened by this fraction of its size on each side; None: the whole frame, no face crop
    data: str  # what it is trained on, for the card and `analyze --licenses`
    licence: str


TASKS = {
    "liveness": Task(
        "liveness",
        ("bonafide", "attack"),
        "nuaa-liveness-v1.pt",
        96,
        None,
        "NUAA Photograph Imposter Database, official train split, subjects 1-6 (7-9 held out)",
        "research use only (NUAA terms; Tan et al., ECCV 2010)",
    ),
    "synthetic": Task(
        "synthetic",
        ("real", "fake"),
        "synthetic-faces-v1.pt",
        96,
        0.25,
        "real vs StyleGAN2 faces ('hard fake vs real faces' copy), every 5th image of each class held out",
        "research use only (source terms not stated; treated as research only)",
    ),
}


def face_crop(image: Image.Image, task: Task, box: Box | None = None) -> np.ndarray:
    """side x side x 3 uint8: the largest face (or `box`) widened by the task's margin; the whole image when the task
    reads whole frames (liveness: a print's border or a screen is evidence), when no face is found, or when the image
    is already a small crop (at most twice the side)."""

    image = image.convert("RGB")
    if task.margin is None:
        box = None
    elif box is None and min(image.size) > 2 * task.side:
        boxes = detect_faces(image)
        box = max(boxes, key=lambda b: b.width * b.height) if boxes else None
    if box is not None and task.margin is not None:
        dx, dy = task.margin * box.width, task.margin * box.height
        image = image.crop(
            (
                max(0, box.left - dx),
                max(0, box.top - dy),
                min(image.width, box.right + dx),
                min(image.height, box.bottom + dy),
            )
        )
    return np.asarray(image.resize((task.side, task.side), Image.Resampling.BILINEAR))


def build_network(classes: int) -> torch.nn.Module:
    return small_cnn(3, classes)


def as_tensor(crops: np.ndarray) -> torch.Tensor:
    """Crops (n, side, side, 3) uint8 as the network's normalised float input."""
    import torch

    return (torch.tensor(crops).permute(0, 3, 1, 2).float() / 255.0 - 0.5) / 0.25


def probabilities(net: torch.nn.Module, crops: np.ndarray) -> np.ndarray:
    """Class probabilities (rows: crops), averaged with the mirror image."""
    import torch

    net.eval()
    with torch.inference_mode():
        parts = [
            (torch.softmax(net(x), 1) + torch.softmax(net(x.flip(-1)), 1)) / 2 for x in as_tensor(crops).split(256)
        ]
    return torch.cat(parts).numpy()


def load_model(name: str, path: Path | None = None) -> torch.nn.Module:
    """Task `name`'s network with the weights saved at `path` (its shipped file by default)."""
    task = TASKS[name]
    state = weight_files.load(path or WEIGHTS_DIR / task.weights, name, f"train-classifier {name}")
    return weight_files.network(lambda: build_network(len(task.classes)), state)


@cache
def shipped_model(name: str) -> torch.nn.Module:
    """The shipped network of task `name`, loaded once."""
    return load_model(name)


def predict(image: Image.Image, box: Box | None = None, *, task: str) -> dict[str, float]:
    """Probabilities of the classes of `task` (a name in TASKS: liveness, synthetic) for the largest face of
    `image` (or the face in `box`)."""
    require_research_models(f"the {task} model")
    chosen = TASKS[task]
    probs = probabilities(shipped_model(task), face_crop(image, chosen, box)[None])[0]
    return {c: round(float(p), 4) for c, p in zip(chosen.classes, probs)}
