"""Sources: turn a face collection into records of (image, known attributes).

Supported: FairFace (official label CSV), UTKFace (labels in file names), CelebA (`list_attr_celeba.txt`), a
generic CSV/JSONL manifest with any attribute columns, and a plain image folder (no labels). FairFace vocabulary
is normalised (`Latino_Hispanic` -> `Latino/Hispanic`); ages given in years are mapped to FairFace's age groups.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from facellm.errors import InputError
from facellm.labels import normalise

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
SOURCES = ("fairface", "utkface", "celeba", "manifest", "folder")
UTKFACE_RACES = {"0": "White", "1": "Black", "2": "Asian", "3": "Indian"}  # 4 = "Others": left unknown
CELEBA_TRAITS = ("Eyeglasses", "Smiling", "Wearing_Hat", "Heavy_Makeup", "Mustache", "No_Beard", "Bald", "Young")


@dataclass(frozen=True)
class FaceRecord:
    """One image with what is known about it. `image` is relative to `root` (exports keep that path)."""

    image: str
    root: Path
    known: dict = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.root / self.image


def load_source(
    kind: str, images: str | Path, labels: str | Path | None = None, limit: int | None = None
) -> list[FaceRecord]:
    """Records of one collection; `labels` is the label file where the source has one."""
    root = Path(images)
    if not root.is_dir():
        raise InputError(f"image folder not found: {root}", "pass --images with the folder the labels refer to")
    if kind not in SOURCES:
        raise InputError(f"unknown source {kind!r}", f"use one of {', '.join(SOURCES)}")
    if kind in ("fairface", "celeba", "manifest"):
        if labels is None:
            raise InputError(f"source {kind} needs a label file", "pass --labels")
        if not Path(labels).is_file():
            raise InputError(f"label file not found: {labels}", "check --labels")
    label_file = Path(labels or "")
    loaders = {
        "fairface": lambda: _fairface(label_file, root),
        "utkface": lambda: _utkface(root),
        "celeba": lambda: _celeba(label_file, root),
        "manifest": lambda: _manifest(label_file, root),
        "folder": lambda: _folder(root),
    }
    records = loaders[kind]()
    return records[:limit] if limit is not None else records


def age_group(years: float) -> str:
    """FairFace age group for an age in years."""
    bounds = [(2, "0-2"), (9, "3-9"), (19, "10-19"), (29, "20-29"), (39, "30-39"), (49, "40-49"), (59, "50-59")]
    for upper, group in bounds:
        if years <= upper:
            return group
    return "60-69" if years <= 69 else "more than 70"


def _fairface(labels: Path, root: Path) -> list[FaceRecord]:
    rows = read_csv_rows(labels, required={"file", "age", "gender", "race"})
    return [FaceRecord(row["file"], root, {k: normalise(k, row[k]) for k in ("age", "gender", "race")}) for row in rows]


def _utkface(root: Path) -> list[FaceRecord]:
    records = []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        parts = path.name.split("_")
        if len(parts) < 3 or not parts[0].isdigit():
            continue  # not named age_gender_race_date: skipped
        known = {"age": age_group(int(parts[0]))}
        if parts[1] in ("0", "1"):
            known["gender"] = "Male" if parts[1] == "0" else "Female"
        if parts[2] in UTKFACE_RACES:
            known["race"] = UTKFACE_RACES[parts[2]]
        records.append(FaceRecord(str(path.relative_to(root)), root, known))
    if not records:
        raise InputError(f"no UTKFace-named images in {root}", "files must be named AGE_GENDER_RACE_DATE.jpg")
    return records


def _celeba(labels: Path, root: Path) -> list[FaceRecord]:
    lines = _read_text(labels).splitlines()
    try:
        names = lines[1].split()
        records = []
        for line in lines[2:]:
            cells = line.split()
            if not cells:
                continue
            values = dict(zip(names, cells[1:]))
            known = {"gender": "Male" if values["Male"] == "1" else "Female"}
            traits = [t.replace("_", " ").lower() for t in CELEBA_TRAITS if values.get(t) == "1" and t != "No_Beard"]
            if traits:
                known["traits"] = ", ".join(traits)
            records.append(FaceRecord(cells[0], root, known))
    except (IndexError, KeyError) as exc:
        raise InputError(f"{labels} is not a CelebA attribute file ({exc!r})", "pass list_attr_celeba.txt") from None
    return records


def _manifest(labels: Path, root: Path) -> list[FaceRecord]:
    if labels.suffix.lower() == ".jsonl":
        try:
            rows = [json.loads(line) for line in _read_text(labels).splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise InputError(f"cannot parse {labels}: {exc}", "one JSON object per line") from None
    else:
        rows = read_csv_rows(labels, required=set())
    records = []
    for row in rows:
        image = row.get("image") or row.get("file")
        if not image:
            raise InputError(f"{labels} has a row without an image or file column", "add one naming the image")
        known = {k: _clean(k, v) for k, v in row.items() if k not in ("image", "file") and v not in (None, "")}
        records.append(FaceRecord(str(image), root, known))
    return records


def _clean(key: str, value) -> str:
    """FairFace spellings for age/gender/race columns that use them; numeric ages become age groups."""
    text = str(value)
    if key == "age" and text.replace(".", "", 1).isdigit():
        return age_group(float(text))
    if key in ("age", "gender", "race"):
        try:
            return normalise(key, text)
        except InputError:
            return text
    return text


def _folder(root: Path) -> list[FaceRecord]:
    images = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise InputError(f"no images in {root}", "pass a folder holding JPEG/PNG/WebP files")
    return [FaceRecord(str(p.relative_to(root)), root) for p in images]


def _read_text(path: Path) -> str:
    """A label file's text (UTF-8, with or without a byte-order mark); an `InputError` naming the bad byte if not."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            f"{path} is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line})", "re-save the file as UTF-8"
        ) from None


def read_csv_rows(path: Path, required: set[str]) -> list[dict]:
    """Rows of a UTF-8 label CSV as dicts; an `InputError` for bytes that are not UTF-8 or missing columns."""
    reader = csv.DictReader(io.StringIO(_read_text(path), newline=""))
    missing = required - set(reader.fieldnames or [])
    if missing:
        raise InputError(f"{path} lacks column(s) {', '.join(sorted(missing))}", "fix the CSV header")
    return list(reader)
