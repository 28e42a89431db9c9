"""Training: LoRA (or full) fine-tuning from a config."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from facellm.errors import InputError
from facellm.finetune.config import TrainConfig, load_config

if TYPE_CHECKING:
    from facellm.finetune.config import TrainConfig


@dataclass(frozen=True)
class TrainSummary:
    """A finished training run."""

    output: Path  # the adapter (LoRA) or model folder
    global_step: int
    train_samples: int
    eval_samples: int
    skipped_rows: dict[str, int]  # rows of the dataset left out, by reason
    dropped_by_collator: int
    train_loss: float
    logged_losses: list[float]
    seconds: float
    world_size: int
    tokens_seen: int
    padding_fraction: float
    peak_memory_mb: float
    precision: str


def train(
    config: TrainConfig | str | Path | None, overrides: Sequence[str] = (), *, resume: bool = False
) -> TrainSummary:
    """LoRA (or full) fine-tuning: `config` is a training YAML, a shipped config's name (facellm-1b, facellm-8b,
    facellm-38b, tiny-cpu) or a `TrainConfig`; `overrides` are `key=value` strings (e.g. "learning_rate=2e-5")."""
    from facellm.finetune.recipe import train as fine_tune

    if config is None and not overrides:
        raise InputError("no training config given", "pass a shipped config's name (e.g. facellm-1b) or a YAML file")
    if isinstance(config, TrainConfig) and overrides:
        raise InputError("overrides apply to a config file or name", "change the TrainConfig itself (model_copy)")
    chosen = config if isinstance(config, TrainConfig) else load_config(config, tuple(overrides))
    found = fine_tune(chosen, resume=resume)
    return TrainSummary(
        output=Path(found["output"]),
        global_step=found["global_step"],
        train_samples=found["train_samples"],
        eval_samples=found["eval_samples"],
        skipped_rows=dict(found["samples"]["skipped"]),
        dropped_by_collator=found["dropped_by_collator"],
        train_loss=found["train_loss"],
        logged_losses=found["logged_losses"],
        seconds=found["seconds"],
        world_size=found["world_size"],
        tokens_seen=found["tokens_seen"],
        padding_fraction=found["padding_fraction"],
        peak_memory_mb=found["peak_memory_mb"],
        precision=found["precision"],
    )
