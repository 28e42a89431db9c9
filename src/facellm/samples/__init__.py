"""A dozen real FairFace faces (CC BY 4.0) shipped for examples and tests; see fairface/CREDITS.md."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

SAMPLE_DIR = Path(__file__).parent / "fairface"


@dataclass(frozen=True)
class SampleFace:
    path: Path
    age: str
    gender: str
    race: str


def sample_faces() -> list[SampleFace]:
    """The shipped sample faces with their FairFace labels, in `labels.csv` order."""
    with open(SAMPLE_DIR / "labels.csv", newline="", encoding="utf-8") as f:
        return [
            SampleFace(SAMPLE_DIR / row["file"], row["age"], row["gender"], row["race"]) for row in csv.DictReader(f)
        ]
