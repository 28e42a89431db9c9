"""Small face-crop classifiers trained here: anti-spoofing (liveness) and synthetic (GAN) faces.

Each `Task` names its classes, its input (the largest face's box widened by a margin, resized to a square of `side`
pixels, colour) and its weights file. One small CNN serves them all; it is trained from scratch on a development
split of ../shared/data (`facellm faces train-classifier TASK`), shipped in half precision with a JSON model card,
and predicts probabilities averaged with the mirror image. Weights trained on research-only data are refused when
FACELLM_RESEARCH_MODELS=0.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

from facellm.errors import ModelLoadError
from facellm.faces.models import require_research_models
from facellm.faces.training import one_cycle, small_cnn

WEIGHTS_DIR = Path(__file__).parent / "weights"


@dataclass(frozen=True)
class Task:
    name: str
    classes: tuple[str, ...]
    weights: str  # file name in faces/weights
    side: int  # input square side in pixels
    margin: float  # box widened by this fraction of its size on each side; None: the whole frame, no face crop
    data: str  # what it is trained on, for the card and `analyze --licenses`
    licence: str


TASKS = {
    "liveness": Task("liveness", ("bonafide", "attack"), "nuaa-liveness-v1.pt", 96, None,
                     "NUAA Photograph Imposter Database, official train split, subjects 1-6 (7-9 held out)",
                     "research use only (NUAA terms; Tan et al., ECCV 2010)"),
    "synthetic": Task("synthetic", ("real", "fake"), "synthetic-faces-v1.pt", 96, 0.25,
                      "real vs StyleGAN2 faces ('hard fake vs real faces' copy) in ../shared/data/synthetic_faces, "
                      "every 5th image of each class held out",
                      "research use only (source terms not stated; treated as research only)"),
}  # fmt: skip


def face_crop(image: Image.Image, task: Task, box=None) -> np.ndarray:
    """side x side x 3 uint8: the largest face (or `box`) widened by the task's margin; the whole image when the task
    reads whole frames (liveness: a print's border or a screen is evidence), when no face is found, or when the image
    is already a small crop (at most twice the side)."""
    from facellm.faces.detect import detect_faces

    image = image.convert("RGB")
    if task.margin is None:
        box = None
    elif box is None and min(image.size) > 2 * task.side:
        boxes = detect_faces(image)
        box = max(boxes, key=lambda b: b.width * b.height) if boxes else None
    if box is not None:
        dx, dy = task.margin * box.width, task.margin * box.height
        image = image.crop((max(0, box.left - dx), max(0, box.top - dy), min(image.width, box.right + dx),
                            min(image.height, box.bottom + dy)))  # fmt: skip
    return np.asarray(image.resize((task.side, task.side), Image.Resampling.BILINEAR))


def build_network(classes: int):
    return small_cnn(3, classes)


def _tensor(crops: np.ndarray):
    import torch

    return (torch.tensor(crops).permute(0, 3, 1, 2).float() / 255.0 - 0.5) / 0.25


def fit(crops: np.ndarray, labels: np.ndarray, classes: int, epochs: int = 20, batch: int = 64, seed: int = 0,
        say=print) -> dict:  # fmt: skip
    """Train from scratch (mirror flips, shifts of up to 1/16 of the side, brightness/contrast); returns the state
    dict in half precision, as shipped."""
    import torch

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    inputs, targets = _tensor(crops), torch.tensor(labels)
    weights = torch.tensor(len(labels) / (classes * np.maximum(np.bincount(labels, minlength=classes), 1)))
    net = build_network(classes)

    def batch_loss(index):
        logits = net(_augment(inputs[index], generator))
        return torch.nn.functional.cross_entropy(logits, targets[index], weight=weights.float(), label_smoothing=0.1)

    one_cycle(net, len(inputs), epochs, batch, 2e-3, generator, batch_loss, say)
    return {k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}


def _augment(x, generator):
    import torch

    flip = torch.rand(len(x), generator=generator) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    shift = max(1, x.shape[-1] // 16)
    padded = torch.nn.functional.pad(x, (shift,) * 4, mode="replicate")
    dx, dy = (int(v) for v in torch.randint(0, 2 * shift + 1, (2,), generator=generator))
    x = padded[:, :, dy : dy + x.shape[-2], dx : dx + x.shape[-1]]
    gain = 1 + 0.15 * (2 * torch.rand(len(x), 1, 1, 1, generator=generator) - 1)
    return x * gain + 0.15 * (2 * torch.rand(len(x), 1, 1, 1, generator=generator) - 1)


def probabilities(net, crops: np.ndarray) -> np.ndarray:
    """Class probabilities (rows: crops), averaged with the mirror image."""
    import torch

    net.eval()
    with torch.inference_mode():
        parts = [(torch.softmax(net(x), 1) + torch.softmax(net(x.flip(-1)), 1)) / 2 for x in _tensor(crops).split(256)]
    return torch.cat(parts).numpy()


def network_from_state(state: dict, classes: int):
    net = build_network(classes)
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return net.eval()


@cache
def shipped_network(name: str):
    import torch

    task = TASKS[name]
    path = WEIGHTS_DIR / task.weights
    if not path.is_file():
        raise ModelLoadError(f"{name} weights missing: {path}", f"run facellm faces train-classifier {name}")
    return network_from_state(torch.load(path, map_location="cpu", weights_only=True), len(task.classes))


def predict(name: str, image: Image.Image, box=None) -> dict[str, float]:
    """Probabilities of the task's classes for the largest face of `image` (or `box`)."""
    require_research_models(f"the {name} model")
    task = TASKS[name]
    probs = probabilities(shipped_network(name), face_crop(image, task, box)[None])[0]
    return {c: round(float(p), 4) for c, p in zip(task.classes, probs)}


def save(name: str, state: dict, report: dict, path: Path | None = None) -> Path:
    """Write the weights and their model card (JSON beside them)."""
    import torch

    task = TASKS[name]
    path = path or WEIGHTS_DIR / task.weights
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    crop = "whole frames" if task.margin is None else f"face crops (box widened by {task.margin:.0%} per side)"
    card = {"model": f"small CNN (4 double-conv blocks, 32-192 channels) on {task.side} px colour {crop}, "
                     "mirror-image averaging",
            "classes": list(task.classes), "training_data": task.data, "licence": task.licence, **report,
            "intended_use": "research: facts for grounding and checking language-model answers; not for decisions "
                            "about people"}  # fmt: skip
    path.with_suffix(".json").write_text(json.dumps(card, indent=1), encoding="utf-8")
    return path


def _crop_of(job: tuple[str, str]) -> np.ndarray | None:
    from facellm.errors import FaceLLMError
    from facellm.images import read_image

    path, name = job
    try:
        return face_crop(read_image(path), TASKS[name])
    except FaceLLMError:
        return None


def crops(name: str, paths: list[Path], workers: int = 0) -> tuple[np.ndarray, list[int]]:
    """Input crops of every readable image (in parallel) and the indices of those kept."""
    from facellm.parallel import map_over_cores

    rows = map_over_cores(_crop_of, [(str(p), name) for p in paths], workers, chunksize=16)
    kept = [i for i, row in enumerate(rows) if row is not None]
    return np.stack([rows[i] for i in kept]), kept


def train(name: str, folder: Path, epochs: int = 20, out: Path | None = None, workers: int = 0, say=print) -> dict:
    """Train the task's network on its training split of `folder`, score the held-out split, save weights + card."""
    from facellm.faces.splits import SPLITS

    task = TASKS[name]
    split = SPLITS[name](Path(folder))
    started = time.time()
    x_train, kept = crops(name, [p for p, _ in split.train], workers)
    y_train = np.array([task.classes.index(split.train[i][1]) for i in kept])
    x_held, kept_held = crops(name, [p for p, _ in split.held_out], workers)
    y_held = np.array([task.classes.index(split.held_out[i][1]) for i in kept_held])
    say(f"{len(x_train)} training and {len(x_held)} held-out crops in {time.time() - started:.0f} s")
    state = fit(x_train, y_train, len(task.classes), epochs=epochs, say=say)
    guess = probabilities(network_from_state(state, len(task.classes)), x_held).argmax(1)
    per_class = {c: round(100 * float((guess[y_held == k] == k).mean()), 2) for k, c in enumerate(task.classes)
                 if (y_held == k).any()}  # fmt: skip
    report = {"held_out_accuracy": round(100 * float((guess == y_held).mean()), 2), "held_out_per_class": per_class,
              "training_images": len(x_train), "held_out_images": len(x_held), "epochs": epochs}  # fmt: skip
    report["weights"] = str(save(name, state, report, out))
    return report
