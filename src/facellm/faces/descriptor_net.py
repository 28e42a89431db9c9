"""dlib's ResNet face descriptor network, read from its .dat file and run in torch.

dlib's PyPI build runs this network on one core without BLAS (110-145 ms per 150 px chip here); the same weights
in torch run batched through oneDNN. The file is dlib's serialization of `anet_type` from dlib's
dnn_face_recognition_ex.cpp (29 convolutions, each followed by an affine layer, in ResNet blocks of 32 to 256
filters, average pooling, a 128-D fully connected layer without bias). Layers are stored from the input up, so the
weights are read in order and placed into the same architecture built here; anything else in the file is an error.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

import numpy as np

from facellm.errors import ModelLoadError
from facellm.faces.dlib_models import models_dir
from facellm.faces.weight_files import channels_last

# (filters, blocks, first block halves the size) from the input up: alevel4 .. alevel0 of dlib's example.
if TYPE_CHECKING:
    import torch


LEVELS = [(32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True)]


class DescriptorNet(Protocol):
    """What the face models built on dlib's network use of it (the torch module is built when torch is imported)."""

    means: torch.Tensor  # (1, 3, 1, 1) channel means subtracted from the pixels
    first: torch.nn.Conv2d  # the 7x7/2 convolution
    convs: torch.nn.ModuleList  # two convolutions per residual block, from the input up

    def trunk(self, pixels: torch.Tensor, levels: int = ...) -> torch.Tensor: ...

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor: ...


class _Reader:
    """dlib's serialization primitives: variable-length integers, portable floats, raw float32 tensors; strings
    (layer names) are only searched for."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def integer(self) -> int:
        head = self.data[self.at]
        size = head & 0x0F
        value = int.from_bytes(self.data[self.at + 1 : self.at + 1 + size], "little")
        self.at += 1 + size
        return -value if head & 0x80 else value

    def real(self) -> float:
        mantissa = self.integer()
        return float(mantissa) * 2.0 ** self.integer()

    def tensor(self) -> np.ndarray:
        if self.integer() != 2:
            raise ValueError("unexpected tensor version")
        shape = [self.integer() for _ in range(4)]
        count = int(np.prod(shape))
        values = np.frombuffer(self.data, "<f4", count, self.at).reshape(shape)
        self.at += 4 * count
        return values

    def alias(self) -> list[int]:
        if self.integer() != 1:
            raise ValueError("unexpected alias tensor version")
        return [self.integer() for _ in range(4)]

    def find(self, tag: str) -> None:
        """Move past the next serialized string `tag`."""
        needle = bytes([1, len(tag)]) + tag.encode()
        found = self.data.find(needle, self.at)
        if found < 0:
            raise ValueError(f"no {tag} layer where one was expected")
        self.at = found + len(needle)


def read_weights(path: Path) -> dict:
    """The input's channel means, the 29 convolutions (weight, bias, stride, padding), 29 affine layers
    (gamma, beta) and the final weight matrix of dlib's face descriptor file, in order from the input up."""
    try:
        reader = _Reader(path.read_bytes())
        reader.find("input_rgb_image_sized")
        means = [reader.real() for _ in range(3)]  # red, green, blue averages subtracted before scaling by 1/256
        convs, affines = [], []
        for _ in range(29):
            reader.find("con_4")
            params = reader.tensor().reshape(-1)
            filters, _rows, _cols = reader.integer(), reader.integer(), reader.integer()
            stride = (reader.integer(), reader.integer())
            padding = (reader.integer(), reader.integer())
            weight_shape, bias_shape = reader.alias(), reader.alias()
            size = int(np.prod(weight_shape))
            weight = params[:size].reshape(weight_shape)
            bias = params[size : size + int(np.prod(bias_shape))]
            if weight.shape[0] != filters:
                raise ValueError("filter count does not match the weights")
            convs.append((weight, bias, stride, padding))
            reader.find("affine_")
            scales = reader.tensor().reshape(-1)  # gamma then beta, as the two aliases that follow describe
            gamma_shape, beta_shape = reader.alias(), reader.alias()
            if int(np.prod(gamma_shape)) != filters or int(np.prod(beta_shape)) != filters:
                raise ValueError("affine layer does not match its convolution")
            affines.append((scales[:filters], scales[filters : 2 * filters]))
        reader.find("fc_2")
        outputs, inputs = reader.integer(), reader.integer()
        fc = reader.tensor().reshape(inputs, outputs)
    except (ValueError, IndexError) as error:
        raise ModelLoadError(
            f"could not read dlib's face descriptor network from {path}: {error}",
            'reinstall face-recognition-models (pip install -e ".")',
        ) from None
    return {"means": means, "convs": convs, "affines": affines, "fc": fc}


def _network(weights: dict):
    import torch
    from torch import nn
    from torch.nn import functional

    class Descriptor(nn.Module):
        """dlib's anet_type: conv 7x7/2, max pool 3/2, residual levels, global average pool, 128-D linear map."""

        def __init__(self) -> None:
            super().__init__()
            convs = []
            # An affine layer after a convolution is the same convolution with scaled weights and shifted bias.
            layers = zip(weights["convs"], weights["affines"], strict=True)
            for (weight, bias, stride, padding), (gamma, beta) in layers:
                conv = nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[2:], stride, padding)
                conv.weight.data = torch.from_numpy(weight * gamma[:, None, None, None])
                conv.bias.data = torch.from_numpy(bias * gamma + beta)  # type: ignore[union-attr]  # bias=True
                convs.append(conv)
            self.first = convs[0]
            self.convs = nn.ModuleList(convs[1:])  # two per residual block, from the input up
            self.register_buffer("means", torch.tensor(weights["means"]).view(1, 3, 1, 1))
            self.register_buffer("fc", torch.from_numpy(weights["fc"].copy()))

        def trunk(self, pixels, levels: int = len(LEVELS)):
            """pixels: (N, 150, 150, 3) uint8 RGB chips -> the feature maps after the first `levels` levels."""
            x = (pixels.permute(0, 3, 1, 2).float() - self.means) / 256.0
            x = functional.max_pool2d(functional.relu(self.first(x)), 3, 2)
            return residual_levels(self.convs, x, LEVELS[:levels])

        def forward(self, pixels):
            """pixels: (N, 150, 150, 3) uint8 RGB chips -> (N, 128) descriptors."""
            return self.trunk(pixels).mean(dim=(2, 3)) @ self.fc

    return Descriptor().eval()


def residual_levels(convs: torch.nn.ModuleList, x: torch.Tensor, levels: list[tuple[int, int, bool]]) -> torch.Tensor:
    """Run residual `levels` (in LEVELS' format) over feature maps `x`; `convs` holds two convolutions per block.
    A halving block adds its 2x2-average-pooled input; where the two differ in size or channels, the smaller is
    zero-padded at the end (dlib's add_prev)."""
    from torch.nn import functional

    index = 0
    for _filters, blocks, halves in levels:
        for block in range(blocks):
            y = convs[index + 1](functional.relu(convs[index](x)))
            index += 2
            shortcut = functional.avg_pool2d(x, 2, 2) if halves and block == 0 else x
            if y.shape == shortcut.shape:
                x = functional.relu(y + shortcut)
                continue
            shape = [max(p, q) for p, q in zip(y.shape, shortcut.shape, strict=True)]
            x = functional.relu(_padded(y, shape) + _padded(shortcut, shape))
    return x


def _padded(t, shape: list[int]):
    """`t` zero-padded at the end of its channel, row and column axes to `shape`."""
    from torch.nn import functional

    return functional.pad(t, [0, shape[3] - t.shape[3], 0, shape[2] - t.shape[2], 0, shape[1] - t.shape[1]])


def first_conv_of_level(level: int) -> int:
    """Index in `Descriptor.convs` of the first convolution of LEVELS[level]."""
    return 2 * sum(blocks for _filters, blocks, _halves in LEVELS[:level])


@cache
def descriptor_network() -> DescriptorNet:
    """The torch copy of dlib's face descriptor network, built once per process."""

    net = _network(read_weights(models_dir() / "dlib_face_recognition_resnet_model_v1.dat"))
    return cast(DescriptorNet, channels_last(net))


def frozen_maps(pixels: np.ndarray, levels: int, mirrored: bool = False) -> torch.Tensor:
    """Feature maps after the first `levels` levels for stacked (N, H, W, 3) uint8 pictures (their mirror images if
    asked), 64 at a time, in half precision: the frozen part of the face models fine-tuned from this network."""
    import torch

    if mirrored:
        pixels = pixels[:, :, ::-1]
    with torch.inference_mode():
        parts = [
            descriptor_network().trunk(torch.from_numpy(np.array(pixels[s : s + 64])), levels).half()
            for s in range(0, len(pixels), 64)
        ]
    return torch.cat(parts)


def describe_chips(chips: list[np.ndarray]) -> np.ndarray:
    """128-D descriptors of aligned 150 px RGB chips, one forward pass for the batch."""
    import torch

    with torch.inference_mode():
        batch = torch.from_numpy(np.stack([np.ascontiguousarray(c) for c in chips]))
        return descriptor_network()(batch).double().numpy()
