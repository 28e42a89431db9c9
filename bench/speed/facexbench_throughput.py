"""FaceXBench questions per second: our batched runner vs the official one-question-at-a-time style.

Same model (the offline tiny InternVL checkpoint), same questions (the first N questions of the benchmark's real
files, spread over every file, with stand-in images), same machine, measured one after the other in this process.

  baseline-2048  one question per generate call, max_new_tokens 2048 (FaceLLM's VLMEvalKit wrapper setting)
  baseline-16    one question per generate call, max_new_tokens 16 (equal length to ours)
  ours-generate  `run_questions` with LocalBackend: batched, max_new_tokens 16, resumable log and results written
  ours-likelihood  `run_questions` scoring option letters by likelihood: one forward pass per batch

A random tiny model only sometimes emits its end token, so baseline-2048 generates far longer than a real model
answering "B" would. A real model stops after a few tokens either way, so the ratio it sees is close to the
equal-length one (ours-generate vs baseline-16); both are printed.

Run: python -m bench.speed.facexbench_throughput [--questions 200] [--batch-size 16] [--only-ours]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.paths import ROOT, SHARED
from facellm.backends.local import LocalBackend  # noqa: E402
from facellm.eval.facexbench import build_prompt, load_benchmark  # noqa: E402
from facellm.eval.run import run_questions  # noqa: E402
from facellm.images import read_image  # noqa: E402
from facellm.model import GenerationSettings, generate, load_model, question  # noqa: E402
from facellm.model.tiny import make_tiny_checkpoint  # noqa: E402
from facellm.testing.facexbench import make_standin_benchmark  # noqa: E402

SHARED_BENCH = SHARED / "facexbench" / "benchmark"
ASSET_BENCH = ROOT / "tests" / "assets" / "facexbench"


def one_at_a_time(lm, questions, max_new_tokens: int) -> float:
    """The official runner's loop: read, prompt and generate for each question alone; returns seconds."""
    settings = GenerationSettings(max_new_tokens=max_new_tokens)
    start = time.perf_counter()
    for q in questions:
        images = [read_image(p) for p in q.image_paths]
        generate(lm, [question(images, build_prompt(q))], settings)
    return time.perf_counter() - start


def ours(lm, questions, batch_size: int, scoring: str, work: Path) -> float:
    answerer = LocalBackend(lm, "tiny", batch_size=batch_size, scoring=scoring)
    start = time.perf_counter()
    run_questions(questions, answerer, work / f"run-{scoring}", max_new_tokens=16)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--only-ours", action="store_true", help="Time our runner alone (no baselines).")
    args = parser.parse_args()

    source = SHARED_BENCH if SHARED_BENCH.is_dir() else ASSET_BENCH
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        per_file = max(1, -(-args.questions // len(list(source.glob("*.json")))))
        bench = make_standin_benchmark(source, work / "bench", limit=per_file)
        questions = load_benchmark(bench)[: args.questions]
        lm = load_model(make_tiny_checkpoint(work / "tiny"), device="cpu")
        n = len(questions)
        print(f"{n} questions from {source}, tiny InternVL checkpoint on CPU, torch threads: {_threads()}")

        timings = (
            {}
            if args.only_ours
            else {
                "baseline-2048": one_at_a_time(lm, questions, 2048),
                "baseline-16": one_at_a_time(lm, questions, 16),
            }
        )
        timings["ours-generate"] = ours(lm, questions, args.batch_size, "generate", work)
        timings["ours-likelihood"] = ours(lm, questions, args.batch_size, "likelihood", work)
    rates = {name: n / seconds for name, seconds in timings.items()}
    for name, seconds in timings.items():
        print(f"{name:16s} {seconds:8.2f} s  {rates[name]:8.2f} questions/s")
    if args.only_ours:
        return
    print(f"ours-generate   vs baseline-2048: {rates['ours-generate'] / rates['baseline-2048']:6.1f}x")
    print(f"ours-generate   vs baseline-16:   {rates['ours-generate'] / rates['baseline-16']:6.1f}x (equal length)")
    print(f"ours-likelihood vs baseline-2048: {rates['ours-likelihood'] / rates['baseline-2048']:6.1f}x")
    print(f"ours-likelihood vs baseline-16:   {rates['ours-likelihood'] / rates['baseline-16']:6.1f}x")


def _threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    main()
