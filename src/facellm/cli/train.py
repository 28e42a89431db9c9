"""`facellm train`, `facellm export` (merge an adapter) and `facellm plan` (memory per GPU)."""

from __future__ import annotations

from pathlib import Path

import click

from facellm.api import train
from facellm.cli.root import cli
from facellm.errors import FaceLLMError
from facellm.finetune.merge import merge_adapter
from facellm.plan import SIZES, describe, memory_plan


@cli.command("train")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    help="Training YAML, or a shipped config's name (facellm-1b, facellm-8b, facellm-38b, tiny-cpu).",
)
@click.option("--set", "overrides", multiple=True, help="Override a config key: --set learning_rate=2e-5.")
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in output_dir.")
def train_command(config_path, overrides, resume) -> None:
    """LoRA (or full) fine-tuning of an image-text-to-text model on a ShareGPT/LLaVA dataset."""
    from facellm.finetune.recipe import is_main_process

    if config_path is None and not overrides:
        raise FaceLLMError(
            "no training config given", "pass --config facellm-1b (or another shipped config, or a YAML file)"
        )
    summary = train(config_path, overrides, resume=resume)
    if not is_main_process():
        return
    skipped = ", ".join(f"{reason}: {n}" for reason, n in summary.skipped_rows.items()) or "none"
    click.echo(
        f"trained {summary.global_step} steps on {summary.train_samples} samples "
        f"(skipped rows: {skipped}; dropped by collator: {summary.dropped_by_collator}); "
        f"final train loss {summary.train_loss:.4f}; peak memory {summary.peak_memory_mb} MB"
    )
    world = f" in {summary.world_size} processes" if summary.world_size > 1 else ""
    click.echo(f"saved to {summary.output}{world}; log, loss curve and summary in {summary.output.parent}")


@cli.command("export")
@click.option("--base", required=True, help="Base model the adapter was trained on (hub id or folder).")
@click.option("--adapter", required=True, type=click.Path(path_type=Path), help="LoRA adapter folder.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Folder for the merged model.")
@click.option("--dtype", default="auto", show_default=True, help="Weights dtype of the merged model.")
@click.option("--push-to-hub", help="Also upload to this Hugging Face repo (needs network and a token).")
def export_command(base, adapter, out, dtype, push_to_hub) -> None:
    """Merge a LoRA adapter into its base model: a standalone checkpoint for `facellm ask` and transformers."""

    target = merge_adapter(base, adapter, out, dtype, push_to_hub)
    click.echo(f"merged model written to {target}")


@cli.command("plan")
@click.option("--size", type=click.Choice(SIZES), required=True, help="Released InternVL3-hf shape.")
@click.option("--gpus", type=int, default=1, show_default=True, help="GPUs for DDP, FSDP, ZeRO-3 and tensor parallel.")
@click.option("--gpu-memory", type=float, default=80.0, show_default=True, help="GiB per GPU.")
@click.option("--micro-batch", type=int, help="Per-GPU batch (default: the paper's, 10 for 1B/8B, 2 for 38B).")
@click.option("--seq-len", type=int, default=2048, show_default=True, help="Tokens per sample (the paper's cutoff).")
@click.option("--dtype", type=click.Choice(["bf16", "fp32"]), default="bf16", show_default=True)
@click.option("--no-checkpointing", is_flag=True, help="Plan without gradient checkpointing.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON (a `fits` boolean per strategy).")
def plan_command(size, gpus, gpu_memory, micro_batch, seq_len, dtype, no_checkpointing, as_json) -> None:
    """Memory per GPU for LoRA training (single, DDP, FSDP, ZeRO-3) and inference at a released shape."""
    import json

    plan = memory_plan(size, gpus, gpu_memory, micro_batch, seq_len, 2 if dtype == "bf16" else 4, not no_checkpointing)
    click.echo(json.dumps(plan.as_dict(), indent=1) if as_json else describe(plan))
