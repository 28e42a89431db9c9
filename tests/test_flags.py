"""One flag schema: the same name for the same thing in every command, old names kept hidden with a note, and
defaults that depend on the setting defined once (the CLI and the Python API ask for the same answer length)."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from facellm.backends.scripted import ScriptedBackend
from facellm.cli import cli
from facellm.eval.facexbench import load_benchmark
from facellm.eval.run import ANSWER_TOKENS, run_questions

# old name -> the name every command now uses for the same thing
RENAMED = {"--api-base": "--base-url", "--upstream": "--base-url", "--upstream-model": "--api-model"}
RENAMED |= {"--teacher-model": "--api-model"}


def commands(group: click.Group = cli, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], click.Command]:
    """Every command of the CLI by its words, walked from the root group."""
    found = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found |= commands(command, prefix + (name,))
        else:
            found[prefix + (name,)] = command
    return found


def flags(command: click.Command, hidden: bool) -> set[str]:
    return {f for p in command.params if isinstance(p, click.Option) and p.hidden == hidden for f in p.opts}


def test_the_walk_finds_every_command():
    found = commands()
    assert ("serve",) in found and ("eval", "facexbench") in found and ("faces", "train-crowd") in found
    assert len(found) > 20


def test_old_names_are_hidden_and_their_new_names_are_there():
    for words, command in commands().items():
        visible, hidden = flags(command, hidden=False), flags(command, hidden=True)
        assert not visible & set(RENAMED), (words, visible & set(RENAMED))
        for old in hidden & set(RENAMED):
            assert RENAMED[old] in visible, (words, old)


def test_an_endpoint_is_base_url_and_its_model_api_model_everywhere():
    with_endpoint = {words for words, command in commands().items() if "--base-url" in flags(command, False)}
    assert with_endpoint >= {("serve",), ("eval", "facexbench"), ("eval", "fairface"), ("data", "build"), ("demo",)}
    for words in with_endpoint:
        assert "--api-model" in flags(commands()[words], False), words


@pytest.mark.parametrize(
    "arguments, note, error",
    [
        (["serve", "--offline", "--upstream", "http://127.0.0.1:9/v1"], "--upstream is now --base-url", "exclude"),
        (["demo", "--model", "m"], "--model is now --api-model", "needs both --base-url and --api-model"),
    ],
)
def test_an_old_name_still_works_and_says_its_new_one(arguments, note, error):
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 2, result.output
    assert note in result.output and error in result.output


def test_eval_takes_the_endpoint_by_its_old_and_new_names(standin_bench, tmp_path):
    for flag in ("--api-base", "--base-url"):
        arguments = ["eval", "facexbench", "--bench-dir", str(standin_bench), "--out", str(tmp_path / "run")]
        result = CliRunner().invoke(cli, [*arguments, flag, "http://127.0.0.1:9/v1"])
        assert result.exit_code == 2 and "--base-url needs --api-model" in result.output, result.output
        assert ("--api-base is now --base-url" in result.output) == (flag == "--api-base")


def test_chain_of_thought_asks_for_long_answers_from_python_as_from_the_cli(standin_bench, tmp_path):
    questions = load_benchmark(standin_bench, limit=1)
    for setting in ("cot", "zero-shot"):
        answerer = ScriptedBackend(lambda prompt: "A")
        run_questions(questions, answerer, tmp_path / setting, setting=setting)
        assert {s.max_new_tokens for s in answerer.settings} == {ANSWER_TOKENS[setting]}
    assert ANSWER_TOKENS["cot"] > ANSWER_TOKENS["zero-shot"]
