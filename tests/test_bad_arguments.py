"""Every subcommand, each kind of bad argument: exactly one `error:` line on stderr, exit code 2, no traceback.

The cases are built from the CLI's own commands and their parameters (a new command or flag is covered without
editing this file): a missing path, a folder where a file is expected, a file where a folder is expected, a file that
is not UTF-8 text, a number out of range, an unknown choice, an unknown flag. Every other required parameter gets a
path that does not exist, so no case can start real work."""

from __future__ import annotations

import signal
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from facellm.cli import cli
from tests.test_flags import commands

CASE_SECONDS = 60


def _baseline(command: click.Command, tmp: Path) -> list[str]:
    """Values for the required parameters: paths that do not exist, the first choice, 1 for numbers."""
    arguments: list[str] = []
    for param in command.params:
        if not param.required:
            continue
        value = _plain_value(param, tmp)
        arguments += [value] if isinstance(param, click.Argument) else [param.opts[0], value]
    return arguments


def _plain_value(param: click.Parameter, tmp: Path) -> str:
    if isinstance(param.type, click.Choice):
        return str(param.type.choices[0])
    if isinstance(param.type, (click.types.IntParamType, click.types.FloatParamType)):
        return "1"
    return str(tmp / "not-there" / param.name)


OUTPUT_FOLDERS = {"out", "out_dir"}  # written, so they may not exist yet; a file there is the mistake
OUTPUT_FILES = {"batch_file"}
ANY_NUMBER = {"seed"}  # every integer is a seed


def _bad_values(param: click.Parameter, tmp: Path) -> dict[str, str]:
    """The kinds of bad value this parameter can be given."""
    if isinstance(param.type, click.Choice):
        return {"unknown choice": "no-such-choice"}
    if isinstance(param.type, (click.types.IntParamType, click.types.FloatParamType)):
        return {"not a number": "seven"} | ({} if param.name in ANY_NUMBER else {"out-of-range number": "-7"})
    if param.name in OUTPUT_FOLDERS:
        return {"file for a folder": str(tmp / "a-file.txt")}
    if param.name in OUTPUT_FILES:
        return {"folder for a file": str(tmp / "a-folder")}
    if isinstance(param.type, click.Path) or param.name in ("images", "folder", "run", "output_file"):
        return {
            "missing path": str(tmp / "no-such-path"),
            "folder for a file": str(tmp / "a-folder"),
            "file for a folder": str(tmp / "a-file.txt"),
            "non-UTF-8 file": str(tmp / "not-utf8.txt"),
        }
    return {}


def cases() -> list[tuple[str, list[str]]]:
    """(label, arguments after `facellm`) for every command and bad value; TMP stands for a temporary folder."""
    tmp = Path("TMP")
    found = []
    for words, command in sorted(commands().items()):
        if words == ("chat",):
            continue  # interactive: tests/test_cli.py covers its bad images and commands
        base = list(words) + _baseline(command, tmp)
        found.append((f"{' '.join(words)}: unknown flag", [*base, "--no-such-flag"]))
        for param in command.params:
            if isinstance(param, click.Option) and (param.is_flag or param.hidden):
                continue
            for kind, value in _bad_values(param, tmp).items():
                if isinstance(param, click.Argument):
                    arguments = list(words) + [
                        value if a == _plain_value(param, tmp) else a for a in base[len(words) :]
                    ]
                    if value not in arguments:
                        arguments.append(value)
                else:
                    arguments = [*base, param.opts[0], value]
                found.append((f"{' '.join(words)} {param.opts[0]}: {kind}", arguments))
    return found


CASES = cases()


def test_cases_cover_every_command_and_kind():
    covered = {label.split(":")[0].split(" --")[0] for label, _ in CASES}
    assert covered >= {" ".join(words) for words in commands() if words != ("chat",)}
    kinds = {label.rsplit(": ", 1)[1] for label, _ in CASES}
    assert kinds >= {"missing path", "folder for a file", "file for a folder", "non-UTF-8 file"}
    assert kinds >= {"out-of-range number", "unknown choice", "unknown flag"}


def _timeout(signum: int, frame: object) -> None:
    raise TimeoutError(f"still running after {CASE_SECONDS} s")


@pytest.mark.parametrize("label, arguments", CASES, ids=[label for label, _ in CASES])
def test_a_bad_argument_gets_one_error_line(label, arguments, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)  # default output folders (runs/demo, ...) start empty
    arguments = [a.replace("TMP", str(tmp_path)) for a in arguments]
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "a-file.txt").write_text("not what was asked for\n", encoding="utf-8")
    (tmp_path / "not-utf8.txt").write_bytes(b"\xff\xfe\x00\x81 not text \xc3\x28")
    previous = signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(CASE_SECONDS)
    try:
        result = CliRunner().invoke(cli, arguments, input="")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1, (label, result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
