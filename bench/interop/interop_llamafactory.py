"""LLaMA-Factory reads and trains on what `facellm data export --format sharegpt` writes, and facellm evaluates and
exports the adapter it trains.

1. LLaMA-Factory's own dataset pipeline (the `intern_vl` template, the tiny checkpoint's tokenizer and processor)
   loads our `train.json` through our `dataset_info.json`; every sample keeps its image.
2. `llamafactory-cli train` runs LoRA steps on it (CPU, the tiny checkpoint).
3. The adapter it writes goes through `facellm eval facexbench --adapter` and `facellm export`; the logits facellm
   computes with it equal those LLaMA-Factory's own environment computes (PEFT there) on the same inputs, and the
   merged export's logits equal both.

LLaMA-Factory runs in its own environment (it pins transformers<=5.6, peft<=0.18.1), built by
`bench/interop/llamafactory_env.sh` (llamafactory==0.9.5).
Run: python -m bench.interop.interop_llamafactory [--env ENV] [--steps N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.paths import ROOT

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from facellm.model.tiny import make_tiny_checkpoint  # noqa: E402
from facellm.samples import SAMPLE_DIR  # noqa: E402
from facellm.testing.facexbench import make_standin_benchmark  # noqa: E402

# Runs inside LLaMA-Factory's environment: its own argument parsing, tokenizer loading and dataset pipeline.
READER = r"""
import json, sys
from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
from llamafactory.hparams import get_train_args
from llamafactory.model import load_tokenizer

model, export, media, out = sys.argv[1:5]
args = dict(stage="sft", do_train=True, model_name_or_path=model, dataset="facellm_train", dataset_dir=export,
            media_dir=media, template="intern_vl", cutoff_len=2048, output_dir=out, overwrite_cache=True,
            preprocessing_num_workers=1, finetuning_type="lora", report_to="none")
model_args, data_args, training_args, finetuning_args, _ = get_train_args(args)
tokens = load_tokenizer(model_args)
template = get_template_and_fix_tokenizer(tokens["tokenizer"], data_args)
dataset = get_dataset(template, model_args, data_args, training_args, stage="sft", **tokens)["train_dataset"]
image_id = tokens["tokenizer"].convert_tokens_to_ids("<IMG_CONTEXT>")
with_image = sum(1 for row in dataset if row.get("images"))
image_tokens = sum(row["input_ids"].count(image_id) for row in dataset)
print(json.dumps({"samples": len(dataset), "with_image": with_image, "image_tokens": image_tokens,
                  "columns": dataset.column_names}))
"""

# LLaMA-Factory's training run: LoRA on every linear layer of the language model, as its examples do.
TRAIN_CONFIG = """model_name_or_path: {model}
stage: sft
do_train: true
finetuning_type: lora
lora_rank: 8
lora_target: all
dataset: facellm_train
dataset_dir: {export}
media_dir: {media}
template: intern_vl
cutoff_len: 1024
overwrite_cache: true
preprocessing_num_workers: 1
output_dir: {out}
logging_steps: 1
save_strategy: "no"
per_device_train_batch_size: 4
learning_rate: 1.0e-2
max_steps: {steps}
report_to: none
"""

# Runs inside LLaMA-Factory's environment: the base model plus the adapter through its own transformers and PEFT.
LOGITS = r"""
import sys, torch
from peft import PeftModel
from transformers import AutoModelForImageTextToText
model, adapter, inputs, out = sys.argv[1:5]
net = PeftModel.from_pretrained(AutoModelForImageTextToText.from_pretrained(model, dtype=torch.float32), adapter)
with torch.inference_mode():
    torch.save(net.eval()(**torch.load(inputs)).logits, out)
"""


def train_in_llamafactory(env: Path, tiny: Path, work: Path, steps: int) -> Path:
    """`llamafactory-cli train` on our export; returns the adapter folder it wrote."""
    out = work / "lf-adapter"
    config = work / "lf-train.yaml"
    config.write_text(TRAIN_CONFIG.format(model=tiny, export=work / "export", media=SAMPLE_DIR, out=out, steps=steps))
    started = time.perf_counter()
    run = subprocess.run(
        [str(env / "bin" / "llamafactory-cli"), "train", str(config)],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    seconds = time.perf_counter() - started
    if run.returncode != 0:
        raise RuntimeError("llamafactory-cli train failed:\n" + run.stderr[-3000:])
    losses = [
        row["loss"] for row in map(json.loads, (out / "trainer_log.jsonl").read_text().splitlines()) if "loss" in row
    ]
    files = ", ".join(sorted(p.name for p in out.glob("adapter*")))
    print(
        f"llamafactory-cli train: {len(losses)} LoRA steps in {seconds:.0f} s (whole command), loss "
        f"{losses[0]:.2f} -> {losses[-1]:.2f}; wrote {files}"
    )
    return out


def use_in_facellm(env: Path, tiny: Path, adapter: Path, work: Path) -> None:
    """facellm evaluates and exports LLaMA-Factory's adapter, and computes what LLaMA-Factory's environment does."""
    import torch

    from facellm.images import read_image
    from facellm.model import load_model, question
    from facellm.model.generate import prepare_inputs

    bench = make_standin_benchmark(ROOT / "tests" / "assets" / "facexbench", work / "facexbench")
    evaluated = subprocess.run(
        [
            sys.executable,
            "-m",
            "facellm",
            "eval",
            "facexbench",
            "--bench-dir",
            str(bench),
            "--out",
            str(work / "eval"),
            "--model",
            str(tiny),
            "--adapter",
            str(adapter),
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
    )
    print(
        f"facellm eval facexbench --adapter: exit {evaluated.returncode}, "
        f"{evaluated.stdout.strip().splitlines()[-1] if evaluated.stdout.strip() else evaluated.stderr[-300:]}"
    )
    export = ["export", "--base", str(tiny), "--adapter", str(adapter), "--out", str(work / "merged")]
    exported = subprocess.run([sys.executable, "-m", "facellm", *export], capture_output=True, text=True)
    print(f"facellm export: exit {exported.returncode}, {(exported.stdout or exported.stderr).strip()[-200:]}")
    base, adapted = load_model(tiny, device="cpu"), load_model(tiny, adapter=adapter, device="cpu")
    image = read_image(next(iter(sorted(SAMPLE_DIR.glob("*.jpg")))))
    inputs = dict(prepare_inputs(adapted, [question([image], "Describe this image.")]))
    torch.save(inputs, work / "inputs.pt")
    files = [str(tiny), str(adapter), str(work / "inputs.pt"), str(work / "lf-logits.pt")]
    theirs = subprocess.run([str(env / "bin" / "python"), "-c", LOGITS, *files], capture_output=True, text=True)
    if theirs.returncode != 0:
        print("LLaMA-Factory's environment could not run the adapter:\n" + theirs.stderr[-2000:])
        return
    with torch.inference_mode():
        ours = adapted.model(**inputs).logits
        plain = base.model(**inputs).logits
        merged = load_model(work / "merged", device="cpu").model(**inputs).logits if exported.returncode == 0 else None
    lf = torch.load(work / "lf-logits.pt")
    print(
        f"logits on one image question: facellm (base + adapter) vs LLaMA-Factory's environment: largest difference "
        f"{(ours - lf).abs().max().item():.1e}; the adapter moves them by {(ours - plain).abs().max().item():.2f} "
        f"from the base; merged export vs base + adapter: "
        f"{'-' if merged is None else f'{(merged - ours).abs().max().item():.1e}'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--env", type=Path, help="LLaMA-Factory environment (default: bench/interop/llamafactory_env.sh)."
    )
    parser.add_argument("--steps", type=int, default=20, help="LoRA steps in llamafactory-cli train.")
    args = parser.parse_args()
    if args.env is None:
        built = subprocess.run(
            ["bash", str(ROOT / "bench" / "interop" / "llamafactory_env.sh")], capture_output=True, text=True
        )
        args.env = Path(built.stdout.strip().splitlines()[-1])
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tiny = make_tiny_checkpoint(work / "tiny")
        data = [sys.executable, "-m", "facellm", "data"]
        labels = SAMPLE_DIR / "labels.csv"
        build = ["build", "--images", str(SAMPLE_DIR), "--labels", str(labels), "--aspects", "pose,detail", "--out"]
        subprocess.run([*data, *build, str(work / "run")], check=True, capture_output=True)
        export = ["export", str(work / "run"), "--format", "sharegpt", "--val", "0", "--out", str(work / "export")]
        subprocess.run([*data, *export], check=True, capture_output=True)
        rows = json.loads((work / "export" / "train.json").read_text())
        placeholders = sum(turn["value"].count("<image>") for row in rows for turn in row["conversations"])
        print(f"our export: {len(rows)} samples, {placeholders} <image> placeholders, images relative to {SAMPLE_DIR}")
        result = subprocess.run(
            [
                str(args.env / "bin" / "python"),
                "-c",
                READER,
                str(tiny),
                str(work / "export"),
                str(SAMPLE_DIR),
                str(work / "lf"),
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            print("LLaMA-Factory failed to read it:\n" + result.stderr[-3000:])
            return
        read = json.loads(result.stdout.strip().splitlines()[-1])
        # facellm's processor gives each 224 px sample face 5 tiles of 16 tokens (4 tiles and a thumbnail).
        print(
            f"LLaMA-Factory (intern_vl template, media_dir={SAMPLE_DIR}): {read['samples']} samples, "
            f"{read['with_image']} with an image, {read['image_tokens']} image tokens "
            f"({read['image_tokens'] / max(read['with_image'], 1):.0f} per image; facellm: 80)"
        )
        # Without media_dir LLaMA-Factory looks for the images beside dataset_info.json.
        bare = subprocess.run(
            [
                str(args.env / "bin" / "python"),
                "-c",
                READER,
                str(tiny),
                str(work / "export"),
                str(work / "export"),
                str(work / "lf2"),
            ],
            capture_output=True,
            text=True,
        )
        outcome = bare.stdout.strip().splitlines()[-1] if bare.returncode == 0 else bare.stderr.strip().splitlines()[-1]
        print(f"same with media_dir left at the export folder: {outcome[:300]}")
        adapter = train_in_llamafactory(args.env, tiny, work, args.steps)
        use_in_facellm(args.env, tiny, adapter, work)


if __name__ == "__main__":
    main()
