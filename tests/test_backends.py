"""The one backend interface: error policy, typed failure causes, options as data, building from flags."""

from __future__ import annotations

import socket

import pytest

from facellm.backends import (
    NAMED,
    Backend,
    BackendSpec,
    Cause,
    Prompt,
    Reply,
    answer_safely,
    backend_name,
    build_backend,
    cause_of,
)
from facellm.backends.openai_client import ApiError, ChatClient, EndpointConfig
from facellm.backends.scripted import ScriptedBackend
from facellm.errors import InputError
from facellm.model import GenerationSettings, question
from facellm.testing.mock_openai import MockOpenAIServer

SETTINGS = GenerationSettings(max_new_tokens=4)


def _prompts(n: int) -> list[Prompt]:
    return [Prompt(question([], f"question {i}")) for i in range(n)]


def test_out_of_memory_batch_is_retried_in_halves_once_then_recorded():
    backend = ScriptedBackend(lambda p: "ok", fail_batches_over=2)  # batches of 3 or more run out of memory
    replies = answer_safely(backend, _prompts(8), SETTINGS)
    # 8 fails -> two halves of 4, each tried once and failing again: no further splitting, all 8 recorded failed.
    assert [len(b) for b in backend.batches] == [8, 4, 4]
    assert all(isinstance(r, MemoryError) and cause_of(r) is Cause.OUT_OF_MEMORY for r in replies)

    backend = ScriptedBackend(lambda p: "ok", fail_batches_over=3)
    replies = answer_safely(backend, _prompts(6), SETTINGS)
    assert [len(b) for b in backend.batches] == [6, 3, 3] and all(r.text == "ok" for r in replies)


def test_a_failing_batch_is_answered_one_by_one_so_one_bad_item_fails_alone():
    class OneBad(ScriptedBackend):
        def answer(self, prompts, settings):
            if any("question 2" in p.turns[-1].text for p in prompts) and len(prompts) > 1:
                raise RuntimeError("a model error somewhere in the batch")
            return super().answer(prompts, settings)

    def reply(prompt):
        return RuntimeError("this one is broken") if "question 2" in prompt.turns[-1].text else "fine"

    replies = answer_safely(OneBad(reply), _prompts(4), SETTINGS)
    assert [type(r).__name__ for r in replies] == ["Reply", "Reply", "RuntimeError", "Reply"]
    assert cause_of(replies[2]) is Cause.OTHER and str(replies[2]) == "this one is broken"


def test_keyboard_interrupt_is_not_swallowed():
    def stop(prompt):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        answer_safely(ScriptedBackend(stop), _prompts(2), SETTINGS)


@pytest.mark.parametrize(
    ("fault", "cause"),
    [
        (429, Cause.RATE_LIMITED),
        (500, Cause.SERVER_ERROR),
        ("garbage", Cause.GARBAGE),
        (401, Cause.CLIENT_ERROR),
        ("timeout", Cause.TIMEOUT),
    ],
)
@pytest.mark.slow
def test_api_failures_carry_a_typed_cause(fault, cause):
    # Only the timeout case needs a short client timeout; elsewhere a slow, loaded machine must not read as one.
    client_timeout = 0.5 if fault == "timeout" else 30.0
    with MockOpenAIServer(faults=[fault] * 3, retry_after=0, timeout_s=30.0) as server:
        config = EndpointConfig(server.base_url, "m", max_retries=0, timeout_s=client_timeout)
        (reply,) = ChatClient(config).complete_many([[{"role": "user", "content": "hi"}]])
    assert isinstance(reply, ApiError) and cause_of(reply) is cause


def test_an_empty_answer_is_the_models_answer():
    """A greedy model that stops at once answers "" locally; through an API it must too, not be retried into a
    failure (the data builder refuses empty teacher answers itself)."""
    with MockOpenAIServer(faults=["empty"], retry_after=0) as server:
        (reply,) = ChatClient(EndpointConfig(server.base_url, "m")).complete_many([[{"role": "user", "content": "hi"}]])
    assert reply.text == "" and reply.attempts == 1 and len(server.requests) == 1


def test_connection_refused_is_a_connection_failure():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    config = EndpointConfig(f"http://127.0.0.1:{port}/v1", "m", max_retries=0)
    (reply,) = ChatClient(config).complete_many([[{"role": "user", "content": "hi"}]])
    assert cause_of(reply) is Cause.CONNECTION


def test_causes_are_not_read_from_message_text():
    # A message that mentions "HTTP 500" and "timeout" is still just an unexplained failure.
    assert cause_of(RuntimeError("HTTP 500 timeout empty answer")) is Cause.OTHER
    assert cause_of(InputError("bad")) is Cause.BAD_INPUT


def test_likelihood_scoring_takes_the_options_as_data(tiny_lm, face_images):
    from facellm.backends.local import LocalBackend

    backend = LocalBackend(tiny_lm, scoring="likelihood")
    # No "(A) ..." lines anywhere in the text: the letters come from the options themselves.
    prompts = [Prompt(question(face_images[:1], "How old is this person?"), options=tuple(f"{i}0s" for i in range(6)))]
    (reply,) = backend.answer(prompts, SETTINGS)
    assert reply.text in "ABCDEF" and len(reply.text) == 1
    with pytest.raises(InputError, match="multiple-choice"):
        backend.answer([Prompt(question(face_images[:1], "How old?"))], SETTINGS)
    from facellm.backends.grounded import Grounded

    assert Grounded(backend).scoring == "likelihood"  # what a grounded run records in its identity


def test_specialist_takes_the_options_as_data(face_images):
    backend = build_backend(BackendSpec("specialist"))
    prompt = Prompt(question(face_images[:3], "How many faces are there?"), options=("1", "2", "3", "5"))
    (reply,) = backend.answer([prompt], SETTINGS)
    assert reply.text.startswith("C")


def test_every_named_backend_builds_and_unknown_flags_are_refused():
    for name in NAMED:
        backend = build_backend(BackendSpec(name))
        assert isinstance(backend, Backend) and backend.name
    with pytest.raises(InputError, match="either a model"):
        build_backend(BackendSpec())
    with pytest.raises(InputError, match="either a model"):
        build_backend(BackendSpec("specialist", api_base="http://127.0.0.1:1/v1"))
    with pytest.raises(InputError, match="likelihood needs a local"):
        build_backend(BackendSpec("specialist", scoring="likelihood"))
    grounded = build_backend(BackendSpec("offline", ground=True))
    assert grounded.name.endswith("+grounded")


def test_the_name_known_before_building_is_the_built_backends_name(tiny_checkpoint, tmp_path):
    """Run folders are checked against `backend_name(spec)` before anything loads: it must be the name the built
    backend reports, for every kind of backend, grounded or not."""
    import json
    import shutil

    from peft import LoraConfig, get_peft_model

    from facellm.model import load_model
    from facellm.model.loading import MERGE_RECORD

    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    get_peft_model(load_model(tiny_checkpoint, device="cpu").model, lora).save_pretrained(tmp_path / "adapter")
    merged = shutil.copytree(tiny_checkpoint, tmp_path / "merged")
    (merged / MERGE_RECORD).write_text(json.dumps({"base": "some/base", "adapter": "some/adapter"}))
    specs = [BackendSpec(name) for name in NAMED]
    specs += [
        BackendSpec(api_base="http://127.0.0.1:9/v1", api_model="m"),
        BackendSpec(str(tiny_checkpoint)),
        BackendSpec(str(tiny_checkpoint), adapter=tmp_path / "adapter"),
        BackendSpec(str(merged)),
    ]
    for spec in specs:
        for ground in (False, True):
            spec.ground = ground
            assert backend_name(spec) == build_backend(spec).name, spec
    assert "merged from some/base" in backend_name(BackendSpec(str(merged)))
    with pytest.raises(InputError, match="batch-size"):
        backend_name(BackendSpec(str(tiny_checkpoint), batch_size=0))


def test_template_backend_answers_from_facts_not_text():
    from facellm.prompts import load_prompts

    spec = load_prompts()
    backend = build_backend(BackendSpec("template", prompts=spec))
    facts = {"aspect": "pose", "known": {"gender": "Female", "age": "30-39", "race": "White"}, "measured": {}}
    (reply,) = backend.answer([Prompt(question([], "ignored text"), facts=facts)], SETTINGS)
    assert isinstance(reply, Reply) and "woman" in reply.text


class EchoBackend(Backend):
    """A backend added the documented way (this class plus one line in NAMED): answers with the option count."""

    name = "echo"

    def answer(self, prompts, settings):
        return [Reply(f"A ({len(p.options or ())} options, {len(p.images)} images)") for p in prompts]


@pytest.mark.slow
def test_a_new_backend_is_one_class_and_one_line(monkeypatch, standin_bench, faces, tmp_path):
    from click.testing import CliRunner

    from facellm.cli import cli

    monkeypatch.setitem(NAMED, "echo", f"{__name__}:EchoBackend")
    runner = CliRunner()
    run = runner.invoke(
        cli,
        [
            "eval",
            "facexbench",
            "--bench-dir",
            str(standin_bench),
            "--model",
            "echo",
            "--out",
            str(tmp_path / "run"),
            "--only",
            "age",
        ],
    )
    assert run.exit_code == 0, run.output
    predictions = (tmp_path / "run" / "predictions.jsonl").read_text()
    assert "options, 1 images" in predictions and '"prediction": "A (4 options' in predictions
    asked = runner.invoke(cli, ["ask", str(faces[0].path), "-q", "Hello?", "-m", "echo"])
    assert asked.exit_code == 0 and asked.output.strip() == "A (0 options, 1 images)"
