"""LLaMA-Factory reads what `facellm data export --format sharegpt` writes: its own dataset pipeline (the `intern_vl`
template, the tiny checkpoint's tokenizer and processor) loads our `train.json` through our `dataset_info.json`, and
every sample keeps its image. LLaMA-Factory runs in its own environment (it pins transformers<=5.6, peft<=0.18.1):
`python -m venv ENV && ENV/bin/pip install llamafactory==0.9.5`.

Printed: samples and `<image>` placeholders in our export, samples LLaMA-Factory built, samples that carry an image
and image tokens it placed, and the `media_dir` it needs (the folder the export's image paths start from).
Run: python bench/interop_llamafactory.py --env ENV
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from facellm.samples import SAMPLE_DIR  # noqa: E402
from facellm.testing import make_tiny_checkpoint  # noqa: E402

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", type=Path, required=True, help="Virtual environment with llamafactory installed.")
    args = parser.parse_args()
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
        result = subprocess.run([str(args.env / "bin" / "python"), "-c", READER, str(tiny), str(work / "export"),
                                 str(SAMPLE_DIR), str(work / "lf")], capture_output=True, text=True)  # fmt: skip
        if result.returncode != 0:
            print("LLaMA-Factory failed to read it:\n" + result.stderr[-3000:])
            return
        read = json.loads(result.stdout.strip().splitlines()[-1])
        per_image = 16  # the tiny checkpoint's image tokens per 64 px tile
        print(f"LLaMA-Factory (intern_vl template, media_dir={SAMPLE_DIR}): {read['samples']} samples, "
              f"{read['with_image']} with an image, {read['image_tokens']} image tokens = "
              f"{read['image_tokens'] / per_image:.0f} images of {per_image} tokens")  # fmt: skip
        # Without media_dir LLaMA-Factory looks for the images beside dataset_info.json.
        bare = subprocess.run([str(args.env / "bin" / "python"), "-c", READER, str(tiny), str(work / "export"),
                               str(work / "export"), str(work / "lf2")], capture_output=True, text=True)  # fmt: skip
        outcome = bare.stdout.strip().splitlines()[-1] if bare.returncode == 0 else bare.stderr.strip().splitlines()[-1]
        print(f"same with media_dir left at the export folder: {outcome[:300]}")


if __name__ == "__main__":
    main()
