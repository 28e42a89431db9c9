"""Crowd counting: a density map whose sum is the number of people, for scenes where face detection finds few heads.

The image is scaled so that its longer side is 640 px (the scale of ShanghaiTech part B, which it was trained on) and
run through the first three levels of dlib's face-descriptor ResNet (frozen, as dlib trained them on about 3 million
faces; see `descriptor_net`). The 64-filter maps (1/8 of the image) and the upsampled 128-filter maps (1/16) feed a
small head of dilated convolutions trained here (`facellm faces train-crowd`) to predict one density value per 8 x 8
pixel cell. Training targets put each annotated head's unit mass on its cell (bilinearly) and blur it by one cell.
The shipped weights are trained on ShanghaiTech B's train split and Mall frames 1-800, every 4th (research use
only), so they are refused when FACELLM_RESEARCH_MODELS=0.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from facellm.faces import weight_files
from facellm.faces.descriptor_net import LEVELS, descriptor_network, first_conv_of_level, residual_levels
from facellm.faces.dlib_models import require_research_models

if TYPE_CHECKING:
    import torch

    from facellm.faces.detect import Box


WEIGHTS = Path(__file__).parent / "weights" / "shanghaitech-mall-crowd-v2.pt"
SIDE = 640  # the longer side images are counted at (ShanghaiTech B's)
FINE, COARSE = 1, 2  # the levels of dlib's network (indices into LEVELS) whose maps feed the head
STRIDE = 2 ** (FINE + 2)  # pixels per density cell: the fine level's maps are at 1/STRIDE of the image
OFFSET = STRIDE - 1  # cell (0, 0) is centred near pixel (OFFSET, OFFSET)
CHANNELS = LEVELS[FINE][0] + LEVELS[COARSE][0]
SCALE = 100.0  # the head predicts SCALE x density (keeps its targets near 1)
WIDTH = 48


@dataclass
class CrowdCount:
    count: float  # estimated people in the image
    density: np.ndarray  # people per cell, (rows, columns) at 1/8 of the counted image
    size: tuple[int, int]  # (width, height) the image was counted at


def scaled(image: Image.Image) -> Image.Image:
    """The image in RGB with its longer side at SIDE pixels."""
    image = image.convert("RGB")
    factor = SIDE / max(image.size)
    size = (max(32, round(image.width * factor)), max(32, round(image.height * factor)))
    return image.resize(size, Image.Resampling.BILINEAR) if size != image.size else image


def trunk_features(rgb: np.ndarray) -> torch.Tensor:
    """(1, CHANNELS, rows, columns) float maps of one (height, width, 3) uint8 image: dlib's 64-filter level and its
    128-filter level upsampled to the same grid."""
    import torch
    from torch.nn import functional

    net = descriptor_network()
    with torch.inference_mode():
        x = (torch.from_numpy(np.array(rgb))[None].permute(0, 3, 1, 2).float() - net.means) / 256.0
        x = functional.max_pool2d(functional.relu(net.first(x)), 3, 2)
        fine = residual_levels(net.convs, x, LEVELS[: FINE + 1])
        coarse = residual_levels(net.convs[first_conv_of_level(FINE + 1) :], fine, LEVELS[FINE + 1 : COARSE + 1])
        coarse = functional.interpolate(coarse, size=fine.shape[2:], mode="bilinear", align_corners=False)
        return torch.cat([fine, coarse], 1)


def build_network() -> torch.nn.Module:
    """Dilated convolutions from the trunk's maps to SCALE x the density of each cell."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(CHANNELS, WIDTH, 1),
        nn.ReLU(),
        nn.Conv2d(WIDTH, WIDTH, 3, padding=2, dilation=2),
        nn.ReLU(),
        nn.Conv2d(WIDTH, WIDTH, 3, padding=2, dilation=2),
        nn.ReLU(),
        nn.Conv2d(WIDTH, WIDTH // 2, 3, padding=3, dilation=3),
        nn.ReLU(),
        nn.Conv2d(WIDTH // 2, 1, 1),
    )


def load_model(path: Path = WEIGHTS) -> torch.nn.Module:
    """The density head with the weights saved at `path` (the shipped file by default)."""
    return weight_files.network(build_network, weight_files.load(path, "crowd-counting", "train-crowd"))


@cache
def _shipped() -> torch.nn.Module:
    return load_model()


def shipped_model() -> torch.nn.Module:
    """The shipped head, once it is known that its research-only weights may be used and are there."""
    require_research_models("the crowd-counting model")
    return _shipped()


def density_of(features: torch.Tensor, head: torch.nn.Module) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return (head(features.float())[0, 0] / SCALE).numpy()


def predict(image: Image.Image, box: Box | None = None, *, head: torch.nn.Module | None = None) -> CrowdCount:
    """The estimated number of people in `image` and its density map (`head`: the shipped one when None). A crowd
    is counted over the whole image: `box` is taken for the shared face-model signature and not used."""
    head = head or shipped_model()
    image = scaled(image)
    density = density_of(trunk_features(np.asarray(image)), head)
    return CrowdCount(float(max(density.sum(), 0.0)), density, image.size)


def density_picture(image: Image.Image, result: CrowdCount) -> Image.Image:
    """The counted image with its density map laid over it in red (brighter: more people per cell)."""
    image = scaled(image)
    density = np.clip(result.density, 0, None)
    peak = max(float(density.max()), 1e-6)
    rows, columns = density.shape
    cells = Image.fromarray(np.uint8(255 * density / peak)).resize(
        (columns * STRIDE, rows * STRIDE), Image.Resampling.BILINEAR
    )
    heat = Image.new("L", image.size)
    heat.paste(cells, (OFFSET - STRIDE // 2, OFFSET - STRIDE // 2))
    red = Image.merge("RGB", (heat, Image.new("L", image.size), Image.new("L", image.size)))
    return Image.blend(image, red, 0.5)
