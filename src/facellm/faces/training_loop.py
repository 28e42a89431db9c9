"""The one training loop of the face models trained here (attributes, CelebA attributes, expression, liveness,
synthetic faces)."""

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
