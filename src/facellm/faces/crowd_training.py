"""Training the crowd-counting head: density targets from annotated head positions, dlib's trunk maps over the cores,
the fit, the held-out errors and the model card. `facellm faces train-crowd` runs it."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facellm.errors import InputError
from facellm.faces import weight_files
from facellm.faces.crowd import (
    OFFSET,
    SCALE,
    SIDE,
    STRIDE,
    WEIGHTS,
    WIDTH,
    build_network,
    density_of,
    scaled,
    trunk_features,
)
from facellm.faces.splits import crowd, official_test_split
from facellm.images import read_image
from facellm.parallel import map_over_cores

if TYPE_CHECKING:
    import torch


def density_target(points: list[tuple[float, float]], grid: tuple[int, int]) -> np.ndarray:
    """(rows, columns) map summing to len(points): each head's unit mass spread bilinearly over the cells around it,
    then blurred by a Gaussian of one cell (rescaled so that heads near the border keep their mass)."""
    rows, columns = grid
    density = np.zeros(grid, np.float64)
    for x, y in points:
        gx = min(max((x - OFFSET) / STRIDE, 0.0), columns - 1.001)
        gy = min(max((y - OFFSET) / STRIDE, 0.0), rows - 1.001)
        x0, y0, fx, fy = int(gx), int(gy), gx - int(gx), gy - int(gy)
        density[y0, x0] += (1 - fx) * (1 - fy)
        density[y0, x0 + 1] += fx * (1 - fy)
        density[y0 + 1, x0] += (1 - fx) * fy
        density[y0 + 1, x0 + 1] += fx * fy
    kernel = np.exp(-(np.arange(-3, 4) ** 2) / 2.0)
    kernel /= kernel.sum()
    padded = np.pad(density, 3, mode="edge")
    blurred = np.apply_along_axis(
        np.convolve, 0, np.apply_along_axis(np.convolve, 1, padded, kernel, "valid"), kernel, "valid"
    )
    return (blurred * (len(points) / blurred.sum()) if points else blurred).astype(np.float32)


def fit(
    features: list[torch.Tensor],
    targets: list[np.ndarray],
    epochs: int = 150,
    batch: int = 8,
    crop: int = 40,
    seed: int = 0,
    say: Callable[[str], None] = print,
) -> dict:
    """Train the head on random crop x crop cell windows of the training maps (smaller when an image of the batch is
    narrower; mirrored at random): pixel MSE plus a small count term, AdamW with a one-cycle rate. Returns the state
    dict in half precision, as shipped."""
    import torch
    from torch.nn import functional

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    head = build_network()
    steps = max(1, len(features) // batch)
    optimiser = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, 1e-3, total_steps=epochs * steps)
    started = time.time()
    for epoch in range(epochs):
        order = rng.permutation(len(features))
        for step in range(steps):
            chosen = order[step * batch : (step + 1) * batch]
            xs, ys = [], []
            side = min([crop] + [min(features[i].shape[1:]) for i in chosen])  # narrow images: a smaller window
            for i in chosen:
                rows, columns = features[i].shape[1:]
                top, left = rng.integers(0, rows - side + 1), rng.integers(0, columns - side + 1)
                x = features[i][:, top : top + side, left : left + side].float()
                y = torch.from_numpy(targets[i][top : top + side, left : left + side].copy())[None] * SCALE
                if rng.random() < 0.5:
                    x, y = x.flip(-1), y.flip(-1)
                xs.append(x)
                ys.append(y)
            x, y = torch.stack(xs), torch.stack(ys)
            predicted = head(x)
            loss = functional.mse_loss(predicted, y) + 1e-3 * (predicted.sum((1, 2, 3)) - y.sum((1, 2, 3))).abs().mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
        if (epoch + 1) % 10 == 0 or epoch + 1 == epochs:
            say(f"epoch {epoch + 1}/{epochs}: loss {loss.item():.4f} ({time.time() - started:.0f} s)")
    return weight_files.half(head)


def load_points(folder: Path) -> dict[str, list[tuple[float, float]]]:
    """Head positions per image path, from a crowd folder's points.csv (pixels of the stored image)."""
    points: dict[str, list[tuple[float, float]]] = {}
    with open(Path(folder) / "points.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            points.setdefault(row["path"], []).append((float(row["x"]), float(row["y"])))
    return points


def _features_and_target(job: tuple[str, list]) -> tuple:

    path, points = job
    image = read_image(path)
    factor = SIDE / max(image.size)
    maps = trunk_features(np.asarray(scaled(image)))[0].half()
    return maps, density_target([(x * factor, y * factor) for x, y in points], (maps.shape[1], maps.shape[2]))


def prepared(folder: Path, items: list[tuple[Path, str]], workers: int = 0) -> tuple[list, list]:
    """Trunk maps and density targets of (image path, count) items, computed over the cores."""

    points = load_points(folder)
    jobs = [(str(path), points.get(str(Path(path).relative_to(folder)), [])) for path, _ in items]
    rows = map_over_cores(_features_and_target, jobs, workers, chunksize=4)
    return [r[0] for r in rows], [r[1] for r in rows]


def errors(head: torch.nn.Module, features: list, counts: list[float]) -> np.ndarray:
    """Predicted minus annotated count per image."""
    return np.array([density_of(f[None], head).sum() - c for f, c in zip(features, counts)])


def labelled_items(folder: Path) -> list[tuple[Path, str]]:
    """(image path, count) of every row of a crowd folder's labels.csv (the layout below)."""
    if official_test_split(Path(folder).resolve()):
        raise InputError(
            f"{folder} is an official test split, reserved for measurements made elsewhere",
            "pass a training or development folder",
        )
    labels = Path(folder) / "labels.csv"
    if not labels.is_file() or not (Path(folder) / "points.csv").is_file():
        raise InputError(
            f"{folder} has no labels.csv and points.csv",
            "pass a folder holding images/, labels.csv (path,count) and points.csv (path,x,y)",
        )
    with open(labels, newline="", encoding="utf-8") as f:
        return [(Path(folder) / r["path"], r["count"]) for r in csv.DictReader(f)]


def train(
    folder: Path,
    epochs: int = 150,
    out: Path = WEIGHTS,
    workers: int = 0,
    say: Callable[[str], None] = print,
    extra: tuple[Path, ...] = (),
) -> dict:
    """Train on the training split of ShanghaiTech B (faces/splits.py) and every image of the `extra` folders (same
    layout), report MAE and RMSE on B's held-out split, and save the weights with their model card."""

    folder = Path(folder)
    split = crowd(folder)
    started = time.time()
    train_maps, train_targets = prepared(folder, split.train, workers)
    for other in extra:
        maps, targets = prepared(Path(other), labelled_items(Path(other)), workers)
        train_maps, train_targets = train_maps + maps, train_targets + targets
    held_maps, _ = prepared(folder, split.held_out, workers)
    say(
        f"{len(train_maps)} training and {len(held_maps)} held-out images through dlib's trunk in "
        f"{time.time() - started:.0f} s"
    )
    state = fit(train_maps, train_targets, epochs, say=say)
    held_counts = np.array([float(c) for _, c in split.held_out])
    error = errors(weight_files.network(build_network, state), held_maps, list(held_counts))
    small = held_counts < 100
    report = {
        "held_out_images": len(held_maps),
        "training_images": len(train_maps),
        "epochs": epochs,
        "held_out_mae": round(float(np.abs(error).mean()), 2),
        "held_out_rmse": round(float(np.sqrt((error**2).mean())), 2),
        "held_out_mean_count": round(float(held_counts.mean()), 1),
        "held_out_mae_under_100_people": round(float(np.abs(error[small]).mean()), 2) if small.any() else None,
        "held_out_images_under_100_people": int(small.sum()),
    }
    weight_files.save(out, state, model_card(report, extra))
    return report


def model_card(report: dict, extra: tuple[Path, ...] = ()) -> dict:
    """The card of the trained head: what it is, what it was trained on (the `extra` folders too), the report."""
    extras = "".join(f"; every image of {Path(o).name}/ (labels.csv, points.csv)" for o in extra)
    return {
        "model": f"density head (dilated convolutions, {WIDTH} channels) over dlib's face-descriptor ResNet "
        "levels 2-3 (frozen), images scaled to a 640 px longer side; count = sum of the density map",
        "training_data": "ShanghaiTech part B train split, every image but each "
        f"4th by path (faces/splits.py), with its annotated head positions{extras}",
        "licence": "research use only (ShanghaiTech: Zhang et al., CVPR 2016; Mall: Chen et al., BMVC 2012)",
        "published_mae_on_shanghaitech_b_test": {
            "MCNN (Zhang et al., CVPR 2016)": 26.4,
            "CSRNet (Li et al., CVPR 2018)": 10.6,
        },
        **report,
    }
