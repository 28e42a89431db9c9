"""CelebA's 40 binary face attributes ("Bangs", "Eyeglasses", "Wearing_Hat", ...): probabilities for one face.

The face is framed as CelebA's aligned images frame it (hair above, neck below: the margins around a HOG face box
measured on CelebA images 1-200) and scaled to FRAME pixels. dlib's face-descriptor ResNet (its weights run in torch,
see `descriptor_net`) reads it: the first FROZEN levels as dlib trained them, the last level fine-tuned on CelebA
(`facellm faces train-celeb-attributes`, training in `celeb_attributes_training`), then one linear layer gives 40
logits. Probabilities are averaged over the face and its mirror image. The weights are trained on CelebA (research
use only), so they are refused when FACELLM_RESEARCH_MODELS=0.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from facellm.faces import weight_files
from facellm.faces.descriptor_net import LEVELS, descriptor_network, first_conv_of_level, frozen_maps, residual_levels
from facellm.faces.detect import Box, detect_faces
from facellm.faces.dlib_models import require_research_models

if TYPE_CHECKING:
    import torch

    from facellm.faces.detect import Box


WEIGHTS = Path(__file__).parent / "weights" / "celeba-attributes-v1.pt"
FRAME = (144, 176)  # (width, height) the framed face is read at: CelebA's 178 x 218 aspect
DETECT_SIDE = 200  # px: smaller pictures are upscaled to this short side for the face search
FROZEN = 3  # dlib's levels of 32-128 filters stay as trained; its two 256-filter levels are fine-tuned
# Margins around a HOG face box, in box widths (left, top, right, bottom): on CelebA 1-200 (upscaled to 178 x 218)
# HOG's box averages 91 px at (43, 87), so CelebA's image reaches 0.47 box left and right, 0.95 above and 0.44 below.
MARGINS = (0.47, 0.95, 0.48, 0.44)
NAMES = (
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Attractive",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "High_Cheekbones",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Pointy_Nose",
    "Receding_Hairline",
    "Rosy_Cheeks",
    "Sideburns",
    "Smiling",
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
)


def framed(image: Image.Image, box: Box | None = None) -> np.ndarray:
    """The face in `box` with CelebA's margins, as FRAME-sized uint8 RGB (edge pixels fill what lies outside the
    image). No box, or a whole-image box: the whole picture is taken as already framed (CelebA's own images)."""
    image = image.convert("RGB")
    if box is not None and box.detector != "whole-image":
        left, top, right, bottom = MARGINS
        w, h = box.width, box.height
        x0, y0 = round(box.left - left * w), round(box.top - top * h)
        x1, y1 = round(box.right + right * w), round(box.bottom + bottom * h)
        pad = max(0, -x0, -y0, x1 - image.width, y1 - image.height)
        if pad:
            rgb = np.pad(np.asarray(image), ((pad, pad), (pad, pad), (0, 0)), mode="edge")
            image = Image.fromarray(rgb)
        image = image.crop((x0 + pad, y0 + pad, x1 + pad, y1 + pad))
    return np.asarray(image.resize(FRAME, Image.Resampling.BICUBIC))


def face_box(image: Image.Image) -> Box | None:
    """The largest face's box for framing, or None (the picture is then read as an already framed face): HOG on
    the picture upscaled to a 200 px short side when smaller (CelebA's 89 x 109 copies), then, on a large photo,
    the CNN detector at half size."""

    factor = max(1.0, DETECT_SIDE / min(image.size))
    if factor > 1.0:
        work = image.resize((round(image.width * factor), round(image.height * factor)), Image.Resampling.BICUBIC)
        boxes = detect_faces(work, "hog")
        if not boxes:
            return None
        b = boxes[0]
        return Box(
            round(b.left / factor),
            round(b.top / factor),
            round(b.right / factor),
            round(b.bottom / factor),
            b.score,
            b.detector,
        )
    boxes = detect_faces(image, "hog") or detect_faces(image, "quick")
    return boxes[0] if boxes else None


def trunk(frames: np.ndarray, mirrored: bool = False) -> torch.Tensor:
    """The frozen levels' feature maps of stacked frames (of their mirror images if asked), in half precision."""
    return frozen_maps(frames, FROZEN, mirrored)


def build_network() -> torch.nn.Module:
    """dlib's levels after FROZEN (initialised with dlib's weights), average and max pooling, dropout, 40 logits.
    It reads the feature maps of `trunk()`."""
    import copy

    import torch
    import torch.nn as nn

    class CelebAttributeNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            dlib_convs = descriptor_network().convs[first_conv_of_level(FROZEN) :]
            self.levels = nn.ModuleList(copy.deepcopy(conv) for conv in dlib_convs)
            self.dropout = nn.Dropout(0.3)
            self.head = nn.Linear(2 * LEVELS[-1][0], len(NAMES))

        def forward(self, maps):
            x = residual_levels(self.levels, maps.float(), LEVELS[FROZEN:])
            pooled = torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)
            return self.head(self.dropout(pooled))

    return CelebAttributeNet()


def probabilities(net: torch.nn.Module, frames: np.ndarray) -> np.ndarray:
    """(faces, 40) probabilities, each the mean over the frame and its mirror image."""
    import torch

    net.eval()
    with torch.inference_mode():
        maps = torch.cat([trunk(frames), trunk(frames, mirrored=True)])
        logits = torch.cat([net(maps[s : s + 512]) for s in range(0, len(maps), 512)])
        p = torch.sigmoid(logits).numpy()
    return (p[: len(frames)] + p[len(frames) :]) / 2


def load_model(path: Path = WEIGHTS) -> torch.nn.Module:
    """The attribute network with the weights saved at `path` (the shipped file by default)."""
    return weight_files.network(build_network, weight_files.load(path, "CelebA attribute", "train-celeb-attributes"))


@cache
def _shipped() -> torch.nn.Module:
    return load_model()


def shipped_model() -> torch.nn.Module:
    """The shipped network, once it is known that its research-only weights may be used."""
    require_research_models("the CelebA attribute model")
    return _shipped()


def predict_many(images: list[Image.Image], net: torch.nn.Module | None = None) -> np.ndarray:
    """(images, 40) probabilities, each image's largest face framed (`face_box`), all read in one batch."""
    frames = np.stack([framed(image, face_box(image)) for image in images])
    return probabilities(net or shipped_model(), frames)


def predict(image: Image.Image, box: Box | None = None, *, net: torch.nn.Module | None = None) -> dict[str, float]:
    """The probability of each of CelebA's 40 attributes for the face in `box` (None: the largest face, framed as
    `face_box` frames it; the whole picture when no face is found)."""
    probs = probabilities(net or shipped_model(), framed(image, box or face_box(image))[None])[0]
    return {name: round(float(p), 4) for name, p in zip(NAMES, probs, strict=True)}
