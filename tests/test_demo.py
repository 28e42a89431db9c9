"""The main job end to end (`facellm demo`) and the real-scale plan (`facellm reproduce --dry-run`)."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from facellm.cli import cli
from facellm.demo import STAGES
from facellm.samples import SAMPLE_DIR


@pytest.mark.slow
@pytest.mark.integration
def test_demo_runs_every_stage_offline_and_resumes(tmp_path):
    out = tmp_path / "demo"
    first = CliRunner().invoke(cli, ["demo", "--out", str(out), "--images", "8"])
    assert first.exit_code == 0, first.output
    for stage in STAGES:
        assert (out / stage / ".done").is_file(), stage
    artifacts = [
        out / "analyze" / "analysis.json",
        out / "data" / "qa.sqlite",
        out / "export" / "train.json",
        out / "train" / "run" / "adapter" / "adapter_model.safetensors",
        out / "train" / "run" / "loss.png",
        out / "merge" / "model" / "model.safetensors",
        out / "eval" / "facexbench-run" / "results.txt",
        out / "eval" / "fairface-run" / "fairface_report.json",
        out / "report" / "report.md",
        out / "report" / "loss_curve.png",
        out / "report" / "dataset_balance.png",
    ]
    for path in artifacts:
        assert path.is_file() and path.stat().st_size > 0, path
    train_faces = {p.name for p in (out / "faces" / "train").glob("*.jpg")}
    eval_faces = {p.name for p in (out / "faces" / "eval").glob("*.jpg")}
    assert len(train_faces) == 8 and len(eval_faces) == 4 and not train_faces & eval_faces
    exported = json.loads((out / "export" / "train.json").read_text())
    assert exported and all(item["image"] in train_faces for item in exported)
    report = (out / "report" / "report.md").read_text()
    assert "| **overall** |" in report and "FaceLLM-38B" in report and "loss_curve.png" in report
    assert "### Specialist on the same questions: specialist (face-analysis models, not an LLM)" in report
    assert "demo finished" in first.output

    stamp = (out / "train" / ".done").stat().st_mtime
    second = CliRunner().invoke(cli, ["demo", "--out", str(out), "--images", "8"])
    assert second.exit_code == 0
    assert second.output.count("done in an earlier run, skipped") == len(STAGES)
    assert (out / "train" / ".done").stat().st_mtime == stamp


def test_demo_bad_input(tmp_path):
    too_many = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path), "--images", "20"])
    assert too_many.exit_code == 2 and "exceed the 12 faces" in too_many.output
    half_teacher = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path), "--base-url", "http://x/v1"])
    assert half_teacher.exit_code == 2 and "--base-url and --api-model" in half_teacher.output


def test_reproduce_dry_run_counts_requests(tmp_path, monkeypatch):
    fairface = tmp_path / "fairface"
    (fairface / "fairface_img_margin025").mkdir(parents=True)
    shutil.copy(SAMPLE_DIR / "labels.csv", fairface / "fairface_label_val.csv")
    for image in SAMPLE_DIR.glob("*.jpg"):
        shutil.copy(image, fairface / "fairface_img_margin025" / image.name)
    monkeypatch.delenv("FACELLM_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    result = CliRunner().invoke(
        cli,
        ["reproduce", "--size", "1b", "--fairface", str(fairface), "--bench-dir", str(tmp_path / "nope"), "--dry-run"],
    )
    assert result.exit_code == 0, result.output
    assert "teacher requests: 96 (images x aspects)" in result.output  # 12 images x 8 aspects
    assert "facellm train --config configs/train/facellm-1b.yaml" in result.output
    assert "missing: no API key" in result.output and "FaceXBench benchmark folder not found" in result.output
    # The GPU requirement is the printed memory plan's own figure (its smallest per-GPU training total), not a
    # second table: 32.0 GiB (sharded over 8) where the plan prints 33.6 on one GPU.
    assert "needs about 32.0 GiB per GPU (the memory plan printed with this plan)" in result.output
    assert "fsdp   x8:    32.0 GiB per GPU" in result.output
    real = CliRunner().invoke(
        cli, ["reproduce", "--size", "1b", "--fairface", str(fairface), "--bench-dir", str(tmp_path / "nope")]
    )
    assert real.exit_code == 2 and "prerequisite(s) missing" in real.output


def test_a_demo_folder_resumes_only_its_own_settings(tmp_path):
    from facellm.demo import DemoSettings, run_demo
    from facellm.errors import InputError

    (tmp_path / "settings.json").write_text('{"images": 8, "eval_images": 4}', encoding="utf-8")
    with pytest.raises(InputError, match=r"holds a demo run with other settings \(.*fairface"):
        run_demo(DemoSettings(tmp_path, images=8, eval_images=4, fairface=tmp_path / "elsewhere"))
    assert not (tmp_path / "faces").exists()  # refused before any stage
