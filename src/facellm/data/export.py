"""Export the done, unflagged QA pairs to the formats trainers read, split by image (no image in two splits).

- `sharegpt`: the layout of FaceLLM's released FairFaceGPT `dataset.json`, which LLaMA-Factory reads: a list of
  `{"image": path, "conversations": [{"from": "human", "value": "<image>\\nQ"}, {"from": "assistant", "value": A}]}`,
  plus a `dataset_info.json` that declares it to LLaMA-Factory.
- `llava`: `{"id", "image", "conversations": [{"from": "human", ...}, {"from": "gpt", ...}]}` records.
- `hf`: a Hugging Face `datasets` folder per split (`save_to_disk`) with an `image` column.
Image paths are relative to the image root of the source (as in the label CSV), so the files need no copying.
Each export writes a dataset card (README.md) with the sources, prompt version, teacher, counts and licence notes.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from facellm.data.store import QARecord, QAStore
from facellm.errors import InputError

FORMATS = ("sharegpt", "llava", "hf")


def split_of(image_hash: str, val_fraction: float, test_fraction: float) -> str:
    """Deterministic split from the image's content hash, so every QA pair of an image lands in the same split."""
    position = int(image_hash[:8], 16) / 0xFFFFFFFF
    if position < test_fraction:
        return "test"
    if position < test_fraction + val_fraction:
        return "val"
    return "train"


def exportable(store: QAStore) -> list[QARecord]:
    records = [r for r in store.records("done") if not r.flags]
    if not records:
        raise InputError(f"nothing to export in {store.run_dir}", "build first, or check `facellm data stats`")
    return records


def export_dataset(
    store: QAStore, fmt: str, out: str | Path, val_fraction: float = 0.05, test_fraction: float = 0.0
) -> dict[str, int]:
    """Write one file (or folder) per non-empty split under `out`; returns QA pairs per split."""
    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r}", f"use one of {', '.join(FORMATS)}")
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise InputError("split fractions must be in [0, 1) and sum below 1", "e.g. --val 0.05 --test 0")
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    splits: dict[str, list[QARecord]] = {}
    for record in exportable(store):
        splits.setdefault(split_of(record.image_hash, val_fraction, test_fraction), []).append(record)
    roots = {r.root for rs in splits.values() for r in rs}
    for split, records in splits.items():
        if fmt == "sharegpt":
            _write_json(target / f"{split}.json", [_sharegpt(r) for r in records])
        elif fmt == "llava":
            _write_json(target / f"{split}.json", [_llava(r) for r in records])
        else:
            _write_hf(target / split, records)
    if fmt == "sharegpt":
        info = {
            f"facellm_{split}": {
                "file_name": f"{split}.json",
                "formatting": "sharegpt",
                "columns": {"messages": "conversations", "images": "image"},
                "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "assistant"},
            }
            for split in splits
        }
        _write_json(target / "dataset_info.json", info)
    counts = {split: len(records) for split, records in splits.items()}
    (target / "README.md").write_text(dataset_card(store, fmt, splits, sorted(roots)), encoding="utf-8")
    return counts


def _sharegpt(record: QARecord) -> dict:
    return {
        "image": record.image,
        "conversations": [
            {"from": "human", "value": f"<image>\n{record.question}"},
            {"from": "assistant", "value": record.answer},
        ],
    }


def _llava(record: QARecord) -> dict:
    return {
        "id": record.key,
        "image": record.image,
        "conversations": [
            {"from": "human", "value": f"<image>\n{record.question}"},
            {"from": "gpt", "value": record.answer},
        ],
    }


def _write_hf(folder: Path, records: list[QARecord]) -> None:
    from datasets import Dataset, Features, Image, Value

    features = Features(
        {
            "image": Image(),
            "image_path": Value("string"),
            "aspect": Value("string"),
            "question": Value("string"),
            "answer": Value("string"),
            "teacher": Value("string"),
            "prompt_version": Value("string"),
        }
    )
    data = {
        "image": [str(Path(r.root) / r.image) for r in records],
        "image_path": [r.image for r in records],
        "aspect": [r.aspect for r in records],
        "question": [r.question for r in records],
        "answer": [r.answer for r in records],
        "teacher": [r.teacher for r in records],
        "prompt_version": [r.prompt_version for r in records],
    }
    Dataset.from_dict(data, features=features).save_to_disk(str(folder))


def _write_json(path: Path, payload) -> None:
    path.write_text(json.dumps(payload, indent=1, ensure_ascii=False), encoding="utf-8")


def dataset_card(store: QAStore, fmt: str, splits: dict[str, list[QARecord]], roots: list[str]) -> str:
    records = [r for rs in splits.values() for r in rs]
    teachers = Counter(r.teacher for r in records)
    versions = Counter(r.prompt_version for r in records)
    aspects = Counter(r.aspect for r in records)
    images = len({r.image_hash for r in records})
    template_note = (
        "\nSome answers were written by the offline `template` teacher from the labels alone, not by a vision-"
        "language model; they teach phrasing, not perception.\n"
        if "template" in teachers
        else ""
    )
    lines = [
        "# FairFaceGPT-style face QA dataset (built with facellm)",
        "",
        f"Format: `{fmt}`. {len(records)} question/answer pairs about {images} images.",
        "",
        "| split | pairs |",
        "|---|---|",
        *[f"| {split} | {len(rs)} |" for split, rs in sorted(splits.items())],
        "",
        f"- Teacher(s): {', '.join(f'{t} ({n})' for t, n in teachers.items())}",
        f"- Prompt version(s): {', '.join(versions)}",
        f"- Pairs per aspect: {', '.join(f'{a} {n}' for a, n in sorted(aspects.items()))}",
        f"- Image root(s) the paths are relative to: {', '.join(roots)}",
        "- Questions carry no labels; the teacher was told the known labels (attribute-aware prompting, as FaceLLM).",
        "- Splits are by image content hash: no image appears in two splits.",
        template_note,
        "## Licence notes",
        "",
        "Images keep their source dataset's licence (FairFace: CC BY 4.0, cite Kärkkäinen and Joo, WACV 2021).",
        "Answers written by a commercial API are subject to that provider's terms of use. Labels are the source",
        "dataset's annotations, not ground truth about the people shown; intended for research on face understanding.",
        "",
    ]
    return "\n".join(lines)
