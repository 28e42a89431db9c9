"""Training the face-crop classifiers (liveness, synthetic faces) on development splits of their labelled sets, with
their model cards. `facellm faces train-classifier TASK` runs it."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facellm.errors import FaceLLMError
from facellm.faces import weight_files
from facellm.faces.classifier import TASKS, WEIGHTS_DIR, Task, as_tensor, build_network, face_crop, probabilities
from facellm.faces.splits import SPLITS
from facellm.faces.training_loop import one_cycle
from facellm.images import read_image
from facellm.parallel import map_over_cores

if TYPE_CHECKING:
    pass


def fit(
    crops: np.ndarray,
    labels: np.ndarray,
    classes: int,
    epochs: int = 20,
    batch: int = 64,
    seed: int = 0,
    say: Callable[[str], None] = print,
) -> dict:
    """Train from scratch (mirror flips, shifts of up to 1/16 of the side, brightness/contrast); returns the state
    dict in half precision, as shipped."""
    import torch

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    inputs, targets = as_tensor(crops), torch.tensor(labels)
    class_weights = torch.tensor(len(labels) / (classes * np.maximum(np.bincount(labels, minlength=classes), 1)))
    net = build_network(classes)

    def batch_loss(index):
        logits = net(_augment(inputs[index], generator))
        return torch.nn.functional.cross_entropy(
            logits, targets[index], weight=class_weights.float(), label_smoothing=0.1
        )

    one_cycle(net, len(inputs), epochs, batch, 2e-3, generator, batch_loss, say)
    return weight_files.half(net)


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


def model_card(task: Task, report: dict) -> dict:
    """The card of a task's weights, with the training report."""
    crop = "whole frames" if task.margin is None else f"face crops (box widened by {task.margin:.0%} per side)"
    return {
        "model": f"small CNN (4 double-conv blocks, 32-192 channels) on {task.side} px colour {crop}, "
        "mirror-image averaging",
        "classes": list(task.classes),
        "training_data": task.data,
        "licence": task.licence,
        **report,
        "intended_use": "research: facts for grounding and checking language-model answers; not for decisions "
        "about people",
    }


def _crop_of(job: tuple[str, str]) -> np.ndarray | None:

    path, name = job
    try:
        return face_crop(read_image(path), TASKS[name])
    except FaceLLMError:
        return None


def crops(name: str, paths: list[Path], workers: int = 0) -> tuple[np.ndarray, list[int]]:
    """Input crops of every readable image (in parallel) and the indices of those kept."""

    rows = map_over_cores(_crop_of, [(str(p), name) for p in paths], workers, chunksize=16)
    kept = [i for i, row in enumerate(rows) if row is not None]
    return np.stack([rows[i] for i in kept]), kept


def train(
    name: str,
    folder: Path,
    epochs: int = 20,
    out: Path | None = None,
    workers: int = 0,
    say: Callable[[str], None] = print,
) -> dict:
    """Train the task's network on its training split of `folder`, score the held-out split, save weights + card."""

    task = TASKS[name]
    split = SPLITS[name](Path(folder))
    started = time.time()
    x_train, kept = crops(name, [p for p, _ in split.train], workers)
    y_train = np.array([task.classes.index(split.train[i][1]) for i in kept])
    x_held, kept_held = crops(name, [p for p, _ in split.held_out], workers)
    y_held = np.array([task.classes.index(split.held_out[i][1]) for i in kept_held])
    say(f"{len(x_train)} training and {len(x_held)} held-out crops in {time.time() - started:.0f} s")
    state = fit(x_train, y_train, len(task.classes), epochs=epochs, say=say)
    net = weight_files.network(lambda: build_network(len(task.classes)), state)
    guess = probabilities(net, x_held).argmax(1)
    per_class = {
        c: round(100 * float((guess[y_held == k] == k).mean()), 2)
        for k, c in enumerate(task.classes)
        if (y_held == k).any()
    }
    report = {
        "held_out_accuracy": round(100 * float((guess == y_held).mean()), 2),
        "held_out_per_class": per_class,
        "training_images": len(x_train),
        "held_out_images": len(x_held),
        "epochs": epochs,
    }
    path = out or WEIGHTS_DIR / task.weights
    report["weights"] = str(path)
    weight_files.save(path, state, model_card(task, report))
    return report
