"""The building blocks and the one training loop of the face models trained here (attributes, expression,
liveness, synthetic faces)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def one_cycle(
    net: torch.nn.Module,
    count: int,
    epochs: int,
    batch: int,
    lr: float | dict,
    generator: torch.Generator,
    batch_loss: Callable,
    say: Callable[[str], None] = print,
    monitor: Callable[[], str] | None = None,
) -> None:
    """AdamW (weight decay 5e-4) with a one-cycle schedule peaking at `lr`, over `epochs` shuffled passes of `count`
    examples; `batch_loss(index)` is the loss of the examples in `index`. `lr` may map submodule names of `net` to
    their own peak rates (fine-tuned layers slower than new ones). After each epoch `say()` gets the mean loss and
    `monitor()`'s text (printed only: the last epoch is what is kept)."""
    import torch

    rates = lr if isinstance(lr, dict) else {"": lr}
    groups = [{"params": net.get_submodule(name).parameters(), "lr": rate} for name, rate in rates.items()]
    optimiser = torch.optim.AdamW(groups, weight_decay=5e-4)
    steps = epochs * ((count + batch - 1) // batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=list(rates.values()), total_steps=steps)
    for epoch in range(epochs):
        net.train()
        started, total = time.time(), 0.0
        for index in torch.randperm(count, generator=generator).split(batch):
            loss = batch_loss(index)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(index)
        extra = f", {monitor()}" if monitor else ""
        say(f"epoch {epoch + 1}/{epochs}: loss {total / count:.3f}{extra} ({time.time() - started:.0f} s)")


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
