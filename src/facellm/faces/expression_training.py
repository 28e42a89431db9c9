"""Training the expression networks: FER2013 from scratch (accuracy on PublicTest), then RAF-DB fine-tuning
(accuracy on its held-out split), and their model cards. `facellm faces train-expression` runs it."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from facellm.faces import splits, weight_files
from facellm.faces.expression import EXPRESSIONS, RAFDB_WEIGHTS, WEIGHTS, build_network, load_model
from facellm.faces.training_loop import one_cycle

if TYPE_CHECKING:
    import torch


def load_split(labels_csv: Path, usage: str, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    root = labels_csv.parent
    with open(labels_csv, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["usage"] == usage][:limit]
    images = np.stack([np.asarray(Image.open(root / r["path"]).convert("L").resize((48, 48))) for r in rows])
    labels = np.array([EXPRESSIONS.index(r["expression"]) for r in rows])
    return images, labels


def train(
    labels_csv: Path,
    epochs: int = 12,
    batch: int = 128,
    seed: int = 0,
    limit: int | None = None,
    out: Path = WEIGHTS,
    say: Callable[[str], None] = print,
) -> dict:
    """Train on FER2013 Training, evaluate on PublicTest, save the weights and card to `out`; returns the report."""
    import torch

    torch.manual_seed(seed)
    x_train, y_train = load_split(labels_csv, "Training", limit)
    x_test, y_test = load_split(labels_csv, "PublicTest")
    net = build_network()
    fit(
        net,
        x_train,
        y_train,
        epochs,
        batch,
        2e-3,
        seed,
        lambda: f"PublicTest {evaluate(net, x_test, y_test):.2f}%",
        say,
    )
    report = {
        "public_test_accuracy": round(evaluate(net, x_test, y_test), 2),
        "epochs": epochs,
        "training_images": len(x_train),
        "public_test_images": len(x_test),
    }
    weight_files.save(out, net.state_dict(), model_card(out, report))
    return report


def train_rafdb(
    folder: Path,
    epochs: int = 8,
    batch: int = 64,
    seed: int = 0,
    out: Path = RAFDB_WEIGHTS,
    fer: Path | None = None,
    say: Callable[[str], None] = print,
) -> dict:
    """Fine-tune the shipped FER2013 network on RAF-DB's training split (faces/splits.py; colour faces seen grey,
    48x48, each through its own colour cast), with FER2013's Training split beside it when `fer` (its labels.csv)
    is given; save it to `out`; returns the report (accuracy on the held-out split before and after, and on
    FER2013 PublicTest when `fer` is given)."""
    import torch

    torch.manual_seed(seed)
    casts = np.random.default_rng(seed)
    split = splits.expression(Path(folder))

    def grey(path: Path) -> np.ndarray:
        """48x48 grey; half the faces through a random colour cast (channel weights off by up to 40%)."""
        rgb = np.asarray(Image.open(path).convert("RGB").resize((48, 48), Image.Resampling.BILINEAR), dtype=np.float32)
        weights = np.array([0.299, 0.587, 0.114])
        if casts.random() < 0.5:
            weights = weights * casts.uniform(0.6, 1.4, 3)
            weights /= weights.sum()
        return (rgb @ weights).clip(0, 255).astype(np.uint8)

    def load(rows):
        return np.stack([grey(p) for p, _ in rows]), np.array([EXPRESSIONS.index(label) for _, label in rows])

    (x_train, y_train), (x_held, y_held) = load(split.train), load(split.held_out)
    rafdb_images = len(x_train)
    checks = [("held out", x_held, y_held)]
    if fer is not None:  # RAF-DB's faces three times (new casts each time), so they weigh about half
        parts = [(x_train, y_train), load(split.train), load(split.train), load_split(fer, "Training")]
        x_train, y_train = np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])
        checks.append(("FER2013 PublicTest", *load_split(fer, "PublicTest")))
    net = load_model(WEIGHTS)  # a copy of its own: the shipped one stays as it is
    before = evaluate(net, x_held, y_held)

    def monitor() -> str:
        return ", ".join(f"{name} {evaluate(net, x, y):.2f}%" for name, x, y in checks)

    fit(net, x_train, y_train, epochs, batch, 1e-3, seed, monitor, say)
    report = {
        "held_out_accuracy": round(evaluate(net, x_held, y_held), 2),
        "held_out_accuracy_of_fer2013_model": round(before, 2),
        "epochs": epochs,
        "training_images": len(x_train),
        "rafdb_training_images": rafdb_images,
        "held_out_images": len(x_held),
        "augmentation": "flips and shifts; zoom and tilt, light, low resolution, blur, noise, JPEG, occlusion "
        "(expression_training._augment); colour casts on half the RAF-DB faces",
    }
    if fer is not None:
        report["fer2013_public_test_accuracy"] = round(evaluate(net, *checks[1][1:]), 2)
    weight_files.save(out, net.state_dict(), model_card(out, report))
    return report


def fit(
    net: torch.nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    epochs: int,
    batch: int,
    lr: float,
    seed: int,
    monitor: Callable[[], str],
    say: Callable[[str], None],
) -> None:
    """Flips and shifts, label smoothing, faces/training_loop.py's loop."""
    import torch

    inputs = torch.tensor(images, dtype=torch.float32).unsqueeze(1) / 255.0
    targets = torch.tensor(labels)
    generator = torch.Generator().manual_seed(seed)

    def batch_loss(index):
        x = _augment(inputs[index], generator)
        return torch.nn.functional.cross_entropy(net((x - 0.5) / 0.25), targets[index], label_smoothing=0.1)

    one_cycle(net, len(inputs), epochs, batch, lr, generator, batch_loss, say, monitor)


def _augment(images, generator):
    """Flips and shifts (every face), then the photography faces arrive in, each with its own chance: zoom and tilt,
    low light or glare (gamma, contrast, brightness), low resolution, blur, sensor noise, JPEG blocks, and a hand or
    object over part of the face. `images`: N x 1 x 48 x 48 in [0, 1]."""
    import torch
    import torch.nn.functional as F

    def chosen(p: float) -> torch.Tensor:
        return torch.rand(len(images), generator=generator) < p

    def uniform(low: float, high: float, shape=()) -> torch.Tensor:
        return low + (high - low) * torch.rand((len(images), *shape), generator=generator)

    flip = chosen(0.5)
    images = torch.where(flip[:, None, None, None], images.flip(-1), images)
    padded = F.pad(images, (4, 4, 4, 4), mode="replicate")
    dx, dy = (int(v) for v in torch.randint(0, 9, (2,), generator=generator))
    images = padded[:, :, dy : dy + 48, dx : dx + 48]

    turn = chosen(0.4)  # zoom 0.85-1.15, tilt up to 10 degrees
    scale, angle = uniform(0.85, 1.15), uniform(-0.17, 0.17)
    theta = torch.zeros(len(images), 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = scale * torch.cos(angle), -scale * torch.sin(angle)
    theta[:, 1, 0], theta[:, 1, 1] = scale * torch.sin(angle), scale * torch.cos(angle)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    images = torch.where(
        turn[:, None, None, None], F.grid_sample(images, grid, padding_mode="border", align_corners=False), images
    )

    light = chosen(0.5)  # gamma 0.5-2 (dark to washed out), contrast 0.5-1.4, brightness -0.15..0.15
    gamma, contrast, shift = uniform(-0.7, 0.7).exp(), uniform(0.5, 1.4), uniform(-0.15, 0.15)
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    lit = (
        (images.clamp(1e-4, 1) ** gamma[:, None, None, None] - mean) * contrast[:, None, None, None]
        + mean
        + shift[:, None, None, None]
    ).clamp(0, 1)
    images = torch.where(light[:, None, None, None], lit, images)

    small = chosen(0.25)  # seen at 12-28 px, then enlarged again
    side = int(torch.randint(12, 29, (1,), generator=generator))
    coarse = F.interpolate(F.interpolate(images, size=side, mode="area"), size=48, mode="bilinear", align_corners=False)
    images = torch.where(small[:, None, None, None], coarse, images)

    blur = chosen(0.15)
    images = torch.where(
        blur[:, None, None, None], F.avg_pool2d(images, 3, stride=1, padding=1, count_include_pad=False), images
    )

    noisy = chosen(0.2)  # sensor noise, sigma 0.01-0.06
    noise = torch.randn(images.shape, generator=generator) * uniform(0.01, 0.06)[:, None, None, None]
    images = torch.where(noisy[:, None, None, None], (images + noise).clamp(0, 1), images)

    images = _jpeg(images, chosen(0.2), generator)

    covered = chosen(0.25)  # a 10-22 px patch of one grey level anywhere on the face
    for i in covered.nonzero().flatten().tolist():
        h, w = (int(v) for v in torch.randint(10, 23, (2,), generator=generator))
        top, left = (int(v) for v in torch.randint(0, 48 - 10, (2,), generator=generator))
        images[i, :, top : top + h, left : left + w] = float(torch.rand(1, generator=generator))
    return images


def _jpeg(images, which, generator):
    """The images marked in `which`, saved as JPEG at quality 10-50 and read back."""
    import io

    import torch

    images = images.clone()
    for i in which.nonzero().flatten().tolist():
        buffer = io.BytesIO()
        grey = Image.fromarray((images[i, 0].numpy() * 255).round().astype(np.uint8))
        grey.save(buffer, "JPEG", quality=int(torch.randint(10, 51, (1,), generator=generator)))
        images[i, 0] = torch.tensor(np.asarray(Image.open(buffer)), dtype=torch.float32) / 255.0
    return images


def evaluate(net: torch.nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    import torch

    net.eval()
    with torch.inference_mode():
        x = torch.tensor(images, dtype=torch.float32).unsqueeze(1) / 255.0
        logits = torch.cat([net((chunk - 0.5) / 0.25) + net((chunk.flip(-1) - 0.5) / 0.25) for chunk in x.split(512)])
    return 100.0 * float((logits.argmax(1).numpy() == labels).mean())


CARDS = {
    WEIGHTS.name: {
        "model": "small CNN (4 double-conv blocks, 32-192 channels) on 48x48 grey faces",
        "training_data": "FER2013 Training split (research use; Goodfellow et al. 2013)",
        "evaluation_data": "FER2013 PublicTest split",
        "known_biases": "FER2013 is web-collected, low-resolution and noisily labelled; 'disgust' has few examples",
    },
    RAFDB_WEIGHTS.name: {
        "model": "the FER2013 network fine-tuned on RAF-DB faces, seen grey at 48x48",
        "training_data": "FER2013 Training split, then every other image of RAF-DB's basic train split, "
        "minus every 5th image per "
        "expression (faces/splits.py); FaceXBench's RAF-DB questions use RAF-DB's "
        "train split, so `facellm eval overlap --train` on RAF-DB's train images "
        "flags the ones this model may have seen",
        "evaluation_data": "the held-out fifth of those RAF-DB train images",
        "licence": "research use only (RAF-DB academic licence, Li et al., CVPR 2017; FER2013)",
        "known_biases": "RAF-DB is web-collected and mostly adults; 'fear' and 'disgust' are rare",
    },
}


def model_card(path: Path, report: dict) -> dict:
    """The card of the weights written to `path` (FER2013's or RAF-DB's), with the training report."""
    return {
        **CARDS.get(path.name, CARDS[WEIGHTS.name]),
        **report,
        "intended_use": "research: expression facts for grounding and checking MLLM answers; not emotion "
        "recognition about real people's inner states",
    }
