"""The InternVL3-1B shape (random weights, real architecture and processor) through the real code paths on CPU.

Measured, each in this run:
1. image tokens the shape's processor gives a 224 px FairFace face and a 4-image FaceXBench-style question;
2. `facellm train` (subprocess, the CLI users run) for 2 steps at micro-batch 1, fp32 (CPU), gradient
   checkpointing on as in the paper: seconds per step, tokens per second, peak resident memory (the run's
   summary.json). Against it: `facellm.plan`'s figure for the same dtype, micro-batch, length and checkpointing,
   with the runtime term set to the measured resident memory of a process that has imported the training stack
   (interpreter, torch, transformers) before any model exists;
3. FLOPs per trained token for the shape: 6 x language-model parameters (forward and backward; the frozen vision
   tower adds 2 x its parameters per image token for its forward).

4. `facellm eval facexbench` (subprocess) on 4 questions of the project's FaceXBench sample files (stand-in images
   of 96 px), batch 4, with generation (16 tokens) and with likelihood scoring of the option letters;
5. one `facellm serve` request (a 224 px face, 8 tokens) against the server process, after a warm-up request.

Run: python -m bench.speed.real_shape [--model DIR]   (DIR: a folder from `facellm dev make-shape-model`)
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

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.paths import ROOT
from facellm.conversation import question  # noqa: E402
from facellm.images import read_image  # noqa: E402
from facellm.model.generate import to_messages  # noqa: E402
from facellm.model.random_shape import build_shape_processor, make_shape_checkpoint  # noqa: E402
from facellm.plan import memory_plan, shape_counts, training_bytes  # noqa: E402
from facellm.samples import SAMPLE_DIR, sample_faces  # noqa: E402


def image_tokens(faces) -> None:
    processor = build_shape_processor()
    context = processor.tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>")
    for count in (1, 4):
        conversation = question(faces[:count], "Which image shows the oldest person?")
        text = processor.apply_chat_template(to_messages(conversation), add_generation_prompt=True, tokenize=False)
        encoded = processor(text=[text], images=[faces[:count]], return_tensors="pt")
        tokens = encoded["input_ids"][0].tolist()
        print(
            f"{count} face(s) of {faces[0].width} px: {tokens.count(context)} image tokens, "
            f"{encoded['pixel_values'].shape[0]} tile(s) of 448 px, {len(tokens)} tokens in all"
        )


def baseline_rss_mb() -> float:
    """Peak resident memory of a process that imports the training stack and builds nothing."""
    code = (
        "import resource, torch, transformers, peft; import facellm.finetune.recipe; "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def train_two_steps(model: Path, work: Path) -> dict:
    faces = sample_faces()[:2]
    rows = [
        {
            "image": f.path.name,
            "conversations": [
                {"from": "human", "value": "<image>\nDescribe the facial expression and head pose."},
                {"from": "assistant", "value": f"A {f.gender.lower()} face, {f.race}, aged {f.age}; frontal and calm."},
            ],
        }
        for f in faces
    ]
    (work / "train.json").write_text(json.dumps(rows))
    settings = [
        f"model={model}",
        f"dataset={work / 'train.json'}",
        f"image_root={SAMPLE_DIR}",
        f"output_dir={work / 'run'}",
        "precision=fp32",
        "per_device_batch_size=1",
        "gradient_accumulation_steps=1",
        "max_steps=2",
        "logging_steps=1",
        "save_steps=1000",
        "gradient_checkpointing=true",
        "cutoff_len=2048",
    ]
    command = [sys.executable, "-m", "facellm", "train", *[a for s in settings for a in ("--set", s)]]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - started
    summary = json.loads((work / "run" / "summary.json").read_text())
    summary["wall_seconds"] = wall
    return summary


def eval_batch(model: Path, work: Path) -> None:
    from facellm.testing.facexbench import make_standin_benchmark

    bench = make_standin_benchmark(ROOT / "tests" / "assets" / "facexbench", work / "facexbench")
    for scoring in ("generate", "likelihood"):
        command = [
            sys.executable,
            "-m",
            "facellm",
            "eval",
            "facexbench",
            "--bench-dir",
            str(bench),
            "--model",
            str(model),
            "--device",
            "cpu",
            "--out",
            str(work / f"eval-{scoring}"),
            "--limit",
            "4",
            "--only",
            "age",
            "--batch-size",
            "4",
            "--scoring",
            scoring,
        ]
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, text=True)
        print(
            f"facellm eval facexbench, 4 age questions, batch 4, {scoring}: {time.perf_counter() - started:.0f} s "
            f"for the whole command (model load included)"
        )


def serve_request(model: Path, face) -> None:
    import httpx

    from facellm.backends.openai_client import image_data_url
    from facellm.testing.server import ServerProcess

    body = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": image_data_url(face)}},
                    {"type": "text", "text": "Describe this face."},
                ],
            }
        ],
        "max_tokens": 8,
    }
    with ServerProcess("--model", str(model), "--device", "cpu", timeout_s=600) as server:
        httpx.post(server.url + "/v1/chat/completions", json=body, timeout=600).raise_for_status()  # warm-up
        started = time.perf_counter()
        httpx.post(server.url + "/v1/chat/completions", json=body, timeout=600).raise_for_status()
        seconds = time.perf_counter() - started
        memory = server.memory_mb()
    print(
        f"facellm serve, one request (224 px face, 8 tokens): {seconds:.1f} s; server RSS {memory['VmRSS']:.0f} MB, "
        f"peak {memory['VmHWM']:.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="An existing internvl3-1b shape folder (else one is built).")
    args = parser.parse_args()
    faces = [read_image(f.path) for f in sample_faces()[:4]]
    image_tokens(faces)
    counts = shape_counts("1b")
    print(
        f"InternVL3-1B shape: {counts.total / 1e9:.3f} B parameters; FLOPs per trained token "
        f"6 x {counts.language / 1e9:.3f} B = {6 * counts.language / 1e9:.2f} GFLOP "
        f"(+ 2 x {counts.vision / 1e9:.3f} B = {2 * counts.vision / 1e9:.2f} GFLOP per image token for the "
        f"frozen vision forward)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = args.model
        if model is None:
            started = time.perf_counter()
            model, _ = make_shape_checkpoint("internvl3-1b", work / "shape")
            print(f"built and saved the 1B shape in bf16 in {time.perf_counter() - started:.0f} s")
        baseline = baseline_rss_mb()
        summary = train_two_steps(model, work)
        eval_batch(model, work)
        serve_request(model, faces[0])
    steps = summary["global_step"]
    tokens_per_sample = summary["tokens_seen"] / steps  # micro-batch 1: one sample per step
    print(
        f"facellm train, 2 steps at micro-batch 1, fp32 on CPU: {summary['seconds'] / steps:.1f} s/step, "
        f"{summary['tokens_seen'] / summary['seconds']:.1f} tokens/s ({tokens_per_sample:.0f} tokens per sample), "
        f"peak RSS {summary['peak_memory_mb']:.0f} MB (whole command {summary['wall_seconds']:.0f} s)"
    )
    length = round(tokens_per_sample)
    terms = training_bytes(
        counts, "single", 1, 1, length, dtype_bytes=4, checkpointing=True, runtime_gib=baseline / 1024
    )
    planned = sum(terms.values()) / 2**20
    parts = ", ".join(f"{k} {v / 2**20:.0f}" for k, v in terms.items())
    print(
        f"plan for fp32, micro-batch 1, {length} tokens, checkpointing on: {planned:.0f} MB ({parts}; runtime = "
        f"measured import-only RSS {baseline:.0f} MB)"
    )
    print(f"measured / planned: {summary['peak_memory_mb'] / planned:.2f} (target 0.75-1.25)")
    full = memory_plan("1b", gpus=1, gpu_memory_gib=80)
    print(
        f"for scale, the paper's setting (bf16, micro-batch 10 x 2048, one GPU): {full.training[0].total_gib} GiB"
        f" per GPU, {full.training[0].logits_gib} GiB of it logits"
    )


if __name__ == "__main__":
    main()
