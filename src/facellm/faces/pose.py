"""Head pose from the 68 landmarks, learned on AFLW2000-3D, in its convention (degrees):
yaw positive when the face turns towards the image's left, pitch positive when the chin is raised, roll positive when
the head leans clockwise in the image.

A solvePnP fit against a generic 3-D face (faces/geometry.py) measured on those 500 faces: yaw had the opposite sign,
pitch an offset of about 8 degrees, and errors grew fast past 30 degrees of yaw. So the angles come from three small
MLPs over the landmarks (centred, scaled to unit RMS radius), trained on the 500 AFLW2000 faces and their mirror
images (yaw and roll negate), averaged over the face and its mirror. `facellm faces train-pose` reproduces them. The
shipped networks never saw fold 1 (listed in the card, used by the benchmarks); the card's 5-fold figures predict
each face with networks trained without its fold. Turns past 60 degrees of yaw, where dlib's landmarks fold onto
the visible half of the face, are underestimated (most of the yaw error comes from them).
"""

from __future__ import annotations

import csv
import json
from functools import cache
from pathlib import Path

import numpy as np

from facellm.faces.geometry import Pose, landmarks, pnp_pose, pose_label
from facellm.faces.models import require_research_models, research_models_allowed

WEIGHTS = Path(__file__).parent / "weights" / "aflw2000-headpose-v1.pt"
AXES = ("yaw", "pitch", "roll")
SCALE = 30.0  # degrees per unit of network output
SEEDS = 3
# iBUG-68 index of each point's mirror partner (jaw, brows, nose, eyes, outer and inner lips).
MIRROR = [*range(16, -1, -1), *range(26, 16, -1), 27, 28, 29, 30, 35, 34, 33, 32, 31,
          45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40,
          54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60, 67, 66, 65]  # fmt: skip
FLIP = np.array([-1.0, 1.0, -1.0])  # how yaw, pitch, roll change in the mirror image


def normalised(points: np.ndarray) -> np.ndarray:
    """(n, 68, 2) landmarks -> (n, 136): centred on their mean, divided by their RMS radius."""
    centred = points - points.mean(axis=1, keepdims=True)
    radius = np.sqrt((centred**2).sum(axis=2).mean(axis=1))[:, None, None]
    return (centred / radius).reshape(len(points), -1)


def mirrored(points: np.ndarray) -> np.ndarray:
    flipped = points.copy()
    flipped[..., 0] = -flipped[..., 0]
    return flipped[:, MIRROR]


def _network():
    import torch.nn as nn

    return nn.Sequential(nn.Linear(136, 128), nn.GELU(), nn.Linear(128, 128), nn.GELU(), nn.Linear(128, 3))


def fit(points: np.ndarray, angles: np.ndarray, seeds: int = SEEDS, epochs: int = 600) -> list[dict]:
    """State dicts of `seeds` networks trained on the faces and their mirror images (full batch, AdamW)."""
    import torch

    x = torch.tensor(normalised(np.concatenate([points, mirrored(points)])), dtype=torch.float32)
    y = torch.tensor(np.concatenate([angles, angles * FLIP]) / SCALE, dtype=torch.float32)
    states = []
    for seed in range(seeds):
        torch.manual_seed(seed)
        net = _network()
        optimiser = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-3)
        for _ in range(epochs):
            loss = torch.nn.functional.smooth_l1_loss(net(x + 0.01 * torch.randn_like(x)), y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        states.append({k: v.half() for k, v in net.state_dict().items()})
    return states


def _networks(states: list[dict]) -> list:
    nets = []
    for state in states:
        net = _network()
        net.load_state_dict({k: v.float() for k, v in state.items()})
        nets.append(net.eval())
    return nets


def predict_angles(nets: list, points: np.ndarray) -> np.ndarray:
    """(n, 3) yaw, pitch, roll in degrees for (n, 68, 2) landmarks."""
    import torch

    with torch.inference_mode():

        def run(p):
            x = torch.tensor(normalised(p), dtype=torch.float32)
            return np.mean([net(x).numpy() for net in nets], axis=0) * SCALE

        return (run(points) + run(mirrored(points)) * FLIP) / 2


@cache
def shipped_networks() -> list:
    import torch

    from facellm.errors import ModelLoadError

    if not WEIGHTS.is_file():
        raise ModelLoadError(f"head-pose weights missing: {WEIGHTS}", "run facellm faces train-pose")
    return _networks(torch.load(WEIGHTS, map_location="cpu", weights_only=True))


def angles(points: np.ndarray) -> tuple[float, float, float]:
    """Yaw, pitch, roll of one face's 68 landmarks."""
    require_research_models("the head-pose model")
    yaw, pitch, roll = predict_angles(shipped_networks(), points[None])[0]
    return float(yaw), float(pitch), float(roll)


def head_pose(points: np.ndarray, image_size: tuple[int, int]) -> Pose:
    """The face's pose from its 68 landmarks: the learned model, or solvePnP when research-only weights are off."""
    if len(points) == 68 and research_models_allowed():
        yaw, pitch, roll = angles(points)
        return Pose(round(yaw, 1), round(pitch, 1), round(roll, 1), pose_label(yaw, pitch))
    return pnp_pose(points, image_size)


def _landmarks_of(path: str) -> np.ndarray | None:
    from facellm.faces.detect import detect_faces
    from facellm.images import read_image

    image = read_image(path)
    boxes = detect_faces(image)
    if not boxes:
        return None
    return landmarks(np.asarray(image), max(boxes, key=lambda b: b.width * b.height))


def load_aflw(folder: Path, workers: int = 0) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(files, landmarks, angles) of the AFLW2000 faces whose face is found and whose angles are within +-99 degrees
    (the usual AFLW2000 protocol)."""
    from facellm.faces.models import landmark_points
    from facellm.parallel import map_over_cores

    if landmark_points() != 68:
        from facellm.errors import InputError

        raise InputError("head pose training needs the 68-point landmarks", "unset FACELLM_LANDMARKS")
    with open(Path(folder) / "labels.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    found = map_over_cores(_landmarks_of, [str(Path(folder) / r["file"]) for r in rows], workers, chunksize=8)
    keep = [i for i, (r, p) in enumerate(zip(rows, found))
            if p is not None and all(abs(float(r[a])) < 99 for a in AXES)]  # fmt: skip
    angles_ = np.array([[float(rows[i][a]) for a in AXES] for i in keep])
    return [rows[i]["file"] for i in keep], np.stack([found[i] for i in keep]), angles_


def folds(count: int, k: int = 5) -> list[np.ndarray]:
    order = np.random.default_rng(0).permutation(count)
    return np.array_split(order, k)


def cross_validated(points: np.ndarray, angles_: np.ndarray, k: int = 5) -> np.ndarray:
    """Each face's angles predicted by networks trained on the other folds."""
    predicted = np.zeros_like(angles_)
    for held in folds(len(points), k):
        train = np.setdiff1d(np.arange(len(points)), held)
        predicted[held] = predict_angles(_networks(fit(points[train], angles_[train])), points[held])
    return predicted


def train(folder: Path, out: Path = WEIGHTS, workers: int = 0, say=print) -> dict:
    """Measure 5-fold error on AFLW2000, then train on all of it and save the weights and their card."""
    import torch

    files, points, angles_ = load_aflw(folder, workers)
    say(f"{len(files)} faces with landmarks and angles within 99 degrees")
    predicted = cross_validated(points, angles_)
    error = np.abs(predicted - angles_)
    report = {
        "faces": len(files),
        "mae_5fold_degrees": {a: round(float(e), 2) for a, e in zip(AXES, error.mean(axis=0))},
        "mae_5fold_mean": round(float(error.mean()), 2),
        "bin_accuracy_5fold": {a: round(100 * float(v), 1) for a, v in
                               zip(AXES, (np.floor(predicted / 10) == np.floor(angles_ / 10)).mean(axis=0))},
    }  # fmt: skip
    held = folds(len(points))[0]
    train_ = np.setdiff1d(np.arange(len(points)), held)
    states = fit(points[train_], angles_[train_])
    held_error = np.abs(predict_angles(_networks(states), points[held]) - angles_[held])
    report["held_out_faces"] = [files[i] for i in sorted(held)]
    report["mae_held_out_degrees"] = {a: round(float(e), 2) for a, e in zip(AXES, held_error.mean(axis=0))}
    report["mae_held_out_mean"] = round(float(held_error.mean()), 2)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(states, out)
    card = {"model": f"{SEEDS} MLPs (136-128-128-3) over dlib's 68 landmarks, mirror-averaged",
            "training_data": "AFLW2000-3D: 4 of the 5 folds of the faces in ../shared/data/aflw2000 (angles within "
                             "99 degrees) and their mirror images; the faces of fold 1 (held_out_faces) never seen",
            "convention": __doc__.split("\n")[1], "licence": "research use only (AFLW2000-3D; Zhu et al., CVPR 2016)",
            **report}  # fmt: skip
    out.with_suffix(".json").write_text(json.dumps(card, indent=1), encoding="utf-8")
    return report
