"""The pretrained face models shipped on PyPI, loaded lazily and once per process.

dlib (from the `dlib-bin` wheel) supplies the HOG detector; `face-recognition-models` ships the CNN (MMOD) detector,
the 5- and 68-point landmark predictors and the ResNet 128-D face descriptor. Its package imports `pkg_resources`
at import time, so its folder is located without importing it.
"""

from __future__ import annotations

import importlib.util
import os
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from facellm.errors import InputError, ModelLoadError, ResearchModelsOff

if TYPE_CHECKING:
    import dlib


def models_dir() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError("face-recognition-models is not installed", 'run pip install -e "."')
    return Path(spec.submodule_search_locations[0]) / "models"


def _dlib():
    try:
        import dlib
    except ImportError:
        raise ModelLoadError("dlib is not installed", 'run pip install -e "." (it brings dlib-bin)') from None
    return dlib


def research_models_allowed() -> bool:
    """False when FACELLM_RESEARCH_MODELS=0: weights trained on research-only data are then never loaded."""
    value = os.environ.get("FACELLM_RESEARCH_MODELS", "1")
    if value not in ("0", "1"):
        raise InputError(f"FACELLM_RESEARCH_MODELS must be 0 or 1, not {value!r}", "set it to 0 or 1, or unset it")
    return value == "1"


def require_research_models(what: str) -> None:
    if not research_models_allowed():
        raise ResearchModelsOff(
            f"{what} uses weights trained on research-only data and FACELLM_RESEARCH_MODELS=0",
            "unset FACELLM_RESEARCH_MODELS to use it",
        )


@cache
def hog_detector() -> dlib.fhog_object_detector:
    return _dlib().get_frontal_face_detector()


@cache
def cnn_detector() -> dlib.cnn_face_detection_model_v1:
    return _dlib().cnn_face_detection_model_v1(str(models_dir() / "mmod_human_face_detector.dat"))


def landmark_points() -> int:
    """68 (default) or 5, from the FACELLM_LANDMARKS environment variable (`--landmarks` on the CLI). With 5, the
    68-point model, whose iBUG 300-W training data excludes commercial use, is never loaded: alignment, descriptors
    and attributes use the 5-point model, pose comes from 5 points, and eye/mouth openness is not measured."""
    value = os.environ.get("FACELLM_LANDMARKS", "68")
    if value not in ("5", "68"):
        raise InputError(f"FACELLM_LANDMARKS must be 5 or 68, not {value!r}", "set it to 5 or 68, or unset it")
    return int(value)


def landmark_predictor(points: int | None = None) -> dlib.shape_predictor:
    """dlib's 68- or 5-point landmark model; `points` None: FACELLM_LANDMARKS (default 68)."""
    points = points or landmark_points()
    if points not in (5, 68):
        raise InputError(f"landmark points must be 5 or 68, not {points!r}", "use 5 or 68")
    return _shape_predictor(points)


@cache
def _shape_predictor(points: int):
    return _dlib().shape_predictor(str(models_dir() / f"shape_predictor_{points}_face_landmarks.dat"))


@cache
def face_encoder() -> dlib.face_recognition_model_v1:
    """dlib's own runner of the descriptor network: the reference that tests and benchmarks compare against
    (descriptors are computed by the same weights in torch, `facellm.faces.descriptor_net`)."""
    return _dlib().face_recognition_model_v1(str(models_dir() / "dlib_face_recognition_resnet_model_v1.dat"))
