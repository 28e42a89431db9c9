"""LoRA (or full) supervised fine-tuning of an image-text-to-text model with transformers' Trainer and PEFT.

Reads top to bottom: `train` sets up data and model, builds the Trainer, fits, then writes the run folder:
`config.yaml` (resolved), Trainer checkpoints, the final `adapter/` (or `model/` for full fine-tuning) with the
processor, `log.jsonl` (loss, learning rate, grad norm, tokens/s per logging step), `loss.png` and `summary.json`
(samples kept and dropped, steps, world size, peak memory). Several processes: run the same command under
`accelerate launch` or `torchrun`; the Trainer picks up the distributed setup (DDP, FSDP, DeepSpeed) from there,
each process reads its own shard of every global batch, and only the first process writes the run folder's files
(token counts are summed over all processes).
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from transformers import TrainerCallback

from facellm.errors import InputError, ModelLoadError
from facellm.finetune.collator import AssistantOnlyCollator, TokenCounter
from facellm.finetune.config import TrainConfig
from facellm.finetune.dataset import split_by_image, training_dataset
from facellm.model.loading import save_processor

if TYPE_CHECKING:
    from transformers import PreTrainedModel, TrainingArguments


def train(config: TrainConfig, resume: bool = False, callbacks: list | None = None) -> dict:
    """Run one fine-tuning job described by `config`; returns the summary also written to summary.json."""
    import torch
    from transformers import AutoProcessor, Trainer, set_seed

    out = Path(config.output_dir)
    checkpoint = check_before_loading(config, resume)
    out.mkdir(parents=True, exist_ok=True)
    main = is_main_process()
    if main:
        (out / "config.yaml").write_text(yaml.safe_dump(config.model_dump(), sort_keys=False), encoding="utf-8")
    set_seed(config.seed)
    precision = resolve_precision(config.precision)
    if os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true" and not torch.cuda.is_available():
        # accelerate (1.15) switches to FSDP only on top of a multi-GPU setup: on CPU it runs plain data parallel.
        warnings.warn(
            "FSDP was requested but there is no GPU: accelerate trains plain data-parallel on the CPU "
            "(nothing is sharded)",
            stacklevel=2,
        )

    try:
        processor = AutoProcessor.from_pretrained(config.model)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"cannot load processor of {config.model!r}: {str(exc).splitlines()[0]}",
            "set model= to a local checkpoint folder or a reachable hub id",
        ) from None
    dataset, report = training_dataset(
        config.dataset, processor, config.image_root, config.cutoff_len, config.max_samples
    )
    if config.eval_dataset:
        train_set, eval_set = (
            dataset,
            training_dataset(config.eval_dataset, processor, config.image_root, config.cutoff_len)[0],
        )
    else:
        train_set, eval_set = split_by_image(dataset, config.eval_fraction, config.seed)

    model = build_model(config, precision)
    counter = TokenCounter()
    collator = AssistantOnlyCollator(processor, config.cutoff_len, counter)
    log = JsonlLog(out / "log.jsonl", counter)
    trainer = Trainer(
        model=model,
        args=training_arguments(config, precision, has_eval=eval_set is not None),
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=collator,
        callbacks=[log, *(callbacks or [])],
    )
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    started = time.time()
    result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)

    final = out / ("adapter" if config.finetuning == "lora" else "model")
    tokens, positions = world_total(counter.tokens), world_total(counter.positions)
    if main:
        trainer.model.save_pretrained(final)
        save_processor(processor, final)
    trainer.accelerator.wait_for_everyone()  # no process returns before the adapter is on disk
    losses = logged_losses(out / "log.jsonl")
    summary = {
        "samples": report.as_dict(),
        "train_samples": len(train_set),
        "eval_samples": len(eval_set) if eval_set is not None else 0,
        "dropped_by_collator": counter.dropped,
        "global_step": trainer.state.global_step,
        "train_loss": result.training_loss,
        "logged_losses": [loss for _, loss in losses],
        "seconds": round(time.time() - started, 1),
        "world_size": trainer.args.world_size,
        "tokens_seen": tokens,
        "padding_fraction": round(1 - tokens / positions, 4) if positions else 0.0,
        "peak_memory_mb": peak_memory_mb(),
        "precision": precision,
        "output": str(final),
    }
    if main:
        plot_loss(losses, out / "loss.png")
        (out / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return summary


def check_before_loading(config: TrainConfig, resume: bool) -> Path | None:
    """What can be refused before any model loads: missing dataset files or image folder, and a `--resume` with no
    checkpoint to resume from (returned when there is one)."""
    for key in ("dataset", "eval_dataset"):
        path = getattr(config, key)
        if path and not Path(path).is_file():
            raise InputError(f"{key} not found: {path}", f"set {key}= to a ShareGPT/LLaVA JSON or JSONL file")
    if config.image_root and not Path(config.image_root).is_dir():
        raise InputError(
            f"image_root not found: {config.image_root}",
            "set image_root= to the folder the images "
            "are under (or leave it out: paths then start from the dataset's folder)",
        )
    if not resume:
        return None
    checkpoint = _last_checkpoint(Path(config.output_dir))
    if checkpoint is None:
        raise InputError(f"no checkpoint to resume from in {config.output_dir}", "drop --resume to start a new run")
    return checkpoint


def is_main_process() -> bool:
    """True in a single-process run and in the first process of a distributed one (also before it initialises)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return int(os.environ.get("RANK", "0")) == 0


def world_total(value: int) -> int:
    """The sum of `value` over every process of a distributed run (the value itself in a single process)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return value
    total = torch.tensor([value], dtype=torch.long)
    dist.all_reduce(total)
    return int(total.item())


def resolve_precision(requested: str) -> str:
    """bf16/fp16 need a GPU here; on CPU they fall back to fp32 with a warning."""
    import torch

    if requested == "fp32" or torch.cuda.is_available():
        if requested == "bf16" and torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
            warnings.warn("this GPU has no bf16 support; training in fp16 instead", stacklevel=2)
            return "fp16"
        return requested
    warnings.warn(f"{requested} training needs a GPU; training in fp32 on the CPU instead", stacklevel=2)
    return "fp32"


def build_model(config: TrainConfig, precision: str) -> PreTrainedModel:
    """Load the base model and make the right parameters trainable (LoRA adapters, or everything for full)."""
    import torch
    from transformers import AutoModelForImageTextToText

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[precision]
    try:
        model = AutoModelForImageTextToText.from_pretrained(config.model, dtype=dtype)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"cannot load model {config.model!r}: {str(exc).splitlines()[0]}",
            "set model= to a local checkpoint folder or a reachable hub id",
        ) from None
    if config.finetuning == "full":
        for name, parameter in model.named_parameters():
            parameter.requires_grad = _trainable_in_full(name, config)
        return model
    from peft import LoraConfig, get_peft_model

    targets = lora_target_modules(model, config)
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=targets,
        modules_to_save=[n for n in ("multi_modal_projector",) if config.train_projector and _has(model, n)] or None,
    )
    if config.gradient_checkpointing:
        model.enable_input_require_grads()
    return get_peft_model(model, lora)


def lora_target_modules(model: PreTrainedModel, config: TrainConfig) -> list[str] | str:
    """Every linear layer of the language model (plus the vision tower's when train_vision), by full name."""
    import torch

    if config.lora_targets == "all-linear":
        return "all-linear"
    names = []
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear) or name.endswith("lm_head"):
            continue
        if "language_model" in name or (config.train_vision and "vision" in name):
            names.append(name)
    if not names:
        raise InputError("found no language-model linear layers to adapt", "set lora_targets=all-linear")
    return names


def _trainable_in_full(name: str, config: TrainConfig) -> bool:
    if "vision" in name:
        return config.train_vision
    if "multi_modal_projector" in name:
        return config.train_projector
    return True


def _has(model, name: str) -> bool:
    return any(n.endswith(name) for n, _ in model.named_modules())


def _checkpointing_argument() -> str:
    """transformers 5.x renamed TrainingArguments' gradient_checkpointing to activation_checkpointing (the old name
    warns); the name this installed version takes."""
    import dataclasses

    from transformers import TrainingArguments

    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    return "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"


_CHECKPOINTING = _checkpointing_argument()


def training_arguments(config: TrainConfig, precision: str, has_eval: bool = False) -> TrainingArguments:
    """The Trainer's arguments for this config (no model needed; every shipped config is tested through this)."""
    import torch
    from transformers import TrainingArguments

    evaluate = has_eval and config.eval_steps is not None
    return TrainingArguments(
        output_dir=config.output_dir,
        per_device_train_batch_size=config.per_device_batch_size,
        per_device_eval_batch_size=config.per_device_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_steps,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        optim=config.optimizer,
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        **{_CHECKPOINTING: config.gradient_checkpointing},
        logging_steps=config.logging_steps,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        eval_strategy="steps" if evaluate else "no",
        eval_steps=config.eval_steps if evaluate else None,
        report_to=[] if config.report_to == "none" else [config.report_to],
        seed=config.seed,
        data_seed=config.seed,
        remove_unused_columns=False,
        dataloader_num_workers=config.dataloader_workers,
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        length_column_name="length",
        label_names=["labels"],
        use_cpu=not torch.cuda.is_available(),
    )


class JsonlLog(TrainerCallback):
    """Appends loss, learning rate, grad norm and tokens/s of every logging step to a JSONL file (first process
    only; its tokens/s counts that process's tokens, so multiply by the world size for the whole run's rate)."""

    def __init__(self, path: Path, counter: TokenCounter) -> None:
        self.path = path
        self.counter = counter
        self._last = (time.time(), 0)

    def on_log(self, args, state, control, logs=None, **kwargs) -> None:
        if not state.is_world_process_zero:
            return
        now = time.time()
        last_time, last_tokens = self._last
        self._last = (now, self.counter.tokens)
        entry = {"step": state.global_step, "epoch": state.epoch, **(logs or {})}
        if now > last_time:
            entry["tokens_per_second"] = round((self.counter.tokens - last_tokens) / (now - last_time), 1)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")


def logged_losses(log_path: Path) -> list[tuple[int, float]]:
    """(step, training loss) of every logging step in log.jsonl."""
    if not log_path.exists():
        return []
    entries = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    return [(e["step"], e["loss"]) for e in entries if "loss" in e]


def plot_loss(points: list[tuple[int, float]], png: Path) -> None:
    if not points:
        return
    from matplotlib.figure import Figure  # a figure of its own: the process's matplotlib backend is left alone

    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    ax.plot(*zip(*points), marker="o", markersize=3)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    fig.tight_layout()
    fig.savefig(png, dpi=90)


def peak_memory_mb() -> float:
    """Peak GPU memory when training on CUDA, else the process's peak resident memory."""
    import resource

    import torch

    if torch.cuda.is_available():
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _last_checkpoint(out: Path) -> Path | None:
    checkpoints = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    return checkpoints[-1] if checkpoints else None
