"""The `facellm` command through its real entry point (subprocess) and through click's runner for the error matrix."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

from facellm.cli import cli

FACELLM = shutil.which("facellm") or ""


def run_facellm(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run the installed console script (falling back to `python -m facellm.cli`)."""
    command = [FACELLM] if FACELLM else [sys.executable, "-m", "facellm.cli"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run([*command, *args], input=stdin, capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.slow
def test_make_tiny_model_then_ask_through_entry_point(tmp_path, faces):
    made = run_facellm("dev", "make-tiny-model", str(tmp_path / "tiny"))
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "tiny" / "config.json").is_file()
    assert (tmp_path / "tiny" / "chat_template.jinja").is_file()

    asked = run_facellm(
        "ask",
        str(faces[0].path),
        "-q",
        "Describe this face.",
        "--model",
        str(tmp_path / "tiny"),
        "--max-new-tokens",
        "8",
    )
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout.strip()


@pytest.mark.slow
def test_entry_point_reports_user_error_on_one_line(tmp_path):
    result = run_facellm("ask", str(tmp_path / "missing.jpg"), "-q", "hi")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: image not found: {tmp_path / 'missing.jpg'}; check the path"]
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_debug_flag_shows_traceback(tmp_path):
    result = run_facellm("--debug", "ask", str(tmp_path / "missing.jpg"), "-q", "hi")
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "ImageError" in result.stderr


def _bad_inputs(tmp_path, faces):
    not_image = tmp_path / "notes.jpg"
    not_image.write_text("hello")
    truncated = tmp_path / "cut.jpg"
    data = faces[0].path.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    from tests.test_images import _png_header_only

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header_only(20_000, 20_000))
    return {
        "missing": ([str(tmp_path / "missing.jpg")], "image not found"),
        "not an image": ([str(not_image)], "not an image file"),
        "truncated": ([str(truncated)], "cannot decode image"),
        "bomb": ([str(bomb)], "image too large"),
        "folder": ([str(tmp_path)], "got a folder"),
    }


@pytest.mark.parametrize("case", ["missing", "not an image", "truncated", "bomb", "folder"])
def test_bad_images_exit_2_with_one_line(tmp_path, faces, case):
    args, expected = _bad_inputs(tmp_path, faces)[case]
    result = CliRunner().invoke(cli, ["ask", *args, "-q", "hi"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0]


def test_unreachable_default_model_points_at_local_folder(faces):
    result = CliRunner().invoke(cli, ["ask", str(faces[0].path), "-q", "hi"])
    assert result.exit_code == 2
    line = result.output.strip().splitlines()[-1]
    assert "cannot load model 'Idiap/FaceLLM-1B'" in line and "--model" in line


def test_bad_adapter_and_bad_options(tiny_checkpoint, faces, tmp_path):
    runner = CliRunner()
    bad_adapter = runner.invoke(
        cli, ["ask", str(faces[0].path), "-q", "hi", "-m", str(tiny_checkpoint), "--adapter", str(tmp_path)]
    )
    assert bad_adapter.exit_code == 2 and "not a PEFT adapter folder" in bad_adapter.output
    zero_tokens = runner.invoke(cli, ["ask", str(faces[0].path), "-q", "hi", "--max-new-tokens", "0"])
    assert zero_tokens.exit_code == 2 and "max_new_tokens must be at least 1" in zero_tokens.output
    no_question = runner.invoke(cli, ["ask", str(faces[0].path)])
    assert no_question.exit_code == 2 and "--question" in no_question.output


def test_ask_streams_the_same_answer(tiny_checkpoint, faces):
    runner = CliRunner()
    common = [
        "ask",
        str(faces[2].path),
        str(faces[3].path),
        "-q",
        "Compare them.",
        "-m",
        str(tiny_checkpoint),
        "--max-new-tokens",
        "10",
    ]
    plain = runner.invoke(cli, common)
    streamed = runner.invoke(cli, [*common, "--stream"])
    assert plain.exit_code == 0 and streamed.exit_code == 0, plain.output + streamed.output
    assert plain.stdout.strip() == streamed.stdout.strip() != ""


def test_chat_keeps_history_and_survives_bad_image(tiny_checkpoint, faces, tmp_path):
    script = (
        "\n".join(
            [
                "Describe this face.",
                f"/image {tmp_path / 'nope.jpg'}",
                f"/image {faces[1].path}",
                "And this one?",
                "/reset",
                "Describe this face.",
                "/quit",
            ]
        )
        + "\n"
    )
    result = CliRunner().invoke(
        cli, ["chat", str(faces[0].path), "-m", str(tiny_checkpoint), "--max-new-tokens", "6"], input=script
    )
    assert result.exit_code == 0, result.output
    answers = [line.split("facellm> ", 1)[1] for line in result.stdout.splitlines() if "facellm> " in line]
    assert len(answers) == 3
    assert "image not found" in result.stderr and "history cleared" in result.stderr
    # After /reset the same first question has no image and no history, so the answer may differ,
    # but the second turn (with history and a new image) must differ from the first.
    assert answers[0] != answers[1]


def test_samples_command_lists_shipped_faces(faces):
    result = CliRunner().invoke(cli, ["dev", "samples"])
    assert result.exit_code == 0
    assert len(result.stdout.strip().splitlines()) == len(faces) >= 12


def _one_line_error(result) -> str:
    """The `error: ...` line of a run that exited 2 (after at most the model loader's progress bar), no traceback."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.strip().splitlines() if not line.startswith("Loading weights")]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.slow
def test_verify_an_image_without_a_face_is_an_error_not_a_distance(faces, tmp_path):
    """A plain picture has no face: `verify` names the file and exits 2 instead of comparing two whole images."""
    import numpy as np
    from PIL import Image

    plain = tmp_path / "noface.jpg"
    ramp = np.tile(np.linspace(0, 255, 300, dtype=np.uint8), (300, 1))
    Image.fromarray(ramp).convert("RGB").save(plain)
    runner = CliRunner()
    both = _one_line_error(runner.invoke(cli, ["verify", str(plain), str(plain)]))
    assert f"no face in {plain}" in both and "distance" not in both
    one = _one_line_error(runner.invoke(cli, ["verify", str(faces[0].path), str(plain)]))
    assert f"no face in {plain}" in one
    assert runner.invoke(cli, ["verify", str(faces[0].path), str(faces[0].path)]).exit_code == 0


def test_ask_refuses_placeholder_text_and_out_of_range_seeds(tiny_checkpoint, faces):
    runner = CliRunner()
    base = ["ask", str(faces[0].path), "--model", str(tiny_checkpoint), "--max-new-tokens", "4"]
    placeholder = _one_line_error(runner.invoke(cli, [*base, "-q", "What is <IMG_CONTEXT> here?"]))
    assert "image placeholder <IMG_CONTEXT>" in placeholder
    seed = _one_line_error(runner.invoke(cli, [*base, "-q", "Hi?", "--sample", "--seed", str(2**64)]))
    assert "seed must be an integer from" in seed
    assert runner.invoke(cli, [*base, "-q", "Hi?", "--sample", "--seed", str(2**64 - 1)]).exit_code == 0


def test_an_error_during_a_progress_bar_stands_on_its_own_line():
    import click
    from tqdm import tqdm

    from facellm.cli.root import _Group
    from facellm.errors import FaceLLMError

    @click.group(cls=_Group)
    def group():
        pass

    @group.command()
    def work():
        bar = tqdm(total=10, desc="working")
        bar.update(3)
        raise FaceLLMError("broke at item 4", "fix item 4")

    result = CliRunner().invoke(group, ["work"])
    assert result.exit_code == 2 and "working:  30%" in result.stderr
    assert result.stderr.rstrip("\n").split("\n")[-1] == "error: broke at item 4; fix item 4"


@pytest.mark.slow
def test_refusals_come_before_any_work_each_on_one_line(tmp_path, standin_bench, tiny_checkpoint):
    """Through the real entry point: each refusal is the only thing on stderr (no progress bar, no loading output)."""
    from facellm.samples import SAMPLE_DIR
    from facellm.testing.server import free_port

    labels = str(SAMPLE_DIR / "labels.csv")
    build = ["data", "build", "--images", str(SAMPLE_DIR), "--labels", labels, "--out", str(tmp_path / "data")]
    evaluate = [
        "eval",
        "facexbench",
        "--bench-dir",
        str(standin_bench),
        "--model",
        "specialist",
        "--only",
        "age",
        "--limit",
        "1",
        "--out",
        str(tmp_path / "eval"),
    ]
    assert CliRunner().invoke(cli, evaluate).exit_code == 0
    dataset = tmp_path / "train.json"
    dataset.write_text("[]")
    cases = {
        "unknown aspect": ([*build, "--aspects", "pose,smell"], "unknown aspect(s): smell"),
        "unreachable teacher": (
            [*build, "--teacher", "openai", "--api-model", "m", "--base-url", f"http://127.0.0.1:{free_port()}/v1"],
            "cannot reach",
        ),
        "refused eval rerun": ([*evaluate, "--setting", "cot"], "holds a run with other settings"),
        "resume without checkpoint": (
            [
                "train",
                "--set",
                f"model={tiny_checkpoint}",
                "--set",
                f"dataset={dataset}",
                "--set",
                f"output_dir={tmp_path / 'train'}",
                "--resume",
            ],
            "no checkpoint",
        ),
        "adapter that is not one": (
            ["export", "--base", str(tiny_checkpoint), "--adapter", str(tmp_path), "--out", str(tmp_path / "merged")],
            "not a PEFT adapter folder",
        ),
    }
    for name, (args, expected) in cases.items():
        result = run_facellm(*args)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1, (name, result.stderr)
        assert lines[0].startswith("error: ") and expected in lines[0], (name, lines[0])


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        (["verify", "--pairs", "no-such-file.txt", "--images", "."], "pairs file no-such-file.txt not found"),
        (["verify", "--pairs", ".", "--images", "."], "is a folder"),
        (["verify", "--pairs", "{binary}", "--images", "."], "is not UTF-8 text"),
        (["verify", "--pairs", "{pairs}", "--images", "no-such-folder"], "image folder no-such-folder not found"),
        (["faces", "cluster", "no-such-folder"], "folder no-such-folder not found"),
        (["serve", "--offline", "--port", "99999"], "not a TCP port"),
        (["serve", "--offline", "--port", "-1"], "not a TCP port"),
        (["demo", "--images", "0", "--out", "{tmp}/demo"], "each needs at least one face"),
    ],
)
def test_bad_arguments_get_one_error_line(arguments, says, tmp_path):
    """Issue 34's cases: a traceback, a silent success or a misleading line before; one `error:` line, exit 2."""
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00bad")
    (tmp_path / "pairs.txt").write_text("1 1\nA 1 2\nB 1 C 1\n", encoding="utf-8")
    filled = [a.format(binary=tmp_path / "binary.txt", pairs=tmp_path / "pairs.txt", tmp=tmp_path) for a in arguments]
    result = CliRunner().invoke(cli, filled)
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1 and says in errors[0], result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "arguments", [["verify", "a.jpg", "b.jpg", "--threshold", "-1"], ["analyze", ".", "--workers", "-3"]]
)
def test_out_of_range_numbers_are_refused(arguments):
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 2 and "Invalid value" in result.output, result.output


def test_chat_refuses_an_unknown_command(faces):
    """A mistyped /command is not sent to the model; // sends a message that starts with /."""
    script = "/bogus\n//etc is a folder. How old is this person?\n/quit\n"
    result = CliRunner().invoke(cli, ["chat", str(faces[0].path), "-m", "specialist"], input=script)
    assert result.exit_code == 0, result.output
    assert "unknown command /bogus" in result.stderr
    answers = [line.split("facellm> ", 1)[1] for line in result.stdout.splitlines() if "facellm> " in line]
    assert len(answers) == 1 and "age" in answers[0], result.stdout
