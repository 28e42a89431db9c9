"""GPU check at the real InternVL3-1B shape (random weights, bf16), without internet or weights: LoRA training at the
paper's micro-batch 10 and cutoff 2048 (tokens/s, MFU, peak memory against `facellm plan`), FaceXBench-style
batched generation against one question at a time, and likelihood scoring of option letters.

MFU = achieved FLOP/s / the GPU's peak dense bf16 FLOP/s, achieved = tokens/s x (6 x language-model parameters)
+ image tokens/s x (2 x vision parameters) (forward and backward of the LoRA-trained language model; forward only
of the frozen vision tower). Peak: `--peak-tflops` (default 989, the H100/H200 SXM dense bf16 figure).

Run on the GPU machine: bash bench/gpu/gpu_check.sh   (about 5 minutes on one H100/H200)
Smoke-test the script anywhere: python -m bench.gpu.gpu_check --smoke   (the tiny checkpoint on CPU, seconds)
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from facellm.model import GenerationSettings, choose_option, generate, load_model, question  # noqa: E402
from facellm.plan import memory_plan, shape_counts  # noqa: E402


def synchronise() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def training(lm, counts, micro_batch: int, seq_len: int, steps: int, peak_tflops: float, results: dict) -> None:
    """LoRA r16 on every language-model linear layer, gradient checkpointing, AdamW, on synthetic full-length
    samples: one 448 px tile (256 image tokens) at the start of each sequence, text tokens after it."""
    from peft import LoraConfig, get_peft_model

    model = lm.model
    targets = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and "language_model" in n]
    model.gradient_checkpointing_enable()
    model.enable_input_require_grads()
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=targets))
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    image_token = lm.model.config.image_token_id
    tile = lm.processor.image_processor.size["height"]
    image_tokens = lm.model.config.image_seq_length
    vocab = len(lm.tokenizer)
    ids = torch.randint(0, vocab, (micro_batch, seq_len), device=lm.device)
    ids[ids == image_token] = lm.tokenizer.encode("face", add_special_tokens=False)[0]  # placeholders only below
    ids[:, 1 : 1 + image_tokens] = image_token
    pixels = torch.randn(micro_batch, 3, tile, tile, device=lm.device, dtype=lm.dtype)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "pixel_values": pixels, "labels": ids.clone()}
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    times = []
    for step in range(steps + 2):  # two warm-up steps
        synchronise()
        started = time.perf_counter()
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        synchronise()
        if step >= 2:
            times.append(time.perf_counter() - started)
    seconds = sum(times) / len(times)
    tokens_per_s = micro_batch * seq_len / seconds
    flops = tokens_per_s * 6 * counts.language + micro_batch * image_tokens / seconds * 2 * counts.vision
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else float("nan")
    planned = memory_plan("1b", 1, 80, micro_batch, seq_len).training[0]
    results["training"] = {
        "micro_batch": micro_batch,
        "seq_len": seq_len,
        "seconds_per_step": round(seconds, 3),
        "tokens_per_second": round(tokens_per_s),
        "achieved_tflops": round(flops / 1e12, 1),
        "mfu_percent": round(100 * flops / (peak_tflops * 1e12), 1),
        "peak_memory_gib": round(peak, 2),
        "planned_gib": planned.total_gib,
        "planned_terms": {
            "weights": planned.weights_gib,
            "lora": planned.lora_state_gib,
            "activations": planned.activations_gib,
            "logits": planned.logits_gib,
        },
    }
    print("training:", json.dumps(results["training"]), flush=True)


def generation(lm, questions: int, max_new_tokens: int, results: dict) -> None:
    """Sixteen FaceXBench-style questions (four 224 px faces each): one batched call vs one question at a time,
    greedy, same answers expected; then option-letter likelihood scoring of the same questions."""
    faces = [Image.new("RGB", (224, 224), (40 * i, 90, 200 - 40 * i)) for i in range(4)]
    text = "Which image shows the oldest person?\n(A) Image 1\n(B) Image 2\n(C) Image 3\n(D) Image 4\nAnswer:"
    items = [question(faces, f"Question {i}. {text}") for i in range(questions)]
    settings = GenerationSettings(max_new_tokens=max_new_tokens)
    generate(lm, items[:2], settings, batch_size=2)  # warm-up
    synchronise()
    started = time.perf_counter()
    batched = generate(lm, items, settings, batch_size=questions)
    synchronise()
    batched_s = time.perf_counter() - started
    started = time.perf_counter()
    single = [generate(lm, [item], settings, batch_size=1)[0] for item in items]
    synchronise()
    single_s = time.perf_counter() - started
    started = time.perf_counter()
    letters = choose_option(lm, items, [["A", "B", "C", "D"]] * questions, batch_size=questions)
    synchronise()
    scoring_s = time.perf_counter() - started
    results["generation"] = {
        "questions": questions,
        "max_new_tokens": max_new_tokens,
        "batched_seconds": round(batched_s, 3),
        "one_at_a_time_seconds": round(single_s, 3),
        "speedup": round(single_s / batched_s, 2),
        "same_answers": sum(a == b for a, b in zip(batched, single)),
        "likelihood_seconds": round(scoring_s, 3),
        "likelihood_letters": "".join(letters),
    }
    print("generation:", json.dumps(results["generation"]), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--smoke", action="store_true", help="The tiny checkpoint on CPU, tiny sizes (checks the script)."
    )
    parser.add_argument("--micro-batch", type=int, default=10)
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    parser.add_argument("--out", type=Path, help="Also write the results here as JSON.")
    args = parser.parse_args()
    results: dict = {"device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"}
    print("device:", results["device"], "| torch", torch.__version__, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        if args.smoke:
            from facellm.model.tiny import make_tiny_checkpoint

            folder = make_tiny_checkpoint(Path(tmp) / "tiny")
            micro_batch, seq_len, steps, questions, tokens = 2, 128, 1, 4, 4
        else:
            from facellm.model.random_shape import make_shape_checkpoint

            started = time.perf_counter()
            folder, _ = make_shape_checkpoint("internvl3-1b", Path(tmp) / "shape")
            print(f"built the InternVL3-1B shape in {time.perf_counter() - started:.0f} s", flush=True)
            micro_batch, seq_len, steps, questions, tokens = args.micro_batch, args.seq_len, args.steps, 16, 16
        device = "cuda" if torch.cuda.is_available() else "cpu"
        lm = load_model(folder, device=device, dtype="bfloat16" if device == "cuda" else "float32")
        generation(lm, questions, tokens, results)
        training(lm, shape_counts("1b"), micro_batch, seq_len, steps, args.peak_tflops, results)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
