"""The small convolutional network of the face-crop models trained from scratch (expression, liveness, synthetic
faces); built by their inference modules, trained by their training modules."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def conv_block(cin: int, cout: int) -> list:
    """Two 3x3 convolutions with batch norm and ReLU, then 2x2 max pooling (halves the side)."""
    import torch.nn as nn

    return [
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    ]


def small_cnn(channels: int, classes: int) -> torch.nn.Module:
    """Four conv blocks (32-192 channels), global average pooling, dropout 0.4, one linear layer."""
    import torch.nn as nn

    return nn.Sequential(
        *conv_block(channels, 32),
        *conv_block(32, 64),
        *conv_block(64, 128),
        *conv_block(128, 192),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.4),
        nn.Linear(192, classes),
    )
