"""Crowd counting: a density map whose sum is the number of people, for scenes where face detection finds few heads.

The image is scaled so that its longer side is 640 px (the scale of ShanghaiTech part B, which it was trained on) and
run through the first three levels of dlib's face-descriptor ResNet (frozen, as dlib trained them on about 3 million
faces; see `descriptor_net`). The 64-filter maps (1/8 of the image) and the upsampled 128-filter maps (1/16) feed a
small head of dilated convolutions trained here (`facellm faces train-crowd`) to predict one density value per 8 x 8
pixel cell. Training targets put each annotated head's unit mass on its cell (bilinearly) and blur it by one cell.
The shipped weights are trained on ShanghaiTech B's train split and Mall frames 1-800, every 4th (research use
only), so they are refused when FACELLM_RESEARCH_MODELS=0.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

from facellm.faces.descriptor_net import LEVELS, descriptor_network, first_conv_of_level, residual_levels
from facellm.faces.models import require_research_models
from facellm.faces.training import write_weights

WEIGHTS = Path(__file__).parent / "weights" / "shanghaitech-mall-crowd-v2.pt"
SIDE = 640  # the longer side images are counted at (ShanghaiTech B's)
FINE, COARSE = 1, 2  # the levels of dlib's network (indices into LEVELS) whose maps feed the head
STRIDE = 2 ** (FINE + 2)  # pixels per density cell: the fine level's maps are at 1/STRIDE of the image
OFFSET = STRIDE - 1  # cell (0, 0) is centred near pixel (OFFSET, OFFSET)
CHANNELS = LEVELS[FINE][0] + LEVELS[COARSE][0]
SCALE = 100.0  # the head predicts SCALE x density (keeps its targets near 1)
WIDTH = 48


@dataclass
class CrowdCount:
    count: float  # estimated people in the image
    density: np.ndarray  # people per cell, (rows, columns) at 1/8 of the counted image
    size: tuple[int, int]  # (width, height) the image was counted at


def scaled(image: Image.Image) -> Image.Image:
    """The image in RGB with its longer side at SIDE pixels."""
    image = image.convert("RGB")
    factor = SIDE / max(image.size)
    size = (max(32, round(image.width * factor)), max(32, round(image.height * factor)))
    return image.resize(size, Image.Resampling.BILINEAR) if size != image.size else image


def trunk_features(rgb: np.ndarray):
    """(1, CHANNELS, rows, columns) float maps of one (height, width, 3) uint8 image: dlib's 64-filter level and its
    128-filter level upsampled to the same grid."""
    import torch
    from torch.nn import functional

    net = descriptor_network()
    with torch.inference_mode():
        x = (torch.from_numpy(np.array(rgb))[None].permute(0, 3, 1, 2).float() - net.means) / 256.0
        x = functional.max_pool2d(functional.relu(net.first(x)), 3, 2)
        fine = residual_levels(net.convs, x, LEVELS[: FINE + 1])
        coarse = residual_levels(net.convs[first_conv_of_level(FINE + 1) :], fine, LEVELS[FINE + 1 : COARSE + 1])
        coarse = functional.interpolate(coarse, size=fine.shape[2:], mode="bilinear", align_corners=False)
        return torch.cat([fine, coarse], 1)


def build_head():
    """Dilated convolutions from the trunk's maps to SCALE x the density of each cell."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(CHANNELS, WIDTH, 1), nn.ReLU(),
        nn.Conv2d(WIDTH, WIDTH, 3, padding=2, dilation=2), nn.ReLU(),
        nn.Conv2d(WIDTH, WIDTH, 3, padding=2, dilation=2), nn.ReLU(),
        nn.Conv2d(WIDTH, WIDTH // 2, 3, padding=3, dilation=3), nn.ReLU(),
        nn.Conv2d(WIDTH // 2, 1, 1),
    )  # fmt: skip


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
    blurred = np.apply_along_axis(np.convolve, 0, np.apply_along_axis(np.convolve, 1, padded, kernel, "valid"),
                                  kernel, "valid")  # fmt: skip
    return (blurred * (len(points) / blurred.sum()) if points else blurred).astype(np.float32)


def fit(features, targets, epochs: int = 150, batch: int = 8, crop: int = 40, seed: int = 0, say=print) -> dict:
    """Train the head on random crop x crop cell windows of the training maps (smaller when an image of the batch is
    narrower; mirrored at random): pixel MSE plus a small count term, AdamW with a one-cycle rate. Returns the state
    dict in half precision, as shipped."""
    import torch
    from torch.nn import functional

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    head = build_head()
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
    return {k: v.half() for k, v in head.state_dict().items()}


def head_from_state(state: dict):
    head = build_head()
    head.load_state_dict({k: v.float() for k, v in state.items()})
    return head.eval()


@cache
def shipped_head():
    import torch

    from facellm.errors import ModelLoadError

    if not WEIGHTS.is_file():
        raise ModelLoadError(f"crowd-counting weights missing: {WEIGHTS}", "run facellm faces train-crowd")
    return head_from_state(torch.load(WEIGHTS, map_location="cpu", weights_only=True))


def density_of(features, head) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return (head(features.float())[0, 0] / SCALE).numpy()


def usable_head():
    """The shipped head, once it is known that its research-only weights may be used and are there."""
    require_research_models("the crowd-counting model")
    return shipped_head()


def count_people(image: Image.Image, head=None) -> CrowdCount:
    """The estimated number of people in `image` and its density map (`head`: the shipped one when None)."""
    head = head or usable_head()
    image = scaled(image)
    density = density_of(trunk_features(np.asarray(image)), head)
    return CrowdCount(float(max(density.sum(), 0.0)), density, image.size)


def density_picture(image: Image.Image, result: CrowdCount) -> Image.Image:
    """The counted image with its density map laid over it in red (brighter: more people per cell)."""
    image = scaled(image)
    density = np.clip(result.density, 0, None)
    peak = max(float(density.max()), 1e-6)
    rows, columns = density.shape
    cells = Image.fromarray(np.uint8(255 * density / peak)).resize(
        (columns * STRIDE, rows * STRIDE), Image.Resampling.BILINEAR
    )
    heat = Image.new("L", image.size)
    heat.paste(cells, (OFFSET - STRIDE // 2, OFFSET - STRIDE // 2))
    red = Image.merge("RGB", (heat, Image.new("L", image.size), Image.new("L", image.size)))
    return Image.blend(image, red, 0.5)


def load_points(folder: Path) -> dict[str, list[tuple[float, float]]]:
    """Head positions per image path, from ../shared/data/shanghaitech_b/points.csv (pixels of the stored image)."""
    points: dict[str, list[tuple[float, float]]] = {}
    with open(Path(folder) / "points.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            points.setdefault(row["path"], []).append((float(row["x"]), float(row["y"])))
    return points


def _features_and_target(job: tuple[str, list]) -> tuple:
    from facellm.images import read_image

    path, points = job
    image = read_image(path)
    factor = SIDE / max(image.size)
    maps = trunk_features(np.asarray(scaled(image)))[0].half()
    return maps, density_target([(x * factor, y * factor) for x, y in points], tuple(maps.shape[1:]))


def prepared(folder: Path, items: list[tuple[Path, str]], workers: int = 0) -> tuple[list, list]:
    """Trunk maps and density targets of (image path, count) items, computed over the cores."""
    from facellm.parallel import map_over_cores

    points = load_points(folder)
    jobs = [(str(path), points.get(str(Path(path).relative_to(folder)), [])) for path, _ in items]
    rows = map_over_cores(_features_and_target, jobs, workers, chunksize=4)
    return [r[0] for r in rows], [r[1] for r in rows]


def errors(head, features: list, counts: list[float]) -> np.ndarray:
    """Predicted minus annotated count per image."""
    return np.array([density_of(f[None], head).sum() - c for f, c in zip(features, counts)])


def labelled_items(folder: Path) -> list[tuple[Path, str]]:
    """(image path, count) of every row of a crowd folder's labels.csv (../shared/data/shanghaitech_b's layout)."""
    labels = Path(folder) / "labels.csv"
    if not labels.is_file() or not (Path(folder) / "points.csv").is_file():
        from facellm.errors import InputError

        raise InputError(f"{folder} has no labels.csv and points.csv", "pass a folder laid out as ShanghaiTech B's "
                         "in ../shared/data: images/, labels.csv (path,count), points.csv (path,x,y)")  # fmt: skip
    with open(labels, newline="", encoding="utf-8") as f:
        return [(Path(folder) / r["path"], r["count"]) for r in csv.DictReader(f)]


def train(folder: Path, epochs: int = 150, out: Path = WEIGHTS, workers: int = 0, say=print,
          extra: tuple[Path, ...] = ()) -> dict:  # fmt: skip
    """Train on the training split of ShanghaiTech B (faces/splits.py) and every image of the `extra` folders (same
    layout), report MAE and RMSE on B's held-out split, and save the weights with their model card."""

    from facellm.faces.splits import crowd

    folder = Path(folder)
    split = crowd(folder)
    started = time.time()
    train_maps, train_targets = prepared(folder, split.train, workers)
    for other in extra:
        maps, targets = prepared(Path(other), labelled_items(Path(other)), workers)
        train_maps, train_targets = train_maps + maps, train_targets + targets
    held_maps, _ = prepared(folder, split.held_out, workers)
    say(f"{len(train_maps)} training and {len(held_maps)} held-out images through dlib's trunk in "
        f"{time.time() - started:.0f} s")  # fmt: skip
    state = fit(train_maps, train_targets, epochs, say=say)
    held_counts = np.array([float(c) for _, c in split.held_out])
    error = errors(head_from_state(state), held_maps, list(held_counts))
    small = held_counts < 100
    report = {"held_out_images": len(held_maps), "training_images": len(train_maps), "epochs": epochs,
              "held_out_mae": round(float(np.abs(error).mean()), 2),
              "held_out_rmse": round(float(np.sqrt((error**2).mean())), 2),
              "held_out_mean_count": round(float(held_counts.mean()), 1),
              "held_out_mae_under_100_people": round(float(np.abs(error[small]).mean()), 2) if small.any() else None,
              "held_out_images_under_100_people": int(small.sum())}  # fmt: skip
    extras = "".join(f"; every image of {Path(o).name}/ (labels.csv, points.csv)" for o in extra)
    card = {"model": f"density head (dilated convolutions, {WIDTH} channels) over dlib's face-descriptor ResNet "
                     "levels 2-3 (frozen), images scaled to a 640 px longer side; count = sum of the density map",
            "training_data": "ShanghaiTech part B train split in ../shared/data/shanghaitech_b, every image but each "
                             f"4th by path (faces/splits.py), with its annotated head positions{extras}",
            "licence": "research use only (ShanghaiTech: Zhang et al., CVPR 2016; Mall: Chen et al., BMVC 2012)",
            "published_mae_on_shanghaitech_b_test": {"MCNN (Zhang et al., CVPR 2016)": 26.4,
                                                     "CSRNet (Li et al., CVPR 2018)": 10.6},
            **report}  # fmt: skip
    write_weights(state, out, card)
    return report
