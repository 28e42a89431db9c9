"""Building the QA set against a real HTTP server on 127.0.0.1, on real FairFace faces: exactly-once, faults,
SIGKILL and resume, secrets, filters, exports, stats and Batch API files."""

from __future__ import annotations

import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from facellm.backends.local import LocalBackend
from facellm.backends.openai_client import ChatClient, EndpointConfig
from facellm.backends.openai_compatible import OpenAIBackend
from facellm.backends.template import TemplateBackend
from facellm.cli import cli
from facellm.data.batch import ingest_batch, prepare_batch
from facellm.data.build import build_dataset
from facellm.data.export import export_dataset
from facellm.data.filters import contradictions, flag_records
from facellm.data.sources import load_source
from facellm.data.store import QAStore
from facellm.prompts import load_prompts
from facellm.samples import SAMPLE_DIR
from facellm.testing.mock_openai import MockOpenAIServer, describing_responder

LABELS = SAMPLE_DIR / "labels.csv"
SECRET = "sk-test-must-never-leak-4242"


@pytest.fixture
def records():
    return load_source("fairface", SAMPLE_DIR, LABELS)


@pytest.fixture
def spec():
    return load_prompts()


def _teacher(server, **kwargs):
    settings = {"concurrency": 8, "backoff_s": 0.01, "backoff_max_s": 0.05, "timeout_s": 30, **kwargs}
    return OpenAIBackend(ChatClient(EndpointConfig(server.base_url, "gpt-4o-2024-11-20", **settings)))


def _rows(run: Path) -> list[tuple]:
    db = sqlite3.connect(run / "qa.sqlite")
    try:
        return db.execute("SELECT key, image, aspect, status FROM qa").fetchall()
    finally:
        db.close()


@pytest.mark.slow
def test_every_image_aspect_exactly_once_and_rerun_sends_nothing(records, spec, tmp_path):
    with MockOpenAIServer(responder=describing_responder) as server, QAStore(tmp_path) as store:
        summary = build_dataset(records, spec, _teacher(server), store)
        assert summary.done == 96 and summary.failed == 0
        assert len(server.requests) == 96
        again = build_dataset(records, spec, _teacher(server), store)
        assert again.pending == 0 and len(server.requests) == 96
        rows = store.records()
    assert sorted((r.image, r.aspect) for r in rows) == sorted((r.image, a) for r in records for a in spec.aspects)
    first = next(r for r in rows if r.image == "val_119.jpg" and r.aspect == "pose")
    assert first.question == "Describe the face pose of the image based on the visual information."
    assert "man" in first.answer and first.teacher == "openai:gpt-4o-2024-11-20" and first.prompt_tokens > 0
    # The request carried the labels; the stored question does not.
    asked = next(r for r in server.requests if "val_119" not in json.dumps(r) and "face pose" in json.dumps(r))
    assert "What is known about this face" in asked["messages"][1]["content"][1]["text"]


@pytest.mark.slow
def test_faults_are_retried_and_failures_recorded(records, spec, tmp_path):
    faults = [429, 500, "garbage", "timeout", 503]
    # The timeout fault answers after 60 s, the client gives up after 3: far apart, so that on a loaded machine a slow
    # normal answer is not read as a timeout (which would retry it and change the request count).
    with MockOpenAIServer(responder=describing_responder, faults=faults, retry_after=0, timeout_s=60.0) as server:
        with QAStore(tmp_path) as store:
            summary = build_dataset(records[:2], spec, _teacher(server, timeout_s=3.0), store)
    assert summary.done == 16 and summary.failed == 0  # every fault was retried into an answer
    assert len(server.requests) == 16 + len(faults)

    with MockOpenAIServer(responder=describing_responder, faults=[500] * 8) as server, QAStore(tmp_path / "b") as store:
        failing = build_dataset(records[:1], spec, _teacher(server, concurrency=1, max_retries=0), store)
        assert failing.failed == 8 and failing.failures == {"server error (5xx)": 8}
        assert {r.status for r in store.records()} == {"failed"}
        assert build_dataset(records[:1], spec, _teacher(server), store).pending == 0  # failures wait for a flag
        retried = build_dataset(records[:1], spec, _teacher(server), store, retry_failed=True)
        assert retried.done == 8 and {r.status for r in store.records()} == {"done"}

    # An empty answer is the teacher's answer (asking again at temperature 0 gives it again): recorded as failed.
    with MockOpenAIServer(responder=describing_responder, faults=["empty"]) as server, QAStore(tmp_path / "c") as store:
        empty = build_dataset(records[:1], spec, _teacher(server, concurrency=1), store)
        assert empty.failures == {"empty answer": 1} and empty.done == 7 and len(server.requests) == 8


def test_missing_and_corrupt_images_are_skipped_with_reasons(records, spec, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    (images / "val_293.jpg").write_bytes(records[0].path.read_bytes())
    (images / "val_119.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    subset = [r.__class__(r.image, images, r.known) for r in records[:3]]  # the third file does not exist
    with QAStore(tmp_path / "run") as store:
        summary = build_dataset(subset, spec, TemplateBackend(spec), store)
        skipped = store.skipped()
    assert summary.done == 8 and summary.skipped_images == 2
    assert "not an image file" in skipped["val_119.jpg"] and "image not found" in skipped["val_276.jpg"]


@pytest.mark.slow
def test_per_image_mode_sends_each_image_once_and_falls_back(records, spec, tmp_path):
    def responder(messages):
        asked = json.dumps(messages)
        return (
            "sorry, no JSON today" if "JSON object" in asked and "a woman" in asked else describing_responder(messages)
        )

    with MockOpenAIServer(responder=describing_responder) as server, QAStore(tmp_path / "a") as store:
        summary = build_dataset(records, spec, _teacher(server), store, mode="per-image")
        assert summary.done == 96 and len(server.requests) == 12 and summary.fallbacks == 0
        per_image_bytes = sum(r.image_bytes for r in store.records())
    with MockOpenAIServer(responder=describing_responder) as server, QAStore(tmp_path / "b") as store:
        build_dataset(records, spec, _teacher(server), store)
        per_aspect_bytes = sum(r.image_bytes for r in store.records())
    assert per_aspect_bytes >= 6 * per_image_bytes

    women = sum(r.known["gender"] == "Female" and r.known["age"] not in ("0-2", "3-9") for r in records)
    with MockOpenAIServer(responder=responder) as server, QAStore(tmp_path / "c") as store:
        summary = build_dataset(records, spec, _teacher(server), store, mode="per-image")
        modes = {r.mode for r in store.records()}
    assert summary.done == 96 and summary.fallbacks == women and modes == {"per-image", "per-aspect"}
    assert len(server.requests) == 12 + women * 8


@pytest.mark.slow
def test_sigkill_midway_then_resume_gives_the_complete_set(tmp_path):
    run = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "facellm.cli",
        "data",
        "build",
        "--images",
        str(SAMPLE_DIR),
        "--labels",
        str(LABELS),
        "--out",
        str(run),
        "--teacher",
        "openai",
        "--model",
        "gpt-4o-2024-11-20",
        "--concurrency",
        "4",
    ]
    env = {**os.environ, "FACELLM_API_KEY": SECRET}
    # The server answers 24 requests, then holds the rest until the kill has landed: mid-run whatever the speed.
    answered, held = itertools.count(), threading.Event()

    def answer_24_then_hold(messages):
        if next(answered) >= 24:
            held.wait(timeout=300)
        return describing_responder(messages)

    with MockOpenAIServer(responder=answer_24_then_hold, api_key=SECRET) as server:
        command += ["--base-url", server.base_url]
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        while process.poll() is None and not ((run / "qa.sqlite").exists() and _done_count(run) >= 20):
            time.sleep(0.1)
        process.send_signal(signal.SIGKILL)
        process.wait()
        held.set()
        partial = _done_count(run)
        assert 20 <= partial <= 24, "the kill should land mid-run"

        resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert resumed.returncode == 0, resumed.stderr
    rows = _rows(run)
    assert len(rows) == 96 and len({r[0] for r in rows}) == 96 and {r[3] for r in rows} == {"done"}
    assert len({(r[1], r[2]) for r in rows}) == 96
    db = sqlite3.connect(run / "qa.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    # The key reached the server (it demands it) but no output file or log line holds it.
    exported = tmp_path / "export"
    assert CliRunner().invoke(cli, ["data", "export", str(run), "--out", str(exported)]).exit_code == 0
    for path in [*run.rglob("*"), *exported.rglob("*")]:
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in resumed.stdout + resumed.stderr


def _done_count(run: Path) -> int:
    try:
        return sum(1 for row in _rows(run) if row[3] == "done")
    except sqlite3.Error:
        return 0


def test_contradiction_filter_catches_planted_cases():
    woman = {"gender": "Female", "age": "30-39", "race": "East Asian"}
    assert contradictions("The man has a short beard and his jaw is square.", woman) == ["contradicts_gender"]
    assert contradictions("She appears to be in her seventies, with deep wrinkles.", woman) == ["contradicts_age"]
    assert contradictions("A Black woman with high cheekbones.", woman) == ["contradicts_race"]
    assert contradictions("The woman, of East Asian descent, looks about 35.", woman) == []
    assert contradictions("She stands before a white background with black hair tied back.", woman) == []
    teen = {"gender": "Male", "age": "10-19", "race": "Southeast Asian"}
    assert contradictions("A Southeast Asian boy, aged 15, smiling.", teen) == []


def test_filters_mark_without_deleting_and_export_skips_flagged(records, spec, tmp_path):
    with QAStore(tmp_path / "run") as store:
        build_dataset(records[:2], spec, TemplateBackend(spec), store)
        planted = store.records()[0]
        planted.answer = "I'm sorry, but I can't help with identifying people."
        store.db.execute("UPDATE qa SET answer = ? WHERE key = ?", (planted.answer, planted.key))
        wrong_gender = store.records()[1]
        store.db.execute(
            "UPDATE qa SET answer = ? WHERE key = ?",
            (
                "The man in this picture has a strong jawline and a broad nose, clearly visible in good light.",
                wrong_gender.key,
            ),
        )
        flags = flag_records(store.records("done"))
        store.set_flags(flags)
        assert "refusal" in flags[planted.key]
        assert ("contradicts_gender" in flags[wrong_gender.key]) == (wrong_gender.known["gender"] == "Female")
        counts = export_dataset(store, "llava", tmp_path / "out", val_fraction=0.0)
        assert len(store.records()) == 16  # nothing deleted
    exported = json.loads((tmp_path / "out" / "train.json").read_text())
    assert len(exported) == counts["train"] == sum(not f for f in flags.values())
    assert planted.key not in {item["id"] for item in exported}


@pytest.mark.slow
def test_sharegpt_export_loads_with_datasets_in_llama_factory_layout(records, spec, tmp_path):
    from datasets import load_dataset

    with MockOpenAIServer(responder=describing_responder) as server, QAStore(tmp_path / "run") as store:
        build_dataset(records, spec, _teacher(server), store)
        store.set_flags(flag_records(store.records("done")))
        counts = export_dataset(store, "sharegpt", tmp_path / "sg", val_fraction=0.3)
    assert set(counts) == {"train", "val"}
    train = load_dataset("json", data_files=str(tmp_path / "sg" / "train.json"), split="train")
    assert train.column_names == ["image", "conversations"]
    sample = train[0]
    assert [turn["from"] for turn in sample["conversations"]] == ["human", "assistant"]
    assert sample["conversations"][0]["value"].startswith("<image>\n")
    assert (SAMPLE_DIR / sample["image"]).is_file()
    val = json.loads((tmp_path / "sg" / "val.json").read_text())
    assert not {item["image"] for item in val} & set(train["image"])  # split by image
    info = json.loads((tmp_path / "sg" / "dataset_info.json").read_text())
    assert info["facellm_train"]["tags"]["assistant_tag"] == "assistant"
    card = (tmp_path / "sg" / "README.md").read_text()
    assert "fairfacegpt-v1" in card and "openai:gpt-4o-2024-11-20" in card and "CC BY 4.0" in card


@pytest.mark.slow
def test_hf_export_and_template_default_through_cli(tmp_path):
    runner = CliRunner()
    built = runner.invoke(
        cli,
        [
            "data",
            "build",
            "--images",
            str(SAMPLE_DIR),
            "--labels",
            str(LABELS),
            "--out",
            str(tmp_path / "run"),
            "--limit",
            "3",
            "--aspects",
            "demographics,pose",
        ],
    )
    assert built.exit_code == 0, built.output
    assert "6 pairs answered" in built.output
    exported = runner.invoke(
        cli, ["data", "export", str(tmp_path / "run"), "--format", "hf", "--out", str(tmp_path / "hf"), "--val", "0"]
    )
    assert exported.exit_code == 0, exported.output
    from datasets import load_from_disk

    dataset = load_from_disk(str(tmp_path / "hf" / "train"))
    assert dataset[0]["image"].size == (224, 224) and dataset[0]["teacher"] == "template"
    assert "template" in (tmp_path / "hf" / "README.md").read_text()
    stats = runner.invoke(cli, ["data", "stats", str(tmp_path / "run")])
    assert stats.exit_code == 0 and "| demographics |" in stats.output
    assert (tmp_path / "run" / "group_balance.png").stat().st_size > 5000
    refilter = runner.invoke(cli, ["data", "filter", str(tmp_path / "run"), "--min-chars", "100000"])
    assert refilter.exit_code == 0 and "0 of 6 pairs pass" in refilter.output


def test_hf_teacher_with_the_tiny_model(tiny_lm, records, spec, tmp_path):
    with QAStore(tmp_path) as store:
        teacher = LocalBackend(tiny_lm, batch_size=4)
        summary = build_dataset(records[:3], spec, teacher, store, aspects=["pose", "detail"], max_new_tokens=12)
        rows = store.records()
    assert summary.done + summary.failed == 6 and summary.done >= 1
    assert {r.teacher for r in rows} == {f"hf:{tiny_lm.name}"}


def test_batch_api_files_round_trip(records, spec, tmp_path):
    with QAStore(tmp_path / "run") as store:
        count = prepare_batch(records[:2], spec, "gpt-4o-2024-11-20", store, tmp_path / "in.jsonl", ["pose", "detail"])
        assert count == 4 and {r.status for r in store.records()} == {"batched"}
        assert prepare_batch(records[:2], spec, "gpt-4o-2024-11-20", store, tmp_path / "again.jsonl") == 12
        lines = [json.loads(line) for line in (tmp_path / "in.jsonl").read_text().splitlines()]
        assert lines[0]["url"] == "/v1/chat/completions" and lines[0]["body"]["model"] == "gpt-4o-2024-11-20"
        outputs = []
        for i, line in enumerate(lines):
            body = {
                "choices": [{"message": {"content": f"A calm face, answer {i}."}}],
                "usage": {"prompt_tokens": 1000, "completion_tokens": 100},
            }
            response = {"status_code": 200 if i else 500, "body": body if i else {}}
            outputs.append({"custom_id": line["custom_id"], "response": response, "error": None if i else "boom"})
        outputs.append({"custom_id": "unknown|key", "response": {"status_code": 200, "body": {}}})
        (tmp_path / "out.jsonl").write_text("\n".join(json.dumps(o) for o in outputs))
        from facellm.data.build import Prices

        counts = ingest_batch(store, tmp_path / "out.jsonl", Prices(1.25, 5.0))
        assert counts == {"done": 3, "failed": 1, "unknown": 1}
        done = store.records("done")
        assert len(done) == 3 and abs(done[0].cost - (1000 * 1.25 + 100 * 5.0) / 1e6) < 1e-12


def test_data_cli_bad_input(tmp_path):
    runner = CliRunner()
    bad = tmp_path / "labels.csv"
    bad.write_text("file,age\nx.jpg,20-29\n")
    missing_columns = runner.invoke(
        cli, ["data", "build", "--images", str(tmp_path), "--labels", str(bad), "--out", str(tmp_path / "r")]
    )
    assert missing_columns.exit_code == 2
    assert (
        missing_columns.output.strip().splitlines()[-1].startswith("error: ")
        and "gender, race" in missing_columns.output
    )
    no_url = runner.invoke(
        cli,
        [
            "data",
            "build",
            "--images",
            str(SAMPLE_DIR),
            "--labels",
            str(LABELS),
            "--out",
            str(tmp_path / "r"),
            "--teacher",
            "openai",
            "--model",
            "gpt-4o",
        ],
    )
    assert no_url.exit_code == 2 and "--base-url" in no_url.output
    no_run = runner.invoke(cli, ["data", "export", str(tmp_path / "none"), "--out", str(tmp_path / "x")])
    assert no_run.exit_code == 2 and "no dataset run" in no_run.output


@pytest.mark.slow
def test_measured_attributes_reach_prompts_and_records(tmp_path):
    with MockOpenAIServer(responder=describing_responder) as server:
        result = CliRunner().invoke(
            cli,
            [
                "data",
                "build",
                "--images",
                str(SAMPLE_DIR),
                "--labels",
                str(LABELS),
                "--out",
                str(tmp_path),
                "--limit",
                "2",
                "--aspects",
                "pose",
                "--measure",
                "--teacher",
                "openai",
                "--model",
                "m",
                "--base-url",
                server.base_url,
            ],
        )
        asked = [json.dumps(r) for r in server.requests]
    assert result.exit_code == 0, result.output
    assert len(asked) == 2 and all("Measured from the image: head pose" in a for a in asked)
    with QAStore(tmp_path) as store:
        measured = [r.measured for r in store.records()]
    assert all(m["face_count"] == 1 and "yaw" in m for m in measured)


def test_label_csv_that_is_not_utf8_is_one_line_error(tmp_path):
    bad = tmp_path / "labels.csv"
    bad.write_bytes(
        b"file,age,gender,race,service_test\nval_119.jpg,20-29,Male,White,True\nval_2\xe9.jpg,3-9,Male,Black,True\n"
    )
    result = CliRunner().invoke(
        cli, ["data", "build", "--images", str(SAMPLE_DIR), "--labels", str(bad), "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert (
        len(lines) == 1
        and lines[0] == f"error: {bad} is not UTF-8 text (byte 0xe9 on line 3); re-save the file as UTF-8"
    )


@pytest.mark.slow
def test_duplicate_rows_are_asked_once_and_reported(tmp_path):
    """Six faces listed three times each (the second copy under another file name): 6 requests, not 18."""
    import shutil

    rows = LABELS.read_text(encoding="utf-8").splitlines()
    header, body = rows[0], rows[1:7]
    images = tmp_path / "images"
    shutil.copytree(SAMPLE_DIR, images)
    copies = []
    for line in body:
        name = line.split(",")[0]
        shutil.copy(images / name, images / f"copy_{name}")
        copies.append(line.replace(name, f"copy_{name}", 1))
    labels = tmp_path / "labels.csv"
    labels.write_text("\n".join([header, *body, *body, *copies]) + "\n", encoding="utf-8")
    with MockOpenAIServer(responder=describing_responder) as server:
        result = CliRunner().invoke(
            cli,
            [
                "data",
                "build",
                "--images",
                str(images),
                "--labels",
                str(labels),
                "--out",
                str(tmp_path / "run"),
                "--aspects",
                "pose",
                "--teacher",
                "openai",
                "--model",
                "m",
                "--base-url",
                server.base_url,
            ],
        )
        sent = len(server.requests)
    assert result.exit_code == 0, result.output
    assert sent == 6
    assert "12 duplicate image(s) not sent again" in result.output and "val_119.jpg (repeated row)" in result.output
    with QAStore(tmp_path / "lib") as store:
        spec = load_prompts()
        summary = build_dataset(load_source("fairface", images, labels), spec, TemplateBackend(spec), store, ["pose"])
    assert summary.done == 6 and len(summary.duplicates) == 12
    assert summary.duplicates["copy_val_119.jpg"] == "val_119.jpg"
