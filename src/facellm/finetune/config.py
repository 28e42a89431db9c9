"""The training config: every knob of a run, with the FaceLLM paper's recipe as defaults.

A YAML file maps onto `TrainConfig` one key per field; `--set key=value` overrides any field (values are parsed as
YAML, so `--set learning_rate=2e-5 --set train_vision=true` work). Unknown keys are an error naming the key.
Paper recipe (FaceLLM, Idiap 2025): LoRA rank 16, alpha 32, dropout 0 on all linear layers of the language model;
lr 1e-5, cosine, no warm-up, 1 epoch, AdamW, gradient-norm clip 1.0, bf16, cutoff 2048 tokens; batch 10 x
accumulation 8 for 1B/8B, 2 x 6 for 38B.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from facellm.configs import config_file
from facellm.errors import InputError
from facellm.files import read_text


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    # what to train, on what
    model: str = "OpenGVLab/InternVL3-1B-hf"
    dataset: str = "dataset.json"
    image_root: str | None = None  # image paths in the dataset are relative to this (default: the dataset's folder)
    eval_dataset: str | None = None
    eval_fraction: float = 0.0  # held out from `dataset` by image when no eval_dataset is given
    output_dir: str = "runs/train"
    max_samples: int | None = None

    # what is trained
    finetuning: Literal["lora", "full"] = "lora"
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    lora_targets: Literal["language", "all-linear"] = "language"  # "language": every linear layer of the LLM
    train_vision: bool = False
    train_projector: bool = False

    # optimisation
    learning_rate: float = 1e-5
    lr_scheduler: str = "cosine"
    warmup_steps: float = 0
    epochs: float = 1.0
    max_steps: int = -1
    optimizer: str = "adamw_torch"
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    precision: Literal["bf16", "fp16", "fp32"] = "bf16"
    cutoff_len: int = 2048
    per_device_batch_size: int = 10
    gradient_accumulation_steps: int = 8
    gradient_checkpointing: bool = True
    group_by_length: bool = True
    seed: int = 42

    # bookkeeping
    logging_steps: int = 10
    save_steps: int = 500
    save_total_limit: int | None = 3
    eval_steps: int | None = None
    report_to: Literal["none", "tensorboard", "wandb"] = "none"
    dataloader_workers: int = 0

    @field_validator("cutoff_len", "per_device_batch_size", "gradient_accumulation_steps", "lora_r", "logging_steps")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1")
        return value

    @field_validator("eval_fraction")
    @classmethod
    def _fraction(cls, value: float) -> float:
        if not 0 <= value < 1:
            raise ValueError("must be in [0, 1)")
        return value


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Read a YAML config and apply `key=value` overrides; every problem is an `InputError` naming the key."""
    values: dict = {}
    if path is not None:
        source = config_file(path)
        text = read_text(source, "config", "pass --config facellm-1b (a shipped config) or a YAML file")
        try:
            values = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise InputError(f"cannot parse {source}: {exc}", "fix the YAML syntax") from None
        if not isinstance(values, dict):
            raise InputError(f"{source} must hold a mapping of config keys", "see configs/train/facellm-1b.yaml")
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set expects key=value, got {item!r}", "e.g. --set learning_rate=2e-5")
        values[key.strip()] = yaml.safe_load(raw) if raw.strip() else None
    unknown = sorted(set(values) - set(TrainConfig.model_fields))
    if unknown:
        raise InputError(
            f"unknown config key(s): {', '.join(unknown)}", "see TrainConfig in facellm/finetune/config.py"
        )
    try:
        return TrainConfig(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise InputError(f"bad value for config key {key!r}: {first['msg']}", "check the config or --set") from None
