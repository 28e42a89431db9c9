"""Training the CelebA attribute model (`celeb_attributes`): read CelebA's images and list_attr_celeba.txt, fit,
score per attribute, write the weights with their model card.

CelebA images numbered above RESERVED_AFTER are kept for measuring (DEVELOPERS.md): training refuses them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facellm.errors import FaceLLMError, InputError
from facellm.faces import weight_files
from facellm.faces.celeb_attributes import (
    NAMES,
    WEIGHTS,
    build_network,
    face_box,
    framed,
    probabilities,
    trunk,
)
from facellm.faces.training_loop import one_cycle
from facellm.images import read_image
from facellm.parallel import map_over_cores

if TYPE_CHECKING:
    import torch


RESERVED_AFTER = 9000  # CelebA images 9001 and above are for measuring only


def read_labels(path: Path) -> dict[str, np.ndarray]:
    """list_attr_celeba.txt (with or without its leading count line) -> file name -> 40 values of 0 or 1."""
    if not path.is_file():
        raise InputError(f"{path} not found", "pass --labels list_attr_celeba.txt")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    if lines and lines[0].strip().isdigit():
        lines = lines[1:]
    if not lines or tuple(lines[0].split()) != NAMES:
        raise InputError(
            f"{path} is not CelebA's attribute list (its header should name the 40 attributes)",
            "pass list_attr_celeba.txt",
        )
    labels = {}
    for line in lines[1:]:
        cells = line.split()
        if len(cells) == len(NAMES) + 1:
            labels[cells[0]] = (np.array(cells[1:], dtype=np.int8) > 0).astype(np.uint8)
    return labels


def number(name: str) -> int:
    """CelebA's image number from its file name (000123.jpg -> 123)."""
    return int(Path(name).stem)


def _frame_of_path(path: str) -> np.ndarray | None:

    try:
        image = read_image(path)
    except FaceLLMError:
        return None
    return framed(image, face_box(image))


def frames_of(paths: list[Path], workers: int = 0) -> tuple[np.ndarray, list[int]]:
    """Framed faces of every readable image (in parallel), stacked, and the indices of those kept."""

    rows = map_over_cores(_frame_of_path, [str(p) for p in paths], workers, chunksize=32)
    kept = [i for i, row in enumerate(rows) if row is not None]
    if not kept:
        raise InputError("none of the CelebA images could be read", "check --images")
    return np.stack([rows[i] for i in kept]), kept


def fit(
    frames: np.ndarray,
    targets: np.ndarray,
    epochs: int = 10,
    batch: int = 128,
    seed: int = 0,
    say: Callable[[str], None] = print,
) -> dict:
    """Fine-tune on all 40 attributes at once (binary cross-entropy; each example is the face or its mirror image at
    random); dlib's levels peak at a rate of 5e-4, the new head at 3e-3. Returns the state dict in half precision,
    exactly as it is shipped and scored."""
    import torch

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    say(f"running dlib's first levels over {len(frames)} faces and their mirror images...")
    plain, mirror = trunk(frames), trunk(frames, mirrored=True)
    truth = torch.from_numpy(targets.astype(np.float32))
    net = build_network()

    def batch_loss(index):
        flip = torch.rand(len(index), generator=generator) < 0.5
        logits = net(torch.where(flip[:, None, None, None], mirror[index], plain[index]))
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, truth[index])

    one_cycle(net, len(plain), epochs, batch, {"levels": 5e-4, "head": 3e-3}, generator, batch_loss, say)
    return weight_files.half(net)


def accuracy_report(net: torch.nn.Module, frames: np.ndarray, targets: np.ndarray) -> dict:
    """Per attribute: accuracy at p > 0.5 and the majority-class baseline on the same faces; their means."""
    guess = probabilities(net, frames) > 0.5
    rows = {}
    for i, name in enumerate(NAMES):
        positive = float(targets[:, i].mean())
        rows[name] = {
            "accuracy": round(100 * float((guess[:, i] == targets[:, i]).mean()), 2),
            "majority": round(100 * max(positive, 1 - positive), 2),
        }
    mean = {k: round(float(np.mean([r[k] for r in rows.values()])), 2) for k in ("accuracy", "majority")}
    return {"mean": mean, "n": len(frames), "per_attribute": rows}


def model_card(training: str, evaluation: str, report: dict) -> dict:
    return {
        "model": "dlib's face descriptor ResNet on the face framed as CelebA frames it (144 x 176 px): its first three "
        "levels (32-128 filters) as dlib trained them, its two 256-filter levels fine-tuned here (this file holds "
        "them), average and max pooling, one linear layer of 40 attribute logits; mirror-image averaging at "
        "prediction time",
        "training_data": training,
        "evaluation_data": evaluation,
        "accuracy": report,
        "licence": "fine-tuned on CelebA (Liu et al., 'Deep Learning Face Attributes in the Wild', ICCV 2015; "
        "non-commercial research use only) from dlib's public-domain face descriptor network (Davis King); "
        "RESEARCH-ONLY weights: FACELLM_RESEARCH_MODELS=0 runs without them",
        "intended_use": "research on face understanding: answering attribute questions, dataset statistics. Not for "
        "decisions about people.",
        "known_biases": "CelebA holds celebrities (mostly white, young, made up); its labels are annotators' "
        "judgements and several are subjective ('Attractive', 'Big_Nose', 'Oval_Face'), which the accuracy beside "
        "the majority baseline shows.",
    }


def page(name: str, card: dict) -> str:
    """The card as Markdown (CELEBA_MODEL_CARD.md beside the weights): its fields, then accuracy per attribute."""
    reports = {k: card[k] for k in ("accuracy", "held_out_accuracy") if card.get(k)}
    lines = [f"# {name}", "", *(f"- **{k}**: {v}" for k, v in card.items() if "accuracy" not in k)]
    for key, report in reports.items():
        lines += [
            "",
            f"{key.replace('_', ' ').capitalize()}: mean {report['mean']['accuracy']}% (majority baseline "
            f"{report['mean']['majority']}%) on {report['n']} faces.",
            "",
            "| attribute | accuracy % | majority % |",
            "|---|---|---|",
        ]
        lines += [f"| {a} | {r['accuracy']} | {r['majority']} |" for a, r in report["per_attribute"].items()]
    return "\n".join(lines) + "\n"


def _numbered(images: Path, labels: dict, first: int, last: int, needed: bool = True) -> tuple[list[Path], np.ndarray]:
    names = sorted(n for n in labels if first <= number(n) <= last and (images / n).is_file())
    if not names and not needed:
        return [], np.zeros((0, len(NAMES)), np.uint8)
    if not names:
        raise InputError(f"no CelebA images numbered {first}-{last} in {images}", "pass --images with CelebA's files")
    return [images / n for n in names], np.stack([labels[n] for n in names])


def train(
    images: Path,
    labels_file: Path,
    train_last: int = RESERVED_AFTER,
    dev_first: int | None = None,
    epochs: int = 10,
    out: Path = WEIGHTS,
    workers: int = 0,
    say: Callable[[str], None] = print,
) -> dict:
    """Train on CelebA images 1..train_last, score on dev_first..RESERVED_AFTER when dev_first is given (a
    development part carved out of the allowed images) and on the reserved images above RESERVED_AFTER that are
    there (measured only: nothing is chosen on them), save the weights and card. Returns the card."""
    if train_last > RESERVED_AFTER or (dev_first or 1) > RESERVED_AFTER:
        raise InputError(
            f"CelebA images above {RESERVED_AFTER} are reserved for measuring",
            f"train on images 1-{RESERVED_AFTER} at most",
        )
    if not images.is_dir():
        raise InputError(f"{images} is not a folder", "pass --images with CelebA's image files")
    labels = read_labels(labels_file)
    last = min(train_last, (dev_first or RESERVED_AFTER + 1) - 1)
    paths, targets = _numbered(images, labels, 1, last)
    say(f"framing {len(paths)} training faces...")
    frames, kept = frames_of(paths, workers)
    state = fit(frames, targets[kept], epochs=epochs, say=say)
    evaluation, report = "none (no development part asked for)", {}
    if dev_first:
        dev_paths, dev_targets = _numbered(images, labels, dev_first, RESERVED_AFTER)
        dev_frames, dev_kept = frames_of(dev_paths, workers)
        report = accuracy_report(weight_files.network(build_network, state), dev_frames, dev_targets[dev_kept])
        evaluation = f"CelebA images {dev_first}-{RESERVED_AFTER} ({len(dev_kept)} faces), a development part"
    card = model_card(
        f"CelebA images {number(paths[0].name):06d}.jpg-{number(paths[-1].name):06d}.jpg in "
        f"{images} ({len(kept)} faces), attributes from {labels_file.name}, {epochs} epochs",
        evaluation,
        report,
    )
    held_paths, held_targets = _numbered(images, labels, RESERVED_AFTER + 1, 10**9, needed=False)
    if held_paths:
        say(f"measuring on {len(held_paths)} reserved images above {RESERVED_AFTER}...")
        held_frames, held_kept = frames_of(held_paths, workers)
        card["held_out_data"] = (
            f"CelebA images {number(held_paths[0].name)}-{number(held_paths[-1].name)} "
            f"({len(held_kept)} faces), reserved for measuring"
        )
        card["held_out_accuracy"] = accuracy_report(
            weight_files.network(build_network, state), held_frames, held_targets[held_kept]
        )
    weight_files.save(out, state, card, ("CELEBA_MODEL_CARD.md", page(out.name, card)))
    return card
