"""Attribute predictors (FairFace age group, gender, race): dlib's face descriptor network, fine-tuned.

Each face is aligned on its 68 landmarks into dlib's 150 px chip (0.25 margin: FairFace's own crop, so a face from
any photo looks like the images the network was trained on). The chip goes through dlib's ResNet (its weights run in
torch, see `descriptor_net`): the first FROZEN levels as dlib trained them on about 3 million faces, the last levels
fine-tuned on FairFace train (`facellm faces train-attributes`), then one head per attribute. Only the fine-tuned
levels and the heads are shipped (half precision, with a model card). Predictions are probabilities over FairFace's
classes, averaged over the face and its mirror image.
(Earlier versions on FairFace val 1-2500: an MLP over the descriptor, gender 86.4 / race 60.8 / age 49.8; a small
CNN on the chip fused with the descriptor, 88.1 / 64.6 / 54.1; this network trained on train 1-16000 (v3), 88.7 /
65.8 / 57.4; on train 1-40000 (v4, shipped), 89.9 / 67.4 / 59.0.)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from facellm.faces import weight_files
from facellm.faces.descriptor_net import LEVELS, descriptor_network, first_conv_of_level, frozen_maps, residual_levels
from facellm.faces.detect import detect_faces
from facellm.faces.embed import aligned_chip
from facellm.labels import FAIRFACE_VOCAB

if TYPE_CHECKING:
    import torch

    from facellm.faces.detect import Box


WEIGHTS = Path(__file__).parent / "weights" / "fairface-attributes-v4.pt"
CHIP = 150  # dlib's aligned chip (padding 0.25), the descriptor network's input
FROZEN = 3  # dlib's levels of 32, 64 and 128 filters stay as trained; the two 256-filter levels are fine-tuned
ATTRIBUTES = ("age", "gender", "race")


@dataclass
class FaceInputs:
    """What the attribute network reads about one face (or, stacked, many)."""

    chip: np.ndarray  # CHIP x CHIP x 3 uint8: the face aligned on its landmarks with FairFace's 0.25 margin


def features(
    image: Image.Image, box: Box | None = None, points: int | None = None, found: np.ndarray | None = None
) -> FaceInputs:
    """Inputs of the largest face (or of `box`; a whole-image box when no face is found); `found`: the box's
    landmarks when already known."""

    box = box or detect_faces(image, fallback=True)[0]
    return FaceInputs(chip=aligned_chip(image, box, points=points, found=found))


def build_network() -> torch.nn.Module:
    """dlib's levels after FROZEN (initialised with dlib's weights), global average pooling, dropout, one linear
    head per attribute. It reads the feature maps of `trunk()`."""
    import copy

    import torch.nn as nn

    class AttributeNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            dlib_convs = descriptor_network().convs[first_conv_of_level(FROZEN) :]
            self.levels = nn.ModuleList(copy.deepcopy(conv) for conv in dlib_convs)
            self.dropout = nn.Dropout(0.3)
            width = LEVELS[-1][0]
            self.heads = nn.ModuleDict({a: nn.Linear(width, len(FAIRFACE_VOCAB[a])) for a in ATTRIBUTES})

        def pooled(self, maps):
            """The trunk's feature maps through the fine-tuned levels, averaged over the image."""
            return residual_levels(self.levels, maps.float(), LEVELS[FROZEN:]).mean(dim=(2, 3))

        def forward(self, maps):
            joined = self.dropout(self.pooled(maps))
            return {a: head(joined) for a, head in self.heads.items()}

    return AttributeNet()


def trunk(inputs: FaceInputs, mirrored: bool = False) -> torch.Tensor:
    """The frozen levels' feature maps of every chip (of its mirror image if asked), in half precision."""
    return frozen_maps(inputs.chip.reshape(-1, CHIP, CHIP, 3), FROZEN, mirrored)


def probabilities(net: torch.nn.Module, inputs: FaceInputs) -> dict:
    """Class probabilities per attribute (rows: faces, columns: FairFace classes), averaged with the mirror image."""
    import torch

    net.eval()
    chips = inputs.chip.reshape(-1, CHIP, CHIP, 3)
    with torch.inference_mode():  # faces and mirror images in one pass: the first half plain, the second mirrored
        maps = trunk(FaceInputs(chip=np.concatenate([chips, chips[:, :, ::-1]])))
        logits: dict[str, list[torch.Tensor]] = {}
        for start in range(0, len(maps), 512):
            for a, v in net(maps[start : start + 512]).items():
                logits.setdefault(a, []).append(v)
        probs = {a: torch.softmax(torch.cat(v), dim=1) for a, v in logits.items()}
    return {a: ((p[: len(chips)] + p[len(chips) :]) / 2).numpy() for a, p in probs.items()}


@dataclass
class AttributePrediction:
    age: dict[str, float]
    gender: dict[str, float]
    race: dict[str, float]

    def top(self) -> dict[str, str]:
        return {name: max(probs, key=probs.get) for name, probs in vars(self).items()}


def load_model(path: Path = WEIGHTS) -> torch.nn.Module:
    """The attribute network with the weights saved at `path` (the shipped file by default)."""
    return weight_files.network(build_network, weight_files.load(path, "attribute", "train-attributes"))


@cache
def shipped_model() -> torch.nn.Module:
    """The shipped network, loaded once."""
    return load_model()


def predict(
    image: Image.Image,
    box: Box | None = None,
    *,
    points: int | None = None,
    found: np.ndarray | None = None,
    net: torch.nn.Module | None = None,
) -> AttributePrediction:
    """Probabilities of every FairFace class for the face in `box` (the largest face when None); `points`: 68 or 5
    landmarks to align it on, `found`: its landmarks when already known, `net`: the shipped network when None."""
    return predict_chips([features(image, box, points, found).chip], net)[0]


def predict_chips(chips: list[np.ndarray], net: torch.nn.Module | None = None) -> list[AttributePrediction]:
    """Predictions for aligned chips (`features`), all in one pass of the network (a question's three faces: 8.7
    ms a chip against 10.8 one face at a time, at one thread)."""
    probs = probabilities(net or shipped_model(), FaceInputs(chip=np.stack(chips)))
    return [
        AttributePrediction(
            **{a: {c: round(float(p), 4) for c, p in zip(FAIRFACE_VOCAB[a], probs[a][k])} for a in ATTRIBUTES}
        )
        for k in range(len(chips))
    ]
