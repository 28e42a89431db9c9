"""The shipped recipes: training configs (`train/`, one per released size plus a CPU one) and accelerate configs
(`accelerate/`: DDP, FSDP, DeepSpeed ZeRO-3). They travel inside the package, so a wheel install has them too.

A config is named by a path that exists, by its name ("facellm-1b"), or by its path in a clone
("configs/train/facellm-1b.yaml", which the README and the paper's plan print)."""

from __future__ import annotations

from pathlib import Path

from facellm.errors import InputError

SHIPPED = Path(__file__).parent
KINDS = ("train", "accelerate")


def names(kind: str = "train") -> list[str]:
    """The shipped configs of one kind, by name."""
    return sorted(p.stem for p in (SHIPPED / kind).glob("*.yaml"))


def config_file(given: str | Path, kind: str = "train") -> Path:
    """The config file `given` names: an existing file, else the shipped config of that name."""
    path = Path(given)
    if path.is_file():
        return path
    shipped = SHIPPED / kind / f"{path.stem}.yaml"
    if path.suffix in ("", ".yaml") and shipped.is_file():
        return shipped
    fix = f"pass a YAML file or a shipped {kind} config: {', '.join(names(kind))}"
    if path.is_dir():
        raise InputError(f"config {path} is a folder, not a file", fix)
    raise InputError(f"config not found: {path}", fix)
