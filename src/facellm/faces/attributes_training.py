"""Training the FairFace attribute network: read FairFace, extract aligned chips, fine-tune, score per race group and
write the model card. `facellm faces train-attributes` runs it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facellm.errors import FaceLLMError, InputError
from facellm.faces import weight_files
from facellm.faces.attributes import (
    ATTRIBUTES,
    FROZEN,
    WEIGHTS,
    FaceInputs,
    build_network,
    features,
    probabilities,
    trunk,
)
from facellm.faces.training_loop import one_cycle
from facellm.images import read_image
from facellm.labels import FAIRFACE_VOCAB, normalise
from facellm.parallel import map_over_cores

if TYPE_CHECKING:
    import torch


def _features_of_path(path: str) -> FaceInputs | None:

    try:
        return features(read_image(path))
    except FaceLLMError:
        return None


def extract(paths: list[Path], workers: int = 0) -> tuple[FaceInputs, list[int]]:
    """Inputs of every readable image (in parallel), stacked along a first axis, and the indices of those kept."""

    rows = map_over_cores(_features_of_path, [str(p) for p in paths], workers, chunksize=16)
    kept = [i for i, row in enumerate(rows) if row is not None]
    if not kept:
        raise InputError("none of the training images could be read", "check the FairFace folder")
    return FaceInputs(chip=np.stack([rows[i].chip for i in kept])), kept


def fit(
    inputs: FaceInputs,
    labels: dict[str, list[str]],
    epochs: int = 8,
    batch: int = 128,
    seed: int = 0,
    say: Callable[[str], None] = print,
) -> dict:
    """Fine-tune on all three attributes at once (summed cross-entropy, label smoothing 0.1; each example is the
    face or its mirror image at random); dlib's levels peak at a rate of 3e-4, the new heads at 3e-3. Returns the
    state dict in half precision, exactly as it is shipped and scored."""

    import torch

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    say(f"running dlib's first {FROZEN} levels over {len(inputs.chip)} faces and their mirror images...")
    plain, mirror = trunk(inputs), trunk(inputs, mirrored=True)
    targets = {a: torch.tensor([FAIRFACE_VOCAB[a].index(v) for v in values]) for a, values in labels.items()}
    net = build_network()

    def batch_loss(index):
        flip = torch.rand(len(index), generator=generator) < 0.5
        logits = net(torch.where(flip[:, None, None, None], mirror[index], plain[index]))
        return sum(
            torch.nn.functional.cross_entropy(logits[a], targets[a][index], label_smoothing=0.1) for a in targets
        )

    one_cycle(net, len(plain), epochs, batch, {"levels": 3e-4, "heads": 3e-3}, generator, batch_loss, say)
    return weight_files.half(net)


def accuracy_report(net: torch.nn.Module, inputs: FaceInputs, labels: dict[str, list[str]], races: list[str]) -> dict:
    """Accuracy per attribute, overall and per race group."""
    report = {}
    probs = probabilities(net, inputs)
    for attribute, values in labels.items():
        classes = FAIRFACE_VOCAB[attribute]
        guess = probs[attribute].argmax(axis=1)
        right = np.array([classes[g] == v for g, v in zip(guess, values)])
        per_race = {
            r: round(100 * float(right[[i for i, rr in enumerate(races) if rr == r]].mean()), 2)
            for r in sorted(set(races))
        }
        report[attribute] = {"accuracy": round(100 * float(right.mean()), 2), "per_race": per_race, "n": len(values)}
    return report


def model_card(training: str, evaluation: str, report: dict) -> dict:
    return {
        "model": "dlib's face descriptor ResNet on the 150 px aligned face chip: its first three levels (32-128 "
        "filters) as dlib trained them, its two 256-filter levels fine-tuned here (this file holds them), global "
        "average pooling, one linear head each for age group, gender and race; mirror-image averaging at prediction "
        "time",
        "training_data": training,
        "evaluation_data": evaluation,
        "accuracy": report,
        "licence": "fine-tuned on FairFace (CC BY 4.0; Karkkainen and Joo, WACV 2021) from dlib's public-domain face "
        "descriptor network (Davis King); cite FairFace when used",
        "intended_use": "research on face understanding: grounding and checking language-model answers, dataset "
        "statistics. Not for decisions about people.",
        "known_biases": "FairFace labels are annotators' perceptions, not self-reported identity; accuracy differs "
        "between race groups (see per_race) and dlib's network is weaker on children; age groups next to each "
        "other are often confused.",
    }


def page(name: str, card: dict) -> str:
    """The card as Markdown (MODEL_CARD.md beside the weights): its fields, then accuracy per race group."""
    lines = [
        f"# {name}",
        "",
        *(f"- **{k}**: {v}" for k, v in card.items() if k != "accuracy"),
        "",
        "| attribute | accuracy % | per race group |",
        "|---|---|---|",
    ]
    for attribute, r in card["accuracy"].items():
        per_race = ", ".join(f"{k} {v}" for k, v in r["per_race"].items())
        lines.append(f"| {attribute} | {r['accuracy']} | {per_race} |")
    return "\n".join(lines) + "\n"


def train(
    fairface: Path,
    train_limit: int,
    val_limit: int,
    epochs: int,
    out: Path | None = None,
    workers: int = 0,
    say: Callable[[str], None] = print,
) -> tuple[dict, Path]:
    """Train on FairFace train (first `train_limit` rows), score on val; save weights and card. Returns both."""
    import csv

    def split(name: str, limit: int):
        labels = fairface / f"fairface_label_{name}.csv"
        if not labels.is_file():
            raise InputError(f"{labels} not found", "pass --fairface with fairface_label_{train,val}.csv inside")
        with open(labels, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))[:limit]
        say(f"reading {len(rows)} {name} images (detection, alignment, descriptors)...")
        x, kept = extract([fairface / "fairface_img_margin025" / r["file"] for r in rows], workers)
        return x, [rows[i] for i in kept]

    def truth(rows) -> dict[str, list[str]]:
        return {a: [normalise(a, r[a]) for r in rows] for a in ATTRIBUTES}

    x_train, train_rows = split("train", train_limit)
    x_val, val_rows = split("val", val_limit)
    state = fit(x_train, truth(train_rows), epochs=epochs, say=say)
    report = accuracy_report(
        weight_files.network(build_network, state), x_val, truth(val_rows), truth(val_rows)["race"]
    )
    card = model_card(
        f"FairFace train 1-{train_limit} ({len(train_rows)} readable images), {epochs} epochs",
        f"FairFace val 1-{val_limit} ({len(val_rows)} readable images)",
        report,
    )
    target = out or WEIGHTS
    weight_files.save(target, state, card, ("MODEL_CARD.md", page(target.name, card)))
    return report, target
