"""Training and held-out development splits of the labelled face sets the shipped models were trained on (one folder
per set, with labels.csv).

One place decides which images a shipped model saw, so the trainer, the benchmarks and the model cards agree:
  liveness    NUAA train split: subjects 0001-0006 train, 0007-0009 held out (people never seen)
  synthetic   real vs StyleGAN2 faces: every 5th image of each class (sorted by path) held out
  expression  RAF-DB (half its train split): every 5th image held out
  headpose    AFLW2000-3D (500 faces): 5 folds by seeded shuffle (faces/pose.py); fold 1 held out
  crowd       ShanghaiTech part B train (400 images with head positions): every 4th image by path held out
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from facellm.errors import InputError


@dataclass
class Split:
    train: list[tuple[Path, str]]  # (image path, label)
    held_out: list[tuple[Path, str]]


def official_test_split(path: Path) -> bool:
    """Whether a folder is (part of) an official test split (ShanghaiTech's test_data, FER2013's PrivateTest, a "test"
    folder): reserved for measurements made elsewhere, so no training or bench here reads it. Only the folder and its
    parent are looked at, so a checkout under a folder named like "ci_test" is not taken for one."""
    names = [part.lower() for part in Path(path).parts[-2:]]
    return any(name in ("test", "test_data", "privatetest") or name.endswith("_test") for name in names)


def _rows(folder: Path) -> list[dict]:
    labels = folder / "labels.csv"
    if not labels.is_file():
        raise InputError(f"{labels} not found", "pass the labelled set's folder, the one that holds labels.csv")
    with open(labels, newline="", encoding="utf-8") as f:
        return sorted(csv.DictReader(f), key=lambda r: r.get("path") or r.get("file") or "")


def liveness(folder: Path) -> Split:
    rows = _rows(folder)
    pairs = [(folder / r["path"], "bonafide" if r["label"] == "real" else "attack", r["subject"]) for r in rows]
    return Split([(p, y) for p, y, s in pairs if s <= "0006"], [(p, y) for p, y, s in pairs if s > "0006"])


def _every_fifth(folder: Path, label_column: str, rename=lambda v: v) -> Split:
    split = Split([], [])
    seen: dict[str, int] = {}
    for r in _rows(folder):
        label = rename(r[label_column])
        seen[label] = seen.get(label, 0) + 1
        (split.held_out if seen[label] % 5 == 0 else split.train).append((folder / r["path"], label))
    return split


def synthetic(folder: Path) -> Split:
    return _every_fifth(folder, "label")


def expression(folder: Path) -> Split:
    return _every_fifth(folder, "expression")


def crowd(folder: Path) -> Split:
    rows = _rows(folder)
    pairs = [(folder / r["path"], r["count"]) for r in rows]
    return Split([p for i, p in enumerate(pairs) if i % 4 != 3], [p for i, p in enumerate(pairs) if i % 4 == 3])


SPLITS = {"liveness": liveness, "synthetic": synthetic, "expression": expression, "crowd": crowd}
