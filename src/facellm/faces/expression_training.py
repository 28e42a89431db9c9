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
    say: Callable[[str], None] = print,
) -> dict:
    """Fine-tune the shipped FER2013 network on RAF-DB's training split (faces/splits.py; colour faces seen grey,
    48x48), save it to `out`; returns the report (accuracy on the held-out split before and after)."""
    import torch

    torch.manual_seed(seed)
    split = splits.expression(Path(folder))

    def load(rows):
        images = [np.asarray(Image.open(p).convert("L").resize((48, 48), Image.Resampling.BILINEAR)) for p, _ in rows]
        return np.stack(images), np.array([EXPRESSIONS.index(label) for _, label in rows])

    (x_train, y_train), (x_held, y_held) = load(split.train), load(split.held_out)
    net = load_model(WEIGHTS)  # a copy of its own: the shipped one stays as it is
    before = evaluate(net, x_held, y_held)
    fit(net, x_train, y_train, epochs, batch, 1e-3, seed, lambda: f"held out {evaluate(net, x_held, y_held):.2f}%", say)
    report = {
        "held_out_accuracy": round(evaluate(net, x_held, y_held), 2),
        "held_out_accuracy_of_fer2013_model": round(before, 2),
        "epochs": epochs,
        "training_images": len(x_train),
        "held_out_images": len(x_held),
    }
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
    """Random horizontal flips and shifts of up to 4 pixels."""
    import torch

    flip = torch.rand(len(images), generator=generator) < 0.5
    images = torch.where(flip[:, None, None, None], images.flip(-1), images)
    padded = torch.nn.functional.pad(images, (4, 4, 4, 4), mode="replicate")
    dx, dy = (int(v) for v in torch.randint(0, 9, (2,), generator=generator))
    return padded[:, :, dy : dy + 48, dx : dx + 48]


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
