"""The pretrained face models shipped on PyPI, loaded lazily and once per process.

dlib (from the `dlib-bin` wheel) supplies the HOG detector; `face-recognition-models` ships the CNN (MMOD) detector,
the 5- and 68-point landmark predictors and the ResNet 128-D face descriptor. Its package imports `pkg_resources`
at import time, so its folder is located without importing it.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from facellm.errors import ModelLoadError


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


@cache
def hog_detector():
    return _dlib().get_frontal_face_detector()


@cache
def cnn_detector():
    return _dlib().cnn_face_detection_model_v1(str(models_dir() / "mmod_human_face_detector.dat"))


@cache
def landmark_predictor():
    return _dlib().shape_predictor(str(models_dir() / "shape_predictor_68_face_landmarks.dat"))


@cache
def face_encoder():
    return _dlib().face_recognition_model_v1(str(models_dir() / "dlib_face_recognition_resnet_model_v1.dat"))
