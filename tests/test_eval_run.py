"""End-to-end FaceXBench runs with the tiny checkpoint and the mock API endpoint: complete and resumable."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from facellm.backends.base import Backend
from facellm.backends.local import LocalBackend
from facellm.backends.openai_client import ChatClient, EndpointConfig
from facellm.backends.openai_compatible import OpenAIBackend
from facellm.cli import cli
from facellm.errors import InputError
from facellm.eval.facexbench import load_benchmark
from facellm.eval.report import load_predictions
from facellm.eval.run import load_done, run_questions
from facellm.testing.mock_openai import MockOpenAIServer


class CountingAnswerer(Backend):
    """Wraps a backend, counts the questions it is asked, and can stop the run after some chunks."""

    def __init__(self, inner, crash_after_chunks: int | None = None):
        self.inner = inner
        self.name = inner.name
        self.chunk_size = 4
        self.asked = 0
        self.chunks = 0
        self.crash_after_chunks = crash_after_chunks

    def answer(self, prompts, settings):
        if self.crash_after_chunks is not None and self.chunks == self.crash_after_chunks:
            raise KeyboardInterrupt  # like a user pressing Ctrl-C or the machine going away
        self.chunks += 1
        self.asked += len(prompts)
        return self.inner.answer(prompts, settings)


def _results(out):
    rows = load_predictions(out / "results")
    return {(r["file"], r["qid"]): r["prediction"] for r in rows}


@pytest.mark.slow
def test_local_run_is_complete_and_resumes(tiny_lm, standin_bench, tmp_path):
    questions = load_benchmark(standin_bench)
    out = tmp_path / "run"
    crashing = CountingAnswerer(LocalBackend(tiny_lm, "tiny", batch_size=4), crash_after_chunks=2)
    with pytest.raises(KeyboardInterrupt):
        run_questions(questions, crashing, out, max_new_tokens=4)
    assert len(load_done(out)) == 8  # two chunks of four were saved before the crash

    resumed = CountingAnswerer(LocalBackend(tiny_lm, "tiny", batch_size=4))
    summary = run_questions(questions, resumed, out, max_new_tokens=4)
    assert resumed.asked == len(questions) - 8  # nothing answered twice
    assert summary["answered_total"] == len(questions)
    results = _results(out)
    assert len(results) == len(questions) and all(p is not None for p in results.values())

    again = CountingAnswerer(LocalBackend(tiny_lm, "tiny", batch_size=4))
    run_questions(questions, again, out, max_new_tokens=4)
    assert again.asked == 0


@pytest.mark.slow
def test_likelihood_scoring_answers_with_letters(tiny_lm, standin_bench, tmp_path):
    questions = load_benchmark(standin_bench)
    answerer = LocalBackend(tiny_lm, "tiny", batch_size=4, scoring="likelihood")
    run_questions(questions, answerer, tmp_path / "run")
    predictions = load_done(tmp_path / "run")
    by_key = {q.key: q for q in questions}
    assert all(predictions[key] in by_key[key].letters for key in by_key)
    assert len(set(predictions.values())) > 1


@pytest.mark.slow
def test_bad_image_fails_only_its_question(tiny_lm, standin_bench, tmp_path):
    questions = load_benchmark(standin_bench)
    broken = questions[0].image_paths[0]
    original = broken.read_bytes()
    try:
        broken.write_bytes(b"not an image")
        summary = run_questions(questions, LocalBackend(tiny_lm, "tiny"), tmp_path / "run", max_new_tokens=2)
    finally:
        broken.write_bytes(original)
    assert summary["failed_now"] == 1 and summary["answered_total"] == len(questions) - 1
    log = [json.loads(line) for line in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
    assert any("not an image file" in record.get("error", "") for record in log)
    # The rerun retries the failed question now that its image is readable again.
    summary = run_questions(questions, LocalBackend(tiny_lm, "tiny"), tmp_path / "run", max_new_tokens=2)
    assert summary["answered_now"] == 1 and summary["answered_total"] == len(questions)


def test_api_run_with_faults_completes_and_resumes(standin_bench, tmp_path):
    questions = load_benchmark(standin_bench)
    with MockOpenAIServer(latency_s=0.01, faults=[500] * 12) as server:
        config = EndpointConfig(server.base_url, "mock-vlm", concurrency=4, max_retries=1, backoff_s=0.01)
        first = run_questions(questions, OpenAIBackend(ChatClient(config)), tmp_path / "run")
        assert first["failed_now"] > 0  # some questions ran out of retries while the faults lasted
        second = run_questions(questions, OpenAIBackend(ChatClient(config)), tmp_path / "run")
    assert second["answered_now"] == first["failed_now"]
    assert second["answered_total"] == len(questions)
    assert all(p.startswith("The answer is") for p in _results(tmp_path / "run").values())


def test_run_folder_refuses_another_run(tiny_lm, standin_bench, tmp_path):
    questions = load_benchmark(standin_bench)[:2]
    run_questions(questions, LocalBackend(tiny_lm, "tiny"), tmp_path / "run", max_new_tokens=2)
    with pytest.raises(InputError, match=r"holds a run with other settings \(setting: 'zero-shot' -> 'cot'\)"):
        run_questions(questions, LocalBackend(tiny_lm, "tiny"), tmp_path / "run", "cot", max_new_tokens=2)


@pytest.mark.slow
def test_cli_local_and_api_runs(tiny_checkpoint, standin_bench, tmp_path):
    runner = CliRunner()
    local = runner.invoke(
        cli,
        [
            "eval",
            "facexbench",
            "--bench-dir",
            str(standin_bench),
            "--model",
            str(tiny_checkpoint),
            "--out",
            str(tmp_path / "local"),
            "--max-new-tokens",
            "4",
            "--only",
            "age,hr_fr",
        ],
    )
    assert local.exit_code == 0, local.output
    assert "answered 7/7 questions" in local.output
    for name in ("results.txt", "report.md", "report.json", "report.png", "run.json"):
        assert (tmp_path / "local" / name).is_file()

    with MockOpenAIServer() as server:
        api = runner.invoke(
            cli,
            [
                "eval",
                "facexbench",
                "--bench-dir",
                str(standin_bench),
                "--api-base",
                server.base_url,
                "--api-model",
                "mock-vlm",
                "--out",
                str(tmp_path / "api"),
                "--setting",
                "cot",
            ],
        )
    assert api.exit_code == 0, api.output
    assert "Answer: X" in server.requests[0]["messages"][0]["content"][-1]["text"]
    report = runner.invoke(cli, ["eval", "report", str(tmp_path / "api"), "--extractor", "strict"])
    assert report.exit_code == 0 and "extractor: strict" in report.output and "openai:mock-vlm" in report.output


def test_cli_eval_bad_input(standin_bench, tmp_path):
    runner = CliRunner()
    neither = runner.invoke(cli, ["eval", "facexbench", "--bench-dir", str(standin_bench), "--out", str(tmp_path)])
    assert neither.exit_code == 2 and "either --model" in neither.output
    missing = runner.invoke(
        cli, ["eval", "facexbench", "--bench-dir", str(tmp_path / "nope"), "--out", str(tmp_path), "-m", "x"]
    )
    assert missing.exit_code == 2 and "benchmark folder not found" in missing.output


@pytest.mark.slow
def test_the_same_model_behind_an_api_gives_the_local_predictions(tiny_lm, standin_bench, tmp_path):
    """`eval --api-base` must score the model `eval --model` scores: our own server runs the same tiny model, so every
    prediction must match, image questions included (a JPEG re-encoding on the way changed them)."""
    from facellm.serve.app import create_app
    from facellm.serve.engine import Engine
    from facellm.testing.server import BackgroundServer

    questions = load_benchmark(standin_bench)
    run_questions(questions, LocalBackend(tiny_lm), tmp_path / "local")
    with BackgroundServer(create_app(Engine(LocalBackend(tiny_lm), max_batch=1))) as server:
        config = EndpointConfig(server.url + "/v1", "tiny", concurrency=1, max_retries=0)
        run_questions(questions, OpenAIBackend(ChatClient(config)), tmp_path / "api")
    local, api = load_done(tmp_path / "local"), load_done(tmp_path / "api")
    assert len(local) == len(questions) and sum(len(q.images) > 0 for q in questions) >= 10
    assert api == local
