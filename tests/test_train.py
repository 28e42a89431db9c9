"""Fine-tuning on CPU with the tiny checkpoint and real sample faces: label mask, memorisation, resume, export,
configs."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from transformers import AutoProcessor, TrainerCallback

from facellm.cli import cli
from facellm.configs import SHIPPED
from facellm.errors import InputError
from facellm.finetune.collator import IGNORE, AssistantOnlyCollator
from facellm.finetune.config import load_config
from facellm.finetune.dataset import to_sample, training_dataset
from facellm.finetune.recipe import resolve_precision, train, training_arguments
from facellm.model import GenerationSettings, generate, load_model, question
from facellm.samples import SAMPLE_DIR

CONFIGS = SHIPPED / "train"


@pytest.fixture(scope="module")
def dataset_file(tmp_path_factory, faces):
    """Eight real faces, each with a short answer built from its labels."""
    rows = [
        {
            "image": f.path.name,
            "conversations": [
                {"from": "human", "value": "<image>\nDescribe this image."},
                {"from": "assistant", "value": f"A {f.gender.lower()} face, {f.race}, aged {f.age}."},
            ],
        }
        for f in faces[:8]
    ]
    path = tmp_path_factory.mktemp("data") / "train.json"
    path.write_text(json.dumps(rows))
    return path


def _config(tiny_checkpoint, dataset_file, out, *extra):
    base = [
        f"model={tiny_checkpoint}",
        f"dataset={dataset_file}",
        f"image_root={SAMPLE_DIR}",
        f"output_dir={out}",
        "learning_rate=1e-2",
        "lr_scheduler=cosine",
        "per_device_batch_size=4",
        "gradient_accumulation_steps=1",
        "gradient_checkpointing=false",
        "precision=fp32",
        "logging_steps=5",
        "save_steps=1000",
    ]
    return load_config(None, [*base, *extra])


def _unmasked(collator, processor, row):
    batch = collator([row])
    ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
    return processor.tokenizer.decode([t for t, label in zip(ids, labels) if label != IGNORE])


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (
            {
                "image": "val_119.jpg",
                "conversations": [
                    {"from": "human", "value": "<image>\nDescribe the face pose."},
                    {"from": "assistant", "value": "The head is frontal."},
                ],
            },
            "The head is frontal.<|im_end|>",
        ),
        (
            {
                "image": "val_13.jpg",
                "conversations": [
                    {"from": "system", "value": "Be brief."},
                    {"from": "human", "value": "<image>\nHow old?"},
                    {"from": "gpt", "value": "About forty."},
                    {"from": "human", "value": "And the lighting?"},
                    {"from": "gpt", "value": "Soft and even."},
                ],
            },
            "About forty.<|im_end|>Soft and even.<|im_end|>",
        ),
        (
            {
                "images": ["val_119.jpg", "val_13.jpg"],
                "conversations": [
                    {"from": "human", "value": "<image>\n<image>\nSame person?"},
                    {"from": "assistant", "value": "No, they are two different people."},
                ],
            },
            "No, they are two different people.<|im_end|>",
        ),
    ],
    ids=["single-turn", "multi-turn", "two-image"],
)
def test_label_mask_keeps_exactly_the_assistant_answers(tiny_checkpoint, record, expected):
    processor = AutoProcessor.from_pretrained(tiny_checkpoint)
    paths, messages = to_sample(record, SAMPLE_DIR)
    row = {"images": [str(p) for p in paths], "messages": json.dumps(messages)}
    assert _unmasked(AssistantOnlyCollator(processor, 4096), processor, row) == expected


def test_dataset_skips_bad_rows_and_drops_long_samples(tiny_checkpoint, tmp_path, faces):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    good = {
        "image": str(faces[0].path),
        "conversations": [{"from": "human", "value": "<image>\nHi"}, {"from": "assistant", "value": "Hello."}],
    }
    rows = [
        good,
        {**good, "image": "missing.jpg"},
        {**good, "image": "broken.jpg"},
        {"conversations": []},
        {
            **good,
            "conversations": [
                {"from": "human", "value": "<image>\n" + "long question " * 400},
                {"from": "assistant", "value": "ok"},
            ],
        },
    ]
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    processor = AutoProcessor.from_pretrained(tiny_checkpoint)
    dataset, report = training_dataset(path, processor, tmp_path, cutoff_len=512)
    assert len(dataset) == report.kept == 1
    assert report.skipped == {
        "missing image": 1,
        "unreadable image": 1,
        "malformed row": 1,
        "longer than cutoff_len=512": 1,
    }


@pytest.mark.slow
def test_training_memorises_eight_faces(tiny_checkpoint, dataset_file, tmp_path, faces):
    config = _config(tiny_checkpoint, dataset_file, tmp_path / "run", "max_steps=60")
    summary = train(config)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    losses = [entry["loss"] for entry in log if "loss" in entry]
    assert losses[-1] <= 0.2 * losses[0], losses
    assert all("tokens_per_second" in entry for entry in log if "loss" in entry)
    assert summary["global_step"] == 60 and summary["samples"]["kept"] == 8
    assert (tmp_path / "run" / "loss.png").stat().st_size > 5000
    assert (tmp_path / "run" / "adapter" / "adapter_config.json").is_file()

    lm = load_model(tiny_checkpoint, adapter=tmp_path / "run" / "adapter", device="cpu")
    from facellm.images import read_image

    answer = generate(lm, [question([read_image(faces[0].path)], "Describe this image.")], GenerationSettings(24))[0]
    expected = f"A {faces[0].gender.lower()} face, {faces[0].race}"
    assert answer.startswith(expected), answer


class StopAt(TrainerCallback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_save = True
            control.should_training_stop = True
        return control


@pytest.mark.slow
def test_resume_continues_with_the_same_optimizer_state(tiny_checkpoint, dataset_file, tmp_path):
    straight = tmp_path / "straight"
    train(_config(tiny_checkpoint, dataset_file, straight, "max_steps=8", "save_steps=4"))
    interrupted = tmp_path / "interrupted"
    config = _config(tiny_checkpoint, dataset_file, interrupted, "max_steps=8", "save_steps=4")
    train(config, callbacks=[StopAt(4)])
    assert (interrupted / "checkpoint-4").is_dir() and not (interrupted / "checkpoint-8").exists()
    saved = torch.load(interrupted / "checkpoint-4" / "optimizer.pt", weights_only=False)
    assert saved["state"], "the checkpoint holds AdamW moments"
    summary = train(config, resume=True)
    assert summary["global_step"] == 8
    from safetensors.torch import load_file

    a = load_file(straight / "adapter" / "adapter_model.safetensors")
    b = load_file(interrupted / "adapter" / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)
    with pytest.raises(InputError, match="no checkpoint to resume"):
        train(_config(tiny_checkpoint, dataset_file, tmp_path / "fresh", "max_steps=2"), resume=True)


@pytest.mark.slow
def test_merged_export_matches_base_plus_adapter(
    tiny_checkpoint, dataset_file, tmp_path, face_images, faces, standin_bench
):
    train(_config(tiny_checkpoint, dataset_file, tmp_path / "run", "max_steps=10"))
    adapter = str(tmp_path / "run" / "adapter")
    result = CliRunner().invoke(
        cli, ["export", "--base", str(tiny_checkpoint), "--adapter", adapter, "--out", str(tmp_path / "merged")]
    )
    assert result.exit_code == 0, result.output
    adapted = load_model(tiny_checkpoint, adapter=tmp_path / "run" / "adapter", device="cpu")
    merged = load_model(tmp_path / "merged", device="cpu")
    assert type(merged.model).__name__ == "InternVLForConditionalGeneration"
    # The export's processor config says it tiles (what vLLM reads to size its image budget), as the adapter's does.
    for folder in (tmp_path / "merged", tmp_path / "run" / "adapter"):
        assert json.loads((folder / "processor_config.json").read_text())["image_processor"]["crop_to_patches"] is True
    from facellm.model.generate import prepare_inputs

    inputs = prepare_inputs(adapted, [question([face_images[0]], "Describe this image.")])
    with torch.inference_mode():
        # Merging adds BA to W before the matmul instead of after it: float32 rounding of logits that reach ~1e2.
        torch.testing.assert_close(merged.model(**inputs).logits, adapted.model(**inputs).logits, rtol=1e-5, atol=5e-4)
    asked = CliRunner().invoke(
        cli,
        [
            "ask",
            str(faces[0].path),
            "-q",
            "Describe this image.",
            "-m",
            str(tmp_path / "merged"),
            "--max-new-tokens",
            "6",
        ],
    )
    assert asked.exit_code == 0 and asked.stdout.strip()
    again = CliRunner().invoke(
        cli,
        [
            "export",
            "--base",
            str(tiny_checkpoint),
            "--adapter",
            str(tmp_path / "run" / "adapter"),
            "--out",
            str(tmp_path / "merged"),
        ],
    )
    assert again.exit_code == 2 and "not empty" in again.output
    # eval facexbench takes the base + adapter or the merged folder alike, and its report says which it was.
    for name, model_args in (
        ("adapter", ["--model", str(tiny_checkpoint), "--adapter", adapter]),
        ("merged", ["--model", str(tmp_path / "merged")]),
    ):
        run = tmp_path / f"eval-{name}"
        command = [
            "eval",
            "facexbench",
            "--bench-dir",
            str(standin_bench),
            "--out",
            str(run),
            "--only",
            "age",
            "--limit",
            "2",
            "--device",
            "cpu",
            *model_args,
        ]
        evaluated = CliRunner().invoke(cli, command)
        assert evaluated.exit_code == 0, evaluated.output
        report = (run / "report.md").read_text()
        assert (f"+ adapter {adapter}" if name == "adapter" else f"(merged from {tiny_checkpoint} + adapter") in report


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_every_shipped_config_builds_trainer_arguments(name):
    config = load_config(CONFIGS / name)
    args = training_arguments(config, "fp32")
    assert args.per_device_train_batch_size == config.per_device_batch_size
    assert args.learning_rate == config.learning_rate
    lines = (CONFIGS / name).read_text().splitlines()
    header = lines[: next(i for i, line in enumerate(lines) if not line.startswith("#"))]
    assert any("facellm train --config configs/train/" + name in line for line in header)
    assert any("Sized for" in line for line in header)


def test_paper_recipe_values():
    one = load_config(CONFIGS / "facellm-1b.yaml")
    big = load_config(CONFIGS / "facellm-38b.yaml")
    assert (one.lora_r, one.lora_alpha, one.lora_dropout, one.learning_rate, one.cutoff_len) == (16, 32, 0, 1e-5, 2048)
    assert (one.per_device_batch_size, one.gradient_accumulation_steps) == (10, 8)
    assert (big.per_device_batch_size, big.gradient_accumulation_steps) == (2, 6)
    assert one.lr_scheduler == "cosine" and one.warmup_steps == 0 and one.epochs == 1 and one.max_grad_norm == 1.0


def test_config_errors(tmp_path):
    with pytest.raises(InputError, match="unknown config key\\(s\\): learning_rat"):
        load_config(None, ["learning_rat=1e-4"])
    with pytest.raises(InputError, match="bad value for config key 'lora_r'"):
        load_config(None, ["lora_r=0"])
    with pytest.raises(InputError, match="--set expects key=value"):
        load_config(None, ["oops"])
    result = CliRunner().invoke(cli, ["train", "--config", str(CONFIGS / "facellm-1b.yaml"), "--set", "colour=red"])
    assert result.exit_code == 2 and "unknown config key(s): colour" in result.output
    missing_data = CliRunner().invoke(cli, ["train", "--set", f"model={tmp_path / 'nope'}", "--set", "dataset=x"])
    assert missing_data.exit_code == 2 and "dataset not found: x" in missing_data.output  # checked before any load
    (tmp_path / "data.json").write_text("[]")
    missing_model = CliRunner().invoke(
        cli, ["train", "--set", f"model={tmp_path / 'nope'}", "--set", f"dataset={tmp_path / 'data.json'}"]
    )
    assert missing_model.exit_code == 2 and "cannot load processor" in missing_model.output


def test_bf16_on_cpu_falls_back_with_a_warning():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.warns(UserWarning, match="fp32 on the CPU"):
        assert resolve_precision("bf16") == "fp32"


@pytest.mark.slow
def test_released_fairfacegpt_layout_trains_through_the_cli(tiny_checkpoint, tmp_path, faces):
    """FaceLLM's dataset.json layout: ShareGPT `conversations` (human/assistant) and an `image` path relative to
    FairFace's fairface_img_margin025/, with or without `<image>` in the human turn; a row whose image is missing is
    skipped and counted; a row with more placeholders than images is an error naming it."""
    import shutil

    root = tmp_path / "fairface_img_margin025"
    (root / "val").mkdir(parents=True)
    rows = []
    for number, face in enumerate(faces[:4], 1):
        shutil.copy(face.path, root / "val" / f"{number}.jpg")
        question = ("<image>\n" if number % 2 else "") + "Describe the face pose of the image."
        answer = {"from": "assistant", "value": f"A {face.gender.lower()} face."}
        rows.append({"image": f"val/{number}.jpg", "conversations": [{"from": "human", "value": question}, answer]})
    rows.append({**rows[0], "image": "val/404.jpg"})
    dataset = tmp_path / "dataset.json"
    dataset.write_text(json.dumps(rows))
    out = tmp_path / "run"
    settings = [
        f"model={tiny_checkpoint}",
        f"dataset={dataset}",
        f"image_root={root}",
        f"output_dir={out}",
        "precision=fp32",
        "max_steps=2",
        "per_device_batch_size=2",
        "gradient_checkpointing=false",
        "save_steps=1000",
        "logging_steps=1",
    ]
    result = CliRunner().invoke(cli, ["train", *[a for s in settings for a in ("--set", s)]])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["samples"] == {"rows": 5, "kept": 4, "skipped": {"missing image": 1}}

    rows.append(
        {
            "image": "val/1.jpg",
            "conversations": [
                {"from": "human", "value": "<image>\n<image>\nSame?"},
                {"from": "assistant", "value": "Yes."},
            ],
        }
    )
    dataset.write_text(json.dumps(rows))
    broken = CliRunner().invoke(cli, ["train", *[a for s in settings for a in ("--set", s)]])
    assert broken.exit_code == 2
    assert f"row 5 of {dataset} has 2 <image> placeholder(s) for 1 image(s)" in broken.output
