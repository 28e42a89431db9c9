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

import numpy as np

from facellm.errors import ModelLoadError

# (filters, blocks, first block halves the size) from the input up: alevel4 .. alevel0 of dlib's example.
LEVELS = [(32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True)]


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
        raise ModelLoadError(f"could not read dlib's face descriptor network from {path}: {error}",
                             'reinstall face-recognition-models (pip install -e ".")') from None  # fmt: skip
    return {"means": means, "convs": convs, "affines": affines, "fc": fc}


def _network(weights: dict):
    import torch
    from torch import nn
    from torch.nn import functional

    class Descriptor(nn.Module):
        """dlib's anet_type: conv 7x7/2, max pool 3/2, residual levels, global average pool, 128-D linear map.
        A halving block adds its 2x2-average-pooled input; where the two differ in size or channels, the smaller
        is zero-padded at the end (dlib's add_prev)."""

        def __init__(self) -> None:
            super().__init__()
            self.convs = nn.ModuleList()
            # An affine layer after a convolution is the same convolution with scaled weights and shifted bias.
            layers = zip(weights["convs"], weights["affines"], strict=True)
            for (weight, bias, stride, padding), (gamma, beta) in layers:
                conv = nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[2:], stride, padding)
                conv.weight.data = torch.from_numpy(weight * gamma[:, None, None, None])
                conv.bias.data = torch.from_numpy(bias * gamma + beta)
                self.convs.append(conv)
            self.register_buffer("means", torch.tensor(weights["means"]).view(1, 3, 1, 1))
            self.register_buffer("fc", torch.from_numpy(weights["fc"].copy()))

        def forward(self, pixels):
            """pixels: (N, 150, 150, 3) uint8 RGB chips -> (N, 128) descriptors."""
            x = (pixels.permute(0, 3, 1, 2).float() - self.means) / 256.0
            x = functional.max_pool2d(functional.relu(self.convs[0](x)), 3, 2)
            index = 1
            for _filters, blocks, halves in LEVELS:
                for block in range(blocks):
                    down = halves and block == 0
                    y = self.convs[index + 1](functional.relu(self.convs[index](x)))
                    index += 2
                    shortcut = functional.avg_pool2d(x, 2, 2) if down else x
                    x = functional.relu(_add_padded(y, shortcut))
            return x.mean(dim=(2, 3)) @ self.fc

    def _add_padded(a, b):
        shape = [max(p, q) for p, q in zip(a.shape, b.shape, strict=True)]

        def grown(t):
            pad = []
            for dim in (3, 2, 1):
                pad += [0, shape[dim] - t.shape[dim]]
            return functional.pad(t, pad)

        return grown(a) + grown(b)

    return Descriptor().eval()


@cache
def descriptor_network():
    """The torch copy of dlib's face descriptor network, built once per process."""
    from facellm.faces.models import models_dir

    return _network(read_weights(models_dir() / "dlib_face_recognition_resnet_model_v1.dat"))


def describe_chips(chips: list[np.ndarray]) -> np.ndarray:
    """128-D descriptors of aligned 150 px RGB chips, one forward pass for the batch."""
    import torch

    with torch.inference_mode():
        batch = torch.from_numpy(np.stack([np.ascontiguousarray(c) for c in chips]))
        return descriptor_network()(batch).double().numpy()
