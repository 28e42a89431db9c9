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

from facellm.errors import InputError, ModelLoadError
from facellm.faces.classifier import TASKS as CLASSIFIER_TASKS


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


def landmark_points() -> int:
    """68 (default) or 5, from the FACELLM_LANDMARKS environment variable (`--landmarks` on the CLI). With 5, the
    68-point model, whose iBUG 300-W training data excludes commercial use, is never loaded: alignment, descriptors
    and attributes use the 5-point model, pose comes from 5 points, and eye/mouth openness is not measured."""
    value = os.environ.get("FACELLM_LANDMARKS", "68")
    if value not in ("5", "68"):
        raise InputError(f"FACELLM_LANDMARKS must be 5 or 68, not {value!r}", "set it to 5 or 68, or unset it")
    return int(value)


def landmark_predictor(points: int | None = None):
    """dlib's 68- or 5-point landmark model; `points` None: FACELLM_LANDMARKS (default 68)."""
    points = points or landmark_points()
    if points not in (5, 68):
        raise InputError(f"landmark points must be 5 or 68, not {points!r}", "use 5 or 68")
    return _shape_predictor(points)


@cache
def _shape_predictor(points: int):
    return _dlib().shape_predictor(str(models_dir() / f"shape_predictor_{points}_face_landmarks.dat"))


@cache
def face_encoder():
    """dlib's own runner of the descriptor network: the reference that tests and benchmarks compare against
    (descriptors are computed by the same weights in torch, `facellm.faces.descriptor_net`)."""
    return _dlib().face_recognition_model_v1(str(models_dir() / "dlib_face_recognition_resnet_model_v1.dat"))


RESEARCH_ONLY = "RESEARCH-ONLY weights: FACELLM_RESEARCH_MODELS=0 runs without them"
# (model, licence, training data) for `facellm analyze --licenses`; from the dlib-models README and package metadata.
BUNDLED_MODELS = [
    ("dlib HOG frontal face detector (in dlib-bin)", "Boost Software License (dlib)",
     "not stated in the wheel; see dlib.net"),
    ("mmod_human_face_detector.dat (CNN face detector, face-recognition-models)",
     "released into the public domain by its author, Davis King; package MIT", "public images annotated by Davis King"),
    ("shape_predictor_5_face_landmarks.dat", "public domain (Davis King); package MIT",
     "dlib's 5-point landmark dataset, public images annotated by Davis King"),
    ("shape_predictor_68_face_landmarks.dat", "the model file is public domain, but its training data (iBUG 300-W) "
     "excludes commercial use; use --landmarks 5 (or FACELLM_LANDMARKS=5) to avoid it", "iBUG 300-W"),
    ("dlib_face_recognition_resnet_model_v1.dat (128-D descriptor; facellm runs its weights in torch)",
     "public domain (Davis King); package MIT",
     "about 3 million faces (FaceScrub, VGG Face and other public sets); 99.38% on LFW per its author"),
    ("facellm faces/weights/fairface-attributes-v3.pt (age, gender, race)",
     "dlib's descriptor network (public domain) fine-tuned here on FairFace (CC BY 4.0, Karkkainen and Joo, WACV "
     "2021); research use, see MODEL_CARD.md",
     "about 3 million faces (dlib's descriptor), then FairFace train 1-16000"),
    ("facellm faces/weights/fer2013-expression-v1.pt (7 expressions, grey faces)",
     f"trained here on FER2013 (Goodfellow et al. 2013); {RESEARCH_ONLY}", "FER2013 Training split"),
    ("facellm faces/weights/rafdb-expression-v1.pt (7 expressions, colour faces)",
     f"the FER2013 model fine-tuned here on RAF-DB (academic licence; Li et al., CVPR 2017); {RESEARCH_ONLY}",
     "FER2013 Training split, then 4/5 of the RAF-DB train images in ../shared/data/rafdb (faces/splits.py)"),
    ("facellm faces/weights/aflw2000-headpose-v1.pt (yaw, pitch, roll from the 68 landmarks)",
     f"trained here on AFLW2000-3D (Zhu et al., CVPR 2016); {RESEARCH_ONLY}",
     "the 500 AFLW2000-3D faces in ../shared/data/aflw2000 and their mirror images"),
    *((f"facellm faces/weights/{task.weights} ({name}: {' / '.join(task.classes)})",
       f"trained here; {task.licence}; {RESEARCH_ONLY}", task.data) for name, task in CLASSIFIER_TASKS.items()),
    ("OpenCV (opencv-python-headless, solvePnP: head pose when research-only weights are off)", "Apache 2.0",
     "no learned weights used"),
]  # fmt: skip
