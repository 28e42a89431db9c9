"""Users' text files read with one-line errors: a missing file, a folder, or bytes that are not UTF-8 text."""

from __future__ import annotations

from pathlib import Path

from facellm.errors import InputError


def read_text(path: str | Path, what: str, fix: str) -> str:
    """The UTF-8 text of `path`; an `InputError` naming `what` it should be and `fix` otherwise."""
    source = Path(path)
    if source.is_dir():
        raise InputError(f"{what} {source} is a folder, not a file", fix)
    if not source.is_file():
        raise InputError(f"{what} not found: {source}", fix)
    try:
        return source.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} {source} is not UTF-8 text (byte {exc.start})", fix) from None


def output_folder(path: str | Path, what: str) -> Path:
    """`path` as a folder to write into: it may not exist yet, but may not be a file."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise InputError(f"{what} {target} is a file, not a folder", f"choose a new folder for {what}")
    return target


def empty_folder(path: str | Path, what: str) -> Path:
    """`path` as a folder to write into that holds nothing yet (it may not exist)."""
    target = output_folder(path, what)
    if target.is_dir() and any(target.iterdir()):
        raise InputError(f"{what} {target} is not empty", f"choose a new folder for {what}")
    return target
