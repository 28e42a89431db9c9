"""Training the head-pose regressions on AFLW2000-3D: the faces' views over the cores, ridge strengths chosen inside the
training folds, 5-fold errors by yaw, and the model card. `facellm faces train-pose` runs it."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np

from facellm.errors import InputError
from facellm.faces import pose, weight_files
from facellm.faces.detect import detect_faces
from facellm.faces.dlib_models import landmark_points
from facellm.faces.geometry import landmarks
from facellm.faces.pose import (
    AXES,
    FLIP,
    LANDMARK_WEIGHT,
    STRENGTHS,
    WEIGHTS,
    Inputs,
    PoseModel,
    Ridge,
    Views,
    model_inputs,
    stacked,
    views,
)
from facellm.images import read_image
from facellm.parallel import map_over_cores


def _ridges(inputs: np.ndarray, angles_: np.ndarray, strengths) -> list[Ridge]:
    """One ridge regression per strength (all axes), solved once through the eigenvectors of the Gram matrix."""
    mean, scale = inputs.mean(axis=0), inputs.std(axis=0) + 1e-6
    scale[-136:] /= LANDMARK_WEIGHT
    x = (inputs - mean) / scale
    values, vectors = np.linalg.eigh(x @ x.T)
    projected = vectors.T @ (angles_ - angles_.mean(axis=0))
    return [
        Ridge(mean, scale, x.T @ (vectors @ (projected / (values + s)[:, None])), angles_.mean(axis=0))
        for s in strengths
    ]


def _rows(inputs: tuple[np.ndarray, np.ndarray], angles_: np.ndarray, index) -> tuple[np.ndarray, np.ndarray]:
    """The faces in `index` and their mirror images as training rows."""
    plain, flipped = inputs
    return np.vstack([plain[index], flipped[index]]), np.vstack([angles_[index], angles_[index] * FLIP])


def fit(inputs: tuple[np.ndarray, np.ndarray], angles_: np.ndarray, index: np.ndarray, inner_folds: int = 4) -> Ridge:
    """A ridge model trained on the faces in `index` and their mirror images; each axis's strength is chosen by an
    inner cross-validation among them (mean absolute error)."""
    error = np.zeros((len(STRENGTHS), 3))
    for held in np.array_split(np.random.default_rng(1).permutation(index), inner_folds):
        for k, model in enumerate(_ridges(*_rows(inputs, angles_, np.setdiff1d(index, held)), STRENGTHS)):
            error[k] += np.abs(model.both_ways((inputs[0][held], inputs[1][held])) - angles_[held]).sum(axis=0)
    best = error.argmin(axis=0)
    models = _ridges(*_rows(inputs, angles_, index), STRENGTHS)
    coefficients = np.stack([models[best[a]].weights[:, a] for a in range(3)], axis=1)
    return Ridge(models[0].mean, models[0].scale, coefficients, models[0].intercept)


def fit_model(inputs: Inputs, angles_: np.ndarray, index: np.ndarray) -> PoseModel:
    """Both regressions trained on the faces in `index` (the upright one on the roll left after the turn)."""
    remainder = angles_ - np.outer(inputs.turn, [0, 0, 1])
    return PoseModel(fit(inputs.as_is, angles_, index), fit(inputs.upright, remainder, index))


def _face_of(path: str) -> Views | None:
    """The views of the largest face in the image, None when no face is found."""

    image = read_image(path).convert("RGB")
    boxes = detect_faces(image)
    if not boxes:
        return None
    box = max(boxes, key=lambda b: b.width * b.height)
    return views(image, box, landmarks(np.asarray(image), box))


def load_aflw(folder: Path, workers: int = 0) -> tuple[list[str], Views, np.ndarray]:
    """(files, views, angles) of the AFLW2000 faces whose face is found and whose angles are within +-99 degrees (the
    usual AFLW2000 protocol)."""

    if landmark_points() != 68:
        raise InputError("head pose training needs the 68-point landmarks", "unset FACELLM_LANDMARKS")
    with open(Path(folder) / "labels.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    found = map_over_cores(_face_of, [str(Path(folder) / r["file"]) for r in rows], workers, chunksize=8)
    keep = [
        i
        for i, (r, face) in enumerate(zip(rows, found))
        if face is not None and all(abs(float(r[a])) < 99 for a in AXES)
    ]
    angles_ = np.array([[float(rows[i][a]) for a in AXES] for i in keep])
    return [rows[i]["file"] for i in keep], stacked([found[i] for i in keep]), angles_


def folds(count: int, k: int = 5) -> list[np.ndarray]:
    order = np.random.default_rng(0).permutation(count)
    return np.array_split(order, k)


def cross_validated(inputs: Inputs, angles_: np.ndarray, k: int = 5) -> np.ndarray:
    """Each face's angles predicted by models trained on the other folds (strengths chosen within them)."""
    predicted = np.zeros_like(angles_)
    for held in folds(len(angles_), k):
        predicted[held] = fit_model(inputs, angles_, np.setdiff1d(np.arange(len(angles_)), held))(inputs.take(held))
    return predicted


def _errors_by_yaw(predicted: np.ndarray, angles_: np.ndarray) -> dict:
    error, turn = np.abs(predicted - angles_), np.abs(angles_[:, 0])
    report = {}
    for low, high in ((0, 30), (30, 60), (60, 99)):
        inside = (turn >= low) & (turn < high)
        if inside.any():
            means = error[inside].mean(axis=0)
            report[f"{low}-{high}"] = {
                "faces": int(inside.sum()),
                **{a: round(float(e), 2) for a, e in zip(AXES, means)},
            }
    return report


def train(folder: Path, out: Path = WEIGHTS, workers: int = 0, say: Callable[[str], None] = print) -> dict:
    """Measure 5-fold error on AFLW2000, then train on folds 2-5 and save the model and its card."""
    import torch

    files, faces, angles_ = load_aflw(folder, workers)
    say(f"{len(files)} faces with landmarks and angles within 99 degrees")
    inputs = model_inputs(faces)
    predicted = cross_validated(inputs, angles_)
    error = np.abs(predicted - angles_)
    report = {
        "faces": len(files),
        "mae_5fold_degrees": {a: round(float(e), 2) for a, e in zip(AXES, error.mean(axis=0))},
        "mae_5fold_mean": round(float(error.mean()), 2),
        "mae_5fold_by_true_yaw": _errors_by_yaw(predicted, angles_),
        "bin_accuracy_5fold": {
            a: round(100 * float(v), 1)
            for a, v in zip(AXES, (np.floor(predicted / 10) == np.floor(angles_ / 10)).mean(axis=0))
        },
    }
    held = folds(len(angles_))[0]
    model = fit_model(inputs, angles_, np.setdiff1d(np.arange(len(angles_)), held))
    held_error = np.abs(model(inputs.take(held)) - angles_[held])
    report["held_out_faces"] = [files[i] for i in sorted(held)]
    report["mae_held_out_degrees"] = {a: round(float(e), 2) for a, e in zip(AXES, held_error.mean(axis=0))}
    report["mae_held_out_mean"] = round(float(held_error.mean()), 2)
    fields = ("mean", "scale", "weights", "intercept")
    state = {
        part: {k: torch.from_numpy(getattr(getattr(model, part), k).astype(np.float32)) for k in fields}
        for part in ("as_is", "upright")
    }
    weight_files.save(out, state, model_card(report))
    return report


def model_card(report: dict) -> dict:
    """The card of the trained regressions, with the training report."""
    return {
        "model": "two ridge regressions over dlib's descriptor-network maps of two face crops (128 filters pooled "
        "4 x 4, 256 filters 3 x 3) and the 68 normalised landmarks, mirror-averaged: yaw and pitch from "
        "the image as it is, roll from the image turned until the eyes lie level (the turn plus the "
        "regression's remainder)",
        "training_data": "AFLW2000-3D: 4 of the 5 folds of 500 development faces (angles within "
        "99 degrees) and their mirror images; the faces of fold 1 (held_out_faces) never seen",
        "convention": pose.__doc__.split("\n")[1],
        "licence": "research use only (AFLW2000-3D; Zhu et al., CVPR 2016)",
        **report,
    }
