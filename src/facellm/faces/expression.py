"""Facial expression: a small CNN trained here on FER2013 (48x48 grey faces, 7 expressions) for grey pictures, and
the RAF-DB colour model of faces/classifier.py for colour ones.

`facellm faces train-expression` reproduces the shipped weights from FER2013's Training split and reports accuracy
on its PublicTest split. Prediction crops the face box (or takes the whole image), converts it to 48x48 grey and
returns probabilities over the 7 FER classes.
"""

from __future__ import annotations

import csv
import json
import time
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

EXPRESSIONS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
WEIGHTS = Path(__file__).parent / "weights" / "fer2013-expression-v1.pt"


def build_network():
    import torch.nn as nn

    def block(cin: int, cout: int) -> list:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                nn.MaxPool2d(2)]  # fmt: skip

    return nn.Sequential(
        *block(1, 32), *block(32, 64), *block(64, 128), *block(128, 192),  # 48 -> 3
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.4), nn.Linear(192, len(EXPRESSIONS)),
    )  # fmt: skip


def load_split(labels_csv: Path, usage: str, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    root = labels_csv.parent
    with open(labels_csv, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["usage"] == usage][:limit]
    images = np.stack([np.asarray(Image.open(root / r["path"]).convert("L").resize((48, 48))) for r in rows])
    labels = np.array([EXPRESSIONS.index(r["expression"]) for r in rows])
    return images, labels


def train_expression(labels_csv: Path, epochs: int = 12, batch: int = 128, seed: int = 0,
                     limit: int | None = None, say=print) -> tuple[dict, dict]:  # fmt: skip
    """Train on FER2013 Training, evaluate on PublicTest; returns (state dict, report)."""
    import torch

    torch.manual_seed(seed)
    x_train, y_train = load_split(labels_csv, "Training", limit)
    x_test, y_test = load_split(labels_csv, "PublicTest")
    inputs = torch.tensor(x_train, dtype=torch.float32).unsqueeze(1) / 255.0
    targets = torch.tensor(y_train)
    net = build_network()
    optimiser = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=5e-4)
    steps = epochs * ((len(inputs) + batch - 1) // batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=2e-3, total_steps=steps)
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        net.train()
        started, total = time.time(), 0.0
        for index in torch.randperm(len(inputs), generator=generator).split(batch):
            images = _augment(inputs[index], generator)
            loss = torch.nn.functional.cross_entropy(net((images - 0.5) / 0.25), targets[index], label_smoothing=0.1)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(index)
        accuracy = evaluate(net, x_test, y_test)
        say(f"epoch {epoch + 1}/{epochs}: loss {total / len(inputs):.3f}, PublicTest {accuracy:.2f}% "
            f"({time.time() - started:.0f} s)")  # fmt: skip
    report = {"public_test_accuracy": round(evaluate(net, x_test, y_test), 2), "epochs": epochs,
              "training_images": len(inputs), "public_test_images": len(x_test)}  # fmt: skip
    return net.state_dict(), report


def _augment(images, generator):
    """Random horizontal flips and shifts of up to 4 pixels."""
    import torch

    flip = torch.rand(len(images), generator=generator) < 0.5
    images = torch.where(flip[:, None, None, None], images.flip(-1), images)
    padded = torch.nn.functional.pad(images, (4, 4, 4, 4), mode="replicate")
    dx, dy = (int(v) for v in torch.randint(0, 9, (2,), generator=generator))
    return padded[:, :, dy : dy + 48, dx : dx + 48]


def evaluate(net, images: np.ndarray, labels: np.ndarray) -> float:
    import torch

    net.eval()
    with torch.inference_mode():
        x = torch.tensor(images, dtype=torch.float32).unsqueeze(1) / 255.0
        logits = torch.cat([net((chunk - 0.5) / 0.25) + net((chunk.flip(-1) - 0.5) / 0.25) for chunk in x.split(512)])
    return 100.0 * float((logits.argmax(1).numpy() == labels).mean())


def save(state: dict, report: dict, path: Path = WEIGHTS) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    card = {
        "model": "small CNN (4 double-conv blocks, 32-192 channels) on 48x48 grey faces",
        "training_data": "FER2013 Training split (research use; Goodfellow et al. 2013)",
        "evaluation_data": "FER2013 PublicTest split",
        **report,
        "intended_use": "research: expression facts for grounding and checking MLLM answers; not emotion recognition "
        "about real people's inner states",
        "known_biases": "FER2013 is web-collected, low-resolution and noisily labelled; 'disgust' has few examples",
    }
    path.with_suffix(".json").write_text(json.dumps(card, indent=1), encoding="utf-8")


@cache
def _shipped_network():
    import torch

    from facellm.errors import ModelLoadError

    if not WEIGHTS.is_file():
        raise ModelLoadError(f"expression weights missing: {WEIGHTS}", "run facellm faces train-expression")
    net = build_network()
    net.load_state_dict(torch.load(WEIGHTS, map_location="cpu", weights_only=True))
    return net.eval()


def is_grey(image: Image.Image) -> bool:
    """True when the colour channels agree within 8 levels everywhere (a grey picture, as FER2013's)."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
    return int(np.abs(rgb - rgb.mean(axis=2, keepdims=True)).max()) <= 8


def predict_expression(image: Image.Image, box=None) -> dict[str, float]:
    """Probabilities of the 7 basic expressions for the face in `box` (or the whole image): the RAF-DB model
    (faces/classifier.py) for colour pictures, the FER2013 model for grey ones. Both are research-only weights."""
    import torch

    from facellm.faces.classifier import predict, require_research_models

    if not is_grey(image):
        return predict("expression", image, box)
    require_research_models("the FER2013 expression model")
    if box is not None:
        image = image.crop(
            (max(box.left, 0), max(box.top, 0), min(box.right, image.width), min(box.bottom, image.height))
        )
    x = torch.tensor(np.asarray(image.convert("L").resize((48, 48))), dtype=torch.float32)[None, None] / 255.0
    with torch.inference_mode():
        net = _shipped_network()
        logits = net((x - 0.5) / 0.25) + net((x.flip(-1) - 0.5) / 0.25)
        probs = torch.softmax(logits / 2, dim=1)[0].numpy()
    return {name: round(float(p), 4) for name, p in zip(EXPRESSIONS, probs)}
