"""Training samples from ShareGPT or LLaVA files (JSON list or JSONL), as `facellm data export` writes them and as
FaceLLM's released FairFaceGPT `dataset.json` is.

A record holds `conversations` (`from`: human/user, gpt/assistant, system; `value`) or `messages` (`role`,
`content`), and `image` (one path) or `images` (a list), relative to the image root. `<image>` in a human turn marks
where an image goes; without it, the images open the first user turn. Rows whose images are missing or do not
decode are skipped and counted; rows longer than the cutoff are dropped and counted (never truncated through
image tokens); a row whose `<image>` placeholders and images differ in number is an error naming the row. The
result is a `datasets.Dataset` with `images`, `messages` (JSON) and `length` columns, so the trainer can group
samples of similar length.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from facellm.errors import FaceLLMError, InputError
from facellm.files import read_text
from facellm.images import read_image
from facellm.model.generate import estimate_tokens

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import ProcessorMixin


ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}


@dataclass
class LoadReport:
    """What happened to the rows of a dataset file."""

    rows: int = 0
    kept: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason -> rows

    def as_dict(self) -> dict:
        return {"rows": self.rows, "kept": self.kept, "skipped": dict(self.skipped)}


def read_records(path: str | Path) -> list[dict]:
    source = Path(path)
    text = read_text(source, "dataset", "pass dataset= a ShareGPT/LLaVA JSON or JSONL file")
    try:
        if source.suffix == ".jsonl":
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"cannot parse {source}: {exc}", "pass a JSON list or one JSON object per line") from None
    if not isinstance(data, list):
        raise InputError(f"{source} must hold a list of records", "use ShareGPT or LLaVA layout")
    return data


class PlaceholderMismatch(ValueError):
    """A row whose `<image>` placeholders and images differ in number (usually a wrong image column)."""


def to_sample(record: dict, image_root: Path) -> tuple[list[Path], list[dict]]:
    """(image paths, chat-template messages with image placeholders) for one record; `ValueError` if malformed."""
    turns = record.get("conversations") or record.get("messages")
    if not isinstance(turns, list) or not turns:
        raise ValueError("no conversations")
    images = record.get("images", record.get("image")) or []
    paths = [image_root / p for p in ([images] if isinstance(images, str) else images)]
    messages: list[dict] = []
    placed = 0
    for turn in turns:
        role = ROLES.get(turn.get("from") or turn.get("role") or "")
        text = turn.get("value", turn.get("content"))
        if role is None or not isinstance(text, str):
            raise ValueError("a turn without a known role or text")
        content: list[dict] = []
        if role == "user":
            pieces = text.split("<image>")
            for i, piece in enumerate(pieces):
                if i > 0:
                    content.append({"type": "image"})
                    placed += 1
                if piece.strip("\n"):
                    content.append({"type": "text", "text": piece.strip("\n")})
        else:
            content.append({"type": "text", "text": text})
        messages.append({"role": role, "content": content})
    if placed == 0 and paths:
        first_user = next((m for m in messages if m["role"] == "user"), None)
        if first_user is None:
            raise ValueError("images but no user turn")
        first_user["content"][:0] = [{"type": "image"} for _ in paths]
        placed = len(paths)
    if placed != len(paths):
        raise PlaceholderMismatch(f"{placed} <image> placeholder(s) for {len(paths)} image(s)")
    if not any(m["role"] == "assistant" for m in messages):
        raise ValueError("no assistant turn")
    return paths, messages


def training_dataset(
    path: str | Path,
    processor: ProcessorMixin,
    image_root: str | Path | None,
    cutoff_len: int,
    max_samples: int | None = None,
):
    """The kept samples as a `datasets.Dataset`, and a report of what was skipped and why."""
    from datasets import Dataset

    records = read_records(path)[:max_samples]
    root = Path(image_root) if image_root else Path(path).parent
    report = LoadReport(rows=len(records))
    rows: dict[str, list] = {"images": [], "messages": [], "length": [], "image_key": []}
    for number, record in enumerate(records):
        try:
            paths, messages = to_sample(record, root)
        except PlaceholderMismatch as exc:
            raise InputError(
                f"row {number} of {path} has {exc}",
                "give every <image> placeholder an image in the row's image or images field",
            ) from None
        except (ValueError, AttributeError, TypeError):
            report.skipped["malformed row"] += 1
            continue
        try:
            sizes = [_checked_size(p) for p in paths]
        except FaceLLMError as exc:
            report.skipped["missing image" if "not found" in exc.message else "unreadable image"] += 1
            continue
        length = estimate_tokens(processor, messages, sizes, add_generation_prompt=False)
        if length > cutoff_len:
            report.skipped[f"longer than cutoff_len={cutoff_len}"] += 1
            continue
        rows["images"].append([str(p) for p in paths])
        rows["messages"].append(json.dumps(messages, ensure_ascii=False))
        rows["length"].append(length)
        rows["image_key"].append(hashlib.sha256("|".join(sorted(str(p) for p in paths)).encode()).hexdigest())
        report.kept += 1
    if report.kept == 0:
        raise InputError(f"no usable samples in {path} ({dict(report.skipped)})", "check image_root and the file")
    return Dataset.from_dict(rows), report


def split_by_image(dataset: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset | None]:
    """Hold out about `fraction` of the samples, keeping all samples of one image set on the same side."""
    if fraction <= 0:
        return dataset, None
    salt = str(seed).encode()
    held = [
        int(hashlib.sha256(salt + key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < fraction
        for key in dataset["image_key"]
    ]
    train = dataset.select([i for i, h in enumerate(held) if not h])
    evaluation = dataset.select([i for i, h in enumerate(held) if h])
    return train, (evaluation if len(evaluation) else None)


def _checked_size(path: Path) -> tuple[int, int]:
    """(height, width) of an image that fully decodes (so training never meets a broken file)."""
    image = read_image(path)
    return image.height, image.width
