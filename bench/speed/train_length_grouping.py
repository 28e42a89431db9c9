"""Training throughput with and without length grouping: tokens per second, padding fraction, peak memory.

The tiny InternVL checkpoint on CPU trains (LoRA, the paper's r16/alpha32) on 96 samples built from the shipped
FairFace faces with a realistic spread of lengths: one-image questions with short, medium and long answers and
two-image questions (as FairFaceGPT's "detail" answers are several times longer than its short aspects). Each
variant runs in its own process so that peak resident memory is its own.

Run: python -m bench.speed.train_length_grouping [--samples 96] [--steps 48] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

WORDS = "the face shows even lighting soft shadows a calm expression and a frontal pose with sharp detail".split()


def make_dataset(folder: Path, samples: int) -> Path:
    from facellm.samples import sample_faces

    faces = sample_faces()
    rows = []
    for i in range(samples):
        answer_words = [8, 40, 160][i % 3]
        answer = " ".join(WORDS[(i + j) % len(WORDS)] for j in range(answer_words))
        images = [faces[i % len(faces)].path.name] + ([faces[(i + 1) % len(faces)].path.name] if i % 4 == 3 else [])
        prompt = "<image>\n" * len(images) + "Describe this image."
        rows.append(
            {
                "images": images,
                "conversations": [{"from": "human", "value": prompt}, {"from": "assistant", "value": answer}],
            }
        )
    path = folder / "bench.json"
    path.write_text(json.dumps(rows))
    return path


def run_variant(args) -> None:
    from facellm.finetune.config import load_config
    from facellm.finetune.recipe import train
    from facellm.samples import SAMPLE_DIR

    config = load_config(
        None,
        [
            f"model={args.model}",
            f"dataset={args.dataset}",
            f"image_root={SAMPLE_DIR}",
            f"output_dir={args.out}",
            f"max_steps={args.steps}",
            f"per_device_batch_size={args.batch_size}",
            "gradient_accumulation_steps=1",
            "gradient_checkpointing=false",
            "precision=fp32",
            "learning_rate=1e-4",
            f"group_by_length={args.variant == 'grouped'}",
            "logging_steps=1000",
            "save_steps=100000",
        ],
    )
    summary = train(config)
    print(json.dumps(summary))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=96)
    parser.add_argument("--steps", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--variant", choices=["grouped", "random"])
    parser.add_argument("--model")
    parser.add_argument("--dataset")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.variant:
        run_variant(args)
        return

    from facellm.model.tiny import make_tiny_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = make_tiny_checkpoint(work / "tiny")
        dataset = make_dataset(work, args.samples)
        results = {}
        for variant in ("random", "grouped"):
            command = [
                sys.executable,
                "-m",
                "bench.speed.train_length_grouping",
                "--variant",
                variant,
                "--model",
                str(model),
                "--dataset",
                str(dataset),
                "--out",
                str(work / variant),
                "--steps",
                str(args.steps),
                "--batch-size",
                str(args.batch_size),
            ]
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            results[variant] = json.loads(output.strip().splitlines()[-1])
    print(f"{args.samples} samples, {args.steps} steps of batch {args.batch_size}, tiny InternVL on CPU, LoRA r16")
    for variant, s in results.items():
        rate = s["tokens_seen"] / s["seconds"]
        print(
            f"{variant:8s} {s['tokens_seen']:7d} real tokens in {s['seconds']:6.1f} s = {rate:8.0f} tokens/s; "
            f"padding {100 * s['padding_fraction']:5.1f}% of positions; peak RSS {s['peak_memory_mb']:.0f} MB"
        )
    grouped, plain = results["grouped"], results["random"]
    speedup = (grouped["tokens_seen"] / grouped["seconds"]) / (plain["tokens_seen"] / plain["seconds"])
    print(
        f"grouped vs random: {speedup:.2f}x tokens/s, padding {100 * plain['padding_fraction']:.1f}% -> "
        f"{100 * grouped['padding_fraction']:.1f}%"
    )


if __name__ == "__main__":
    main()
