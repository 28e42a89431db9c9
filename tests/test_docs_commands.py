"""The README's and docs' command examples name commands and flags that exist (so the docs cannot drift from the
CLI unnoticed)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.test_flags import commands, flags

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
GLOBAL_FLAGS = {"--debug", "--version", "--help", "-h"}


def snippets(text: str) -> list[str]:
    """Code in a Markdown text: the lines of fenced blocks (continued lines joined) and inline code spans."""
    found = []
    fenced = re.findall(r"```[^\n]*\n(.*?)```", text, flags=re.S)
    for block in fenced:
        found += [line.split(" #")[0] for line in block.replace("\\\n", " ").splitlines()]
    outside = re.sub(r"```.*?```", "", text, flags=re.S)
    found += re.findall(r"`([^`\n]+)`", outside)
    return found


def examples(text: str) -> list[tuple[tuple[str, ...], set[str], str]]:
    """(command words, flags named, the example) of every `facellm ...` example in the text."""
    known = commands()
    groups = {words[0] for words in known if len(words) > 1}
    found = []
    for snippet in snippets(text):
        for part in snippet.split("facellm ")[1:]:
            words = re.findall(r"^[a-z][a-z-]*(?: [a-z][a-z-]*)?", part)
            if not words:
                continue
            first, _, second = words[0].partition(" ")
            command = (first, second) if first in groups and second else (first,)
            named = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", part))
            found.append((command, named, "facellm " + part.strip()))
    return found


def test_the_examples_are_found():
    found = [example for document in DOCUMENTS for example in examples(document.read_text(encoding="utf-8"))]
    assert len(found) > 100
    assert any(command == ("eval", "facexbench") and "--base-url" in named for command, named, _ in found)


def test_documented_commands_and_flags_exist():
    known = commands()
    wrong = []
    for document in DOCUMENTS:
        for command, named, example in examples(document.read_text(encoding="utf-8")):
            if command not in known:
                if not any(words[: len(command)] == command for words in known):  # a group named alone
                    wrong.append(f"{document.name}: unknown command in {example!r}")
                continue
            unknown = named - flags(known[command], hidden=False) - GLOBAL_FLAGS
            if unknown:
                wrong.append(f"{document.name}: {' '.join(sorted(unknown))} not a flag of {' '.join(command)}")
    assert not wrong, "\n".join(wrong)
