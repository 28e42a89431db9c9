"""The released InternVL3 shapes without their weights: the processor's image tokens, parameter counts, the memory
plan and its CLI, config-only shape checkpoints, `python -m facellm`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner
from transformers import AutoConfig

from facellm.cli import cli
from facellm.conversation import question
from facellm.model.generate import to_messages
from facellm.model.random_shape import build_shape_processor
from facellm.plan import memory_plan, shape_config, shape_counts


def test_shape_processor_gives_256_tokens_per_face_and_a_tile_per_image(face_images):
    processor = build_shape_processor()
    context = processor.tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>")
    assert face_images[0].size == (224, 224)
    for count in (1, 4):
        conversation = question(face_images[:count], "Which image shows the oldest person?")
        text = processor.apply_chat_template(to_messages(conversation), add_generation_prompt=True, tokenize=False)
        encoded = processor(text=[text], images=[face_images[:count]], return_tensors="pt")
        assert encoded["input_ids"][0].tolist().count(context) == 256 * count
        assert tuple(encoded["pixel_values"].shape) == (count, 3, 448, 448)


@pytest.mark.slow
@pytest.mark.parametrize("size", ["1b", "8b", "38b"])
def test_plan_counts_are_the_meta_device_model_and_lora_matches_the_formula(size):
    import torch
    from transformers import InternVLForConditionalGeneration

    counts = shape_counts(size)
    with torch.device("meta"):
        model = InternVLForConditionalGeneration(shape_config(size))
    assert counts.total == sum(p.numel() for p in model.parameters())
    text = shape_config(size).text_config
    h, i, kv = text.hidden_size, text.intermediate_size, counts.kv
    per_layer = 16 * ((h + h) + 2 * (h + kv) + (h + h) + 2 * (h + i) + (i + h))  # q, k, v, o, gate, up, down
    assert counts.lora == per_layer * text.num_hidden_layers
    published = {"1b": 0.938, "8b": 7.944, "38b": 38.388}  # B parameters, InternVL3-{1,8,38}B-hf
    assert counts.total / 1e9 == pytest.approx(published[size], abs=0.001)


def test_plan_json_says_what_fits():
    result = CliRunner().invoke(cli, ["plan", "--size", "38b", "--gpus", "8", "--gpu-memory", "80", "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    fits = {row["strategy"]: row["fits"] for row in plan["training"]}
    assert fits == {"single": False, "ddp": False, "fsdp": True, "zero3": True}
    assert plan["parameters"]["total"] == shape_counts("38b").total
    for row in plan["training"]:  # the largest micro-batch that fits really fits, one more does not
        if row["largest_micro_batch"]:
            at = memory_plan("38b", row["gpus"], 80, row["largest_micro_batch"]).training
            above = memory_plan("38b", row["gpus"], 80, row["largest_micro_batch"] + 1).training
            strategy = STRATEGY_INDEX[row["strategy"]]
            assert at[strategy].fits and not above[strategy].fits
    small = memory_plan("1b", 1, 24, micro_batch=1, seq_len=700)
    assert small.training[0].fits and small.training[0].total_gib < memory_plan("1b", 1, 24).training[0].total_gib


STRATEGY_INDEX = {"single": 0, "ddp": 1, "fsdp": 2, "zero3": 3}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--size", "8b", "--gpu-memory", "0"], "--gpu-memory must be positive"),
        (["--size", "8b", "--gpu-memory", "-5"], "--gpu-memory must be positive"),
        (["--size", "8b", "--gpus", "0"], "--gpus must be at least 1"),
    ],
)
def test_plan_bad_input_is_one_line(args, message):
    result = CliRunner().invoke(cli, ["plan", *args])
    assert result.exit_code == 2 and result.output.strip().splitlines() == [result.output.strip()]
    assert message in result.output


def test_unknown_size_or_shape_exit_2():
    assert CliRunner().invoke(cli, ["plan", "--size", "13b"]).exit_code == 2
    assert CliRunner().invoke(cli, ["dev", "make-shape-model", "--shape", "internvl3-2b", "x"]).exit_code == 2


def test_config_only_shape_checkpoint_for_8b(tmp_path):
    result = CliRunner().invoke(cli, ["dev", "make-shape-model", "--shape", "internvl3-8b", str(tmp_path / "8b")])
    assert result.exit_code == 0 and "no weights" in result.output
    config = AutoConfig.from_pretrained(tmp_path / "8b")
    assert config.text_config.hidden_size == 3584 and config.text_config.num_hidden_layers == 28
    assert not list((tmp_path / "8b").glob("*.safetensors"))
    assert (tmp_path / "8b" / "processor_config.json").is_file() or (tmp_path / "8b" / "tokenizer.json").is_file()


@pytest.mark.slow
def test_python_dash_m_facellm():
    result = subprocess.run(
        [sys.executable, "-m", "facellm", "plan", "--size", "1b"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0 and "InternVL3-1B: 0.938 B parameters" in result.stdout
