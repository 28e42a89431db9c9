"""The paper's pipeline at real scale (FairFace val, a real teacher, InternVL3-hf, FaceXBench) as a plan: the facellm
commands to run, what is missing, and the teacher cost. `facellm reproduce` (cli/pipeline.py) prints and runs it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from facellm.data.sources import load_source
from facellm.errors import InputError
from facellm.plan import memory_plan
from facellm.prompts import load_prompts

if TYPE_CHECKING:
    from facellm.plan import MemoryPlan


SIZES = {
    "1b": "configs/train/facellm-1b.yaml",
    "8b": "configs/train/facellm-8b.yaml",
    "38b": "configs/train/facellm-38b.yaml",
}
# Rough per-request token use of one FairFaceGPT request to GPT-4o: a 224 px image (high detail: 255 tokens) plus
# the system and user prompts (~350 tokens) in, a paragraph (~250 tokens) out. An estimate, not a measurement.
PROMPT_TOKENS, COMPLETION_TOKENS = 605, 250
PLANNED_GPUS, PLANNED_GPU_MEMORY_GIB = 8, 80.0  # the machine the dry run's memory plan is drawn for


@dataclass
class Plan:
    commands: list[list[str]]
    requests: int
    cost: float
    problems: list[str]


def plan(
    size: str, fairface: Path, bench_dir: Path, out: Path, base_url: str, model: str, price_in: float, price_out: float
) -> Plan:
    """The commands, the teacher request count (images x aspects), a cost estimate, and what is missing."""

    if size not in SIZES:
        raise InputError(f"unknown size {size!r}", "use 1b, 8b or 38b")
    problems = []
    labels, images = fairface / "fairface_label_val.csv", fairface / "fairface_img_margin025"
    count = 0
    if labels.is_file() and images.is_dir():
        count = len(load_source("fairface", images, labels))
    else:
        problems.append(f"FairFace not found under {fairface} (needs fairface_label_val.csv, fairface_img_margin025/)")
    aspects = len(load_prompts().aspects)
    if not (os.environ.get("FACELLM_API_KEY") or os.environ.get("OPENAI_API_KEY")):
        problems.append("no API key in FACELLM_API_KEY or OPENAI_API_KEY for the teacher")
    if not bench_dir.is_dir():
        problems.append(f"FaceXBench benchmark folder not found: {bench_dir}")
    problems += _gpu_problems(size)
    run = out
    model_id = {
        "1b": "OpenGVLab/InternVL3-1B-hf",
        "8b": "OpenGVLab/InternVL3-8B-hf",
        "38b": "OpenGVLab/InternVL3-38B-hf",
    }[size]
    commands = [
        [
            "facellm",
            "data",
            "build",
            "--source",
            "fairface",
            "--labels",
            str(labels),
            "--images",
            str(images),
            "--out",
            str(run / "data"),
            "--teacher",
            "openai",
            "--base-url",
            base_url,
            "--api-model",
            model,
            "--concurrency",
            "32",
        ],
        [
            "facellm",
            "data",
            "export",
            str(run / "data"),
            "--format",
            "sharegpt",
            "--out",
            str(run / "sharegpt"),
            "--val",
            "0",
        ],
        [
            "facellm",
            "train",
            "--config",
            SIZES[size],
            "--set",
            f"dataset={run / 'sharegpt' / 'train.json'}",
            "--set",
            f"image_root={images}",
            "--set",
            f"output_dir={run / 'train'}",
        ],
        [
            "facellm",
            "export",
            "--base",
            model_id,
            "--adapter",
            str(run / "train" / "adapter"),
            "--out",
            str(run / "model"),
        ],
        [
            "facellm",
            "eval",
            "facexbench",
            "--bench-dir",
            str(bench_dir),
            "--model",
            str(run / "model"),
            "--out",
            str(run / "facexbench"),
        ],
        [
            "facellm",
            "eval",
            "overlap",
            "--train",
            str(run / "sharegpt" / "train.json"),
            "--image-root",
            str(images),
            "--bench-dir",
            str(bench_dir),
            "--out",
            str(run / "overlap.json"),
        ],
    ]
    requests = count * aspects
    cost = requests * (PROMPT_TOKENS * price_in + COMPLETION_TOKENS * price_out) / 1e6
    return Plan(commands, requests, cost, problems)


def memory(size: str) -> MemoryPlan:
    """The memory plan the dry run prints (`facellm plan` draws it for other machines)."""

    return memory_plan(size, gpus=PLANNED_GPUS, gpu_memory_gib=PLANNED_GPU_MEMORY_GIB)


def needed_gib(size: str) -> float:
    """GiB per GPU that training `size` needs at least: the smallest per-GPU total of the memory plan's strategies."""
    return min(strategy.total_gib for strategy in memory(size).training)


def _gpu_problems(size: str) -> list[str]:
    try:
        import torch
    except ImportError:
        return ["torch is not installed"]
    gib = needed_gib(size)
    needed = f"about {gib:.1f} GiB per GPU (the memory plan printed with this plan)"
    if not torch.cuda.is_available():
        return [f"no CUDA GPU visible; training InternVL3-{size.upper()} needs {needed}"]
    memory_gib = torch.cuda.get_device_properties(0).total_memory / 2**30
    if memory_gib < gib:
        return [f"GPU 0 has {memory_gib:.0f} GiB; InternVL3-{size.upper()} needs {needed}"]
    return []
