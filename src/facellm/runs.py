"""Run identity: the settings that change a run's outputs, hashed, so that a resume never mixes two settings.

An eval run keeps its identity in `run.json`, a data run in its store. A rerun into the same folder with another
identity is refused with one line naming what changed; `--new-identity` moves the earlier run's files into
`previous/<its hash>/` (nothing is deleted) and starts the new one there.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterable
from pathlib import Path

from facellm.errors import InputError

NEW_IDENTITY_FLAG = "--new-identity"


def identity_hash(identity: dict) -> str:
    """A short, stable hash of the identity's settings."""
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def file_hash(path: str | Path | None) -> str | None:
    """The content hash of a file (a label CSV, a prompt file), None for no file."""
    if path is None:
        return None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def folder_hash(folder: str | Path, pattern: str = "*.json") -> str:
    """One hash over the names and contents of a folder's files matching `pattern` (a benchmark's question files)."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).rglob(pattern)):
        digest.update(str(path.relative_to(folder)).encode("utf-8"))
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def check_identity(previous: dict | None, identity: dict, folder: Path) -> None:
    """Refuse (InputError) when `folder` holds a run whose identity differs from `identity`."""
    if not previous or previous == identity:
        return
    changed = sorted(k for k in set(previous) | set(identity) if previous.get(k) != identity.get(k))
    detail = ", ".join(f"{k}: {previous.get(k)!r} -> {identity.get(k)!r}" for k in changed)
    raise InputError(
        f"{folder} holds a run with other settings ({detail})",
        f"choose another --out folder, or pass {NEW_IDENTITY_FLAG} to keep the earlier run in "
        f"{folder}/previous/ and start this one",
    )


def start_new_identity(folder: Path, names: Iterable[str], previous: dict | None, identity: dict) -> Path | None:
    """`--new-identity`: when `folder` holds a run with another identity, move its named files into
    `folder/previous/<its hash>/` so this run starts fresh; returns where (None: nothing to move)."""
    if not previous or previous == identity:
        return None
    target = folder / "previous" / identity_hash(previous)
    moved = False
    for name in names:
        source = folder / name
        if source.exists():
            target.mkdir(parents=True, exist_ok=True)
            shutil.move(str(source), str(target / name))
            moved = True
    return target if moved else None
