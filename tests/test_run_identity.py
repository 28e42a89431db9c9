"""Run identity: a resume never mixes settings; `--new-identity` keeps the earlier run and starts a new one.
Also: paid-for replies that could not be used are kept, and the real-scale plan parses with the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from facellm.cli import cli
from facellm.samples import SAMPLE_DIR
from facellm.testing.mock_openai import MockOpenAIServer, describing_responder

LABELS = SAMPLE_DIR / "labels.csv"


def _eval(bench: Path, out: Path, *extra: str):
    return CliRunner().invoke(
        cli,
        [
            "eval",
            "facexbench",
            "--bench-dir",
            str(bench),
            "--model",
            "specialist",
            "--out",
            str(out),
            "--only",
            "age",
            *extra,
        ],
    )


def test_eval_rerun_with_other_settings_is_refused_then_started_fresh(standin_bench, tmp_path):
    out = tmp_path / "run"
    assert _eval(standin_bench, out).exit_code == 0
    first = json.loads((out / "run.json").read_text())
    refused = _eval(standin_bench, out, "--setting", "cot")
    assert refused.exit_code == 2
    message = refused.output.strip().splitlines()[-1]
    assert "setting: 'zero-shot' -> 'cot'" in message and "max_new_tokens: 16 -> 512" in message
    assert "--new-identity" in message and "another --out" in message
    # Same settings: resumes (nothing re-asked, nothing refused).
    again = _eval(standin_bench, out)
    assert again.exit_code == 0 and "answered 4/4" in again.output
    started = _eval(standin_bench, out, "--setting", "cot", "--new-identity")
    assert started.exit_code == 0, started.output
    kept = list((out / "previous").iterdir())
    assert len(kept) == 1 and json.loads((kept[0] / "run.json").read_text()) == first
    assert (kept[0] / "predictions.jsonl").read_text().count("\n") == 4
    assert json.loads((out / "run.json").read_text())["setting"] == "cot"


def test_eval_identity_includes_the_benchmark_files(standin_bench, tmp_path):
    import shutil

    bench = tmp_path / "bench"
    shutil.copytree(standin_bench, bench)
    out = tmp_path / "run"
    assert _eval(bench, out).exit_code == 0
    question_file = next(bench.rglob("*age*.json"))
    data = json.loads(question_file.read_text())
    first = next(iter(data["questions"].values()))
    first["options"] = list(reversed(first["options"]))  # same file name, other content
    question_file.write_text(json.dumps(data))
    changed = _eval(bench, out)
    assert changed.exit_code == 2 and "benchmark:" in changed.output


def _build(out: Path, *extra: str):
    return CliRunner().invoke(
        cli,
        [
            "data",
            "build",
            "--images",
            str(SAMPLE_DIR),
            "--labels",
            str(LABELS),
            "--out",
            str(out),
            "--limit",
            "2",
            *extra,
        ],
    )


@pytest.mark.slow
def test_data_rerun_with_other_settings_is_refused_then_started_fresh(tmp_path):
    out = tmp_path / "data"
    assert _build(out).exit_code == 0
    refused = _build(out, "--mode", "per-image")
    assert refused.exit_code == 2 and "mode: 'per-aspect' -> 'per-image'" in refused.output
    assert _build(out, "--limit", "3").exit_code == 0  # more images, same settings: a resume, not a new identity
    started = _build(out, "--mode", "per-image", "--new-identity")
    assert started.exit_code == 0, started.output
    (kept,) = (out / "previous").iterdir()
    assert (kept / "qa.sqlite").is_file() and "kept in" in started.output


def test_unusable_per_image_replies_are_kept_with_their_cost(tmp_path):
    from facellm.backends.openai_client import ChatClient, EndpointConfig
    from facellm.backends.openai_compatible import OpenAIBackend
    from facellm.data.build import Prices, build_dataset
    from facellm.data.sources import load_source
    from facellm.data.stats import run_stats
    from facellm.data.store import QAStore
    from facellm.prompts import load_prompts

    def responder(messages):
        asked = json.dumps(messages)
        return "no JSON, sorry" if "JSON object" in asked else describing_responder(messages)

    records = load_source("fairface", SAMPLE_DIR, LABELS)[:2]
    spec = load_prompts()
    with MockOpenAIServer(responder=responder) as server, QAStore(tmp_path) as store:
        teacher = OpenAIBackend(ChatClient(EndpointConfig(server.base_url, "m")))
        summary = build_dataset(records, spec, teacher, store, mode="per-image", prices=Prices(1.0, 2.0))
        unusable = store.unusable()
        stats = run_stats(store)
    assert summary.fallbacks == 2 and summary.done == 16
    assert len(unusable) == 2 and all(u["text"] == "no JSON, sorry" and u["cost"] > 0 for u in unusable)
    assert stats["unusable_replies"]["count"] == 2
    assert stats["cost_usd"] == pytest.approx(summary.cost, abs=1e-4)  # what was paid, unusable replies included


def test_failed_rows_store_their_typed_cause(tmp_path):
    from facellm.backends.openai_client import ChatClient, EndpointConfig
    from facellm.backends.openai_compatible import OpenAIBackend
    from facellm.data.build import build_dataset
    from facellm.data.sources import load_source
    from facellm.data.store import QAStore
    from facellm.prompts import load_prompts

    records = load_source("fairface", SAMPLE_DIR, LABELS)[:1]
    with MockOpenAIServer(faults=[429] * 8, retry_after=0) as server, QAStore(tmp_path) as store:
        config = EndpointConfig(server.base_url, "m", max_retries=0, concurrency=1)
        summary = build_dataset(records, load_prompts(), OpenAIBackend(ChatClient(config)), store)
        causes = {r.cause for r in store.records()}
    assert summary.failures == {"rate limited (429)": 8} and causes == {"rate limited (429)"}


def test_the_real_scale_plan_parses_with_the_real_cli(tmp_path):
    from facellm.cli.pipeline import check_commands
    from facellm.errors import InputError
    from facellm.reproduce import plan

    steps = plan("1b", tmp_path, tmp_path, tmp_path / "out", "https://api.openai.com/v1", "gpt-4o", 2.5, 10.0)
    check_commands(steps.commands)  # fails the day a flag the plan relies on is renamed
    renamed = [[*steps.commands[0][:-2], "--in-flight", "32"]]  # as if --concurrency had been renamed
    with pytest.raises(InputError, match="does not parse"):
        check_commands(renamed)


def _spoil(checkpoint: Path) -> None:
    """Replace the checkpoint's weights with bytes no loader reads: from now on any load of it fails."""
    for weights in checkpoint.glob("*.safetensors"):
        weights.write_bytes(b"not weights")


def test_a_refused_eval_rerun_never_loads_the_model(tiny_checkpoint, standin_bench, tmp_path):
    import shutil

    model, out = shutil.copytree(tiny_checkpoint, tmp_path / "model"), tmp_path / "run"
    args = [
        "eval",
        "facexbench",
        "--bench-dir",
        str(standin_bench),
        "--model",
        str(model),
        "--out",
        str(out),
        "--only",
        "age",
    ]
    assert CliRunner().invoke(cli, args).exit_code == 0
    _spoil(model)
    refused = CliRunner().invoke(cli, [*args, "--setting", "cot"])
    assert refused.exit_code == 2
    assert "other settings" in refused.output and "cannot load" not in refused.output, refused.output
    # The same settings pass the check and only then meet the spoiled weights.
    loaded = CliRunner().invoke(cli, args)
    assert loaded.exit_code == 2 and "cannot load model" in loaded.output, loaded.output


def test_a_refused_data_rerun_never_loads_the_teacher(tiny_checkpoint, tmp_path):
    import shutil

    model, out = shutil.copytree(tiny_checkpoint, tmp_path / "model"), tmp_path / "data"
    teacher = ["--teacher", "hf", "--model", str(model), "--aspects", "pose"]
    first = _build(out, *teacher, "--max-new-tokens", "4")
    assert first.exit_code == 0, first.output
    _spoil(model)
    refused = _build(out, *teacher, "--max-new-tokens", "8")
    assert refused.exit_code == 2
    assert "max_new_tokens: 4 -> 8" in refused.output and "cannot load" not in refused.output, refused.output
