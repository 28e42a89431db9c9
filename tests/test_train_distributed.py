"""`facellm train` in two processes (DDP over gloo on CPU, started by `accelerate launch`) against one process with
the same global batch, on the tiny checkpoint and real faces; then a resume from the two-process checkpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from facellm.samples import SAMPLE_DIR
from facellm.testing.server import free_port

# Same samples in every global step (random sampler, same seed), same initial weights, gradients averaged over the
# two processes and the loss normalised by the tokens of the whole global batch: the two runs differ only in the
# order floating-point sums are taken, about 1e-7 relative here. 1e-4 leaves room for other BLAS builds.
RELATIVE_TOLERANCE = 1e-4


def _settings(checkpoint, dataset, out, per_device: int, max_steps: int = 4) -> list[str]:
    values = [
        f"model={checkpoint}",
        f"dataset={dataset}",
        f"image_root={SAMPLE_DIR}",
        f"output_dir={out}",
        "learning_rate=1e-2",
        "gradient_checkpointing=false",
        "precision=fp32",
        "logging_steps=1",
        "save_steps=2",
        "group_by_length=false",
        f"max_steps={max_steps}",
        "gradient_accumulation_steps=1",
        f"per_device_batch_size={per_device}",
    ]
    return [arg for value in values for arg in ("--set", value)]


def _run(command: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _two_processes(*args: str) -> subprocess.CompletedProcess:
    launch = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(free_port()),
        "-m",
        "facellm",
        "train",
    ]
    return _run([*launch, *args])


def _losses(run: Path) -> list[tuple[int, float]]:
    entries = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return [(e["step"], e["loss"]) for e in entries if "loss" in e]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, faces):
    def row(face) -> dict:
        answer = f"A {face.gender.lower()} face, {face.race}, aged {face.age}."
        turns = [{"from": "human", "value": "<image>\nDescribe this image."}, {"from": "assistant", "value": answer}]
        return {"image": face.path.name, "conversations": turns}

    rows = [row(face) for face in faces[:8]]
    path = tmp_path_factory.mktemp("data") / "train.json"
    path.write_text(json.dumps(rows))
    return path


@pytest.mark.slow
def test_two_processes_match_one_with_the_same_global_batch_and_resume(tiny_checkpoint, dataset, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    _run([sys.executable, "-m", "facellm", "train", *_settings(tiny_checkpoint, dataset, one, per_device=4)])
    printed = _two_processes(*_settings(tiny_checkpoint, dataset, two, per_device=2)).stdout

    single, double = _losses(one), _losses(two)
    assert [step for step, _ in double] == [1, 2, 3, 4]  # one log line per step: only the first process writes
    for (_, a), (_, b) in zip(single, double):
        assert b == pytest.approx(a, rel=RELATIVE_TOLERANCE)
    assert single[-1][1] < single[0][1]  # and it trained
    summary_one = json.loads((one / "summary.json").read_text())
    summary_two = json.loads((two / "summary.json").read_text())
    assert summary_one["world_size"] == 1 and summary_two["world_size"] == 2
    # Each process read its own half of every global batch: together they saw the tokens one process saw, not twice.
    assert summary_two["tokens_seen"] == summary_one["tokens_seen"]
    assert (two / "adapter" / "adapter_config.json").is_file() and (two / "loss.png").is_file()
    assert printed.count("trained 4 steps") == 1 and "in 2 processes" in printed

    # Resume: drop the last checkpoint and the outputs, continue from step 2 in two processes, land on the same losses.
    import shutil

    shutil.rmtree(two / "checkpoint-4")
    shutil.rmtree(two / "adapter")
    (two / "log.jsonl").write_text("")
    _two_processes(*_settings(tiny_checkpoint, dataset, two, per_device=2), "--resume")
    resumed = _losses(two)
    assert [step for step, _ in resumed] == [3, 4]
    for (_, a), (_, b) in zip(double[2:], resumed):
        assert b == pytest.approx(a, rel=RELATIVE_TOLERANCE)
    assert (two / "adapter" / "adapter_config.json").is_file()
