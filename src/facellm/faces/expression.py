"""Facial expression: a small CNN trained here on FER2013 (48x48 grey faces, 7 expressions), and the same network
fine-tuned on RAF-DB's in-the-wild colour faces, used for colour pictures.

`facellm faces train-expression --fer DIR` reproduces the FER2013 weights from its Training split (accuracy on
PublicTest); `--rafdb DIR` then fine-tunes them on RAF-DB's training split (accuracy on its held-out split).
Prediction crops the face box (or takes the whole image), converts it to 48x48 grey and returns probabilities over
the 7 classes.
"""

from __future__ import annotations

import csv
import json
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

from facellm.faces.training import one_cycle, small_cnn

EXPRESSIONS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
WEIGHTS = Path(__file__).parent / "weights" / "fer2013-expression-v1.pt"
RAFDB_WEIGHTS = WEIGHTS.with_name("rafdb-expression-v1.pt")


def build_network():
    return small_cnn(1, len(EXPRESSIONS))  # 48 -> 3 px after the four blocks


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
    net = build_network()
    _fit(net, x_train, y_train, epochs, batch, 2e-3, seed, lambda: f"PublicTest {evaluate(net, x_test, y_test):.2f}%",
         say)  # fmt: skip
    report = {"public_test_accuracy": round(evaluate(net, x_test, y_test), 2), "epochs": epochs,
              "training_images": len(x_train), "public_test_images": len(x_test)}  # fmt: skip
    return net.state_dict(), report


def train_rafdb(folder: Path, epochs: int = 8, batch: int = 64, seed: int = 0, say=print) -> tuple[dict, dict]:
    """Fine-tune the shipped FER2013 network on RAF-DB's training split (faces/splits.py; colour faces seen grey,
    48x48); report accuracy on the held-out split before and after."""
    import torch

    from facellm.faces import splits

    torch.manual_seed(seed)
    split = splits.expression(Path(folder))

    def load(rows):
        images = [np.asarray(Image.open(p).convert("L").resize((48, 48), Image.Resampling.BILINEAR)) for p, _ in rows]
        return np.stack(images), np.array([EXPRESSIONS.index(label) for _, label in rows])

    (x_train, y_train), (x_held, y_held) = load(split.train), load(split.held_out)
    net = _load(WEIGHTS)
    before = evaluate(net, x_held, y_held)
    _fit(net, x_train, y_train, epochs, batch, 1e-3, seed, lambda: f"held out {evaluate(net, x_held, y_held):.2f}%",
         say)  # fmt: skip
    report = {"held_out_accuracy": round(evaluate(net, x_held, y_held), 2),
              "held_out_accuracy_of_fer2013_model": round(before, 2), "epochs": epochs,
              "training_images": len(x_train), "held_out_images": len(x_held)}  # fmt: skip
    return net.state_dict(), report


def _fit(net, images: np.ndarray, labels: np.ndarray, epochs: int, batch: int, lr: float, seed: int, monitor, say):
    """Flips and shifts, label smoothing, faces/training.py's loop."""
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


def evaluate(net, images: np.ndarray, labels: np.ndarray) -> float:
    import torch

    net.eval()
    with torch.inference_mode():
        x = torch.tensor(images, dtype=torch.float32).unsqueeze(1) / 255.0
        logits = torch.cat([net((chunk - 0.5) / 0.25) + net((chunk.flip(-1) - 0.5) / 0.25) for chunk in x.split(512)])
    return 100.0 * float((logits.argmax(1).numpy() == labels).mean())


CARDS = {
    WEIGHTS.name: {"model": "small CNN (4 double-conv blocks, 32-192 channels) on 48x48 grey faces",
                   "training_data": "FER2013 Training split (research use; Goodfellow et al. 2013)",
                   "evaluation_data": "FER2013 PublicTest split",
                   "known_biases": "FER2013 is web-collected, low-resolution and noisily labelled; 'disgust' has few "
                                   "examples"},
    RAFDB_WEIGHTS.name: {"model": "the FER2013 network fine-tuned on RAF-DB faces, seen grey at 48x48",
                         "training_data": "FER2013 Training split, then RAF-DB's basic train split as held in "
                                          "../shared/data/rafdb (every other image of it) minus every 5th image per "
                                          "expression (faces/splits.py); FaceXBench's RAF-DB questions use RAF-DB's "
                                          "train split, so `facellm eval overlap --train ../shared/data/rafdb/images` "
                                          "flags the ones this model may have seen",
                         "evaluation_data": "the held-out fifth of ../shared/data/rafdb",
                         "licence": "research use only (RAF-DB academic licence, Li et al., CVPR 2017; FER2013)",
                         "known_biases": "RAF-DB is web-collected and mostly adults; 'fear' and 'disgust' are rare"},
}  # fmt: skip


def save(state: dict, report: dict, path: Path = WEIGHTS) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    card = {**CARDS.get(path.name, CARDS[WEIGHTS.name]), **report,
            "intended_use": "research: expression facts for grounding and checking MLLM answers; not emotion "
                            "recognition about real people's inner states"}  # fmt: skip
    path.with_suffix(".json").write_text(json.dumps(card, indent=1), encoding="utf-8")


def _load(path: Path):
    import torch

    from facellm.errors import ModelLoadError

    if not path.is_file():
        raise ModelLoadError(f"expression weights missing: {path}", "run facellm faces train-expression")
    net = build_network()
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return net.eval()


@cache
def _shipped_network(path: Path = WEIGHTS):
    return _load(path)


def is_grey(image: Image.Image) -> bool:
    """True when the colour channels agree within 8 levels everywhere (a grey picture, as FER2013's)."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
    return int(np.abs(rgb - rgb.mean(axis=2, keepdims=True)).max()) <= 8


def predict_expression(image: Image.Image, box=None) -> dict[str, float]:
    """Probabilities of the 7 basic expressions for the face in `box` (or the whole image): the RAF-DB network for
    colour pictures, the FER2013 one for grey pictures. Both are research-only weights."""
    import torch

    from facellm.faces.models import require_research_models

    require_research_models("the expression model")
    net = _shipped_network(WEIGHTS if is_grey(image) else RAFDB_WEIGHTS)
    if box is not None:
        image = image.crop(
            (max(box.left, 0), max(box.top, 0), min(box.right, image.width), min(box.bottom, image.height))
        )
    x = torch.tensor(np.asarray(image.convert("L").resize((48, 48))), dtype=torch.float32)[None, None] / 255.0
    with torch.inference_mode():
        logits = net((x - 0.5) / 0.25) + net((x.flip(-1) - 0.5) / 0.25)
        probs = torch.softmax(logits / 2, dim=1)[0].numpy()
    return {name: round(float(p), 4) for name, p in zip(EXPRESSIONS, probs)}
