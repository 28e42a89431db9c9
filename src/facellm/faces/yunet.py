"""YuNet (Wu, Peng and Yu, 2023), a 317 KB face detector that finds profiles, run by OpenCV's `FaceDetectorYN`.

On the development data it found 99.6% of FairFace val 1-1000 crops in 3.6 ms each (dlib's cascade: 98.5%, 70.5 ms)
and every AFLW2000-3D face up to 90 degrees of yaw in 27 ms each (the cascade: 92% from 75 degrees, 259 ms;
docs/benchmarks.md). Its boxes are converted to the geometry of dlib's detectors, which the landmark models were
trained on. The weights come unchanged from github ShiqiYu/libfacedetection.train (Apache-2.0); they were trained on
WIDER FACE, whose images are for research, so they are refused when FACELLM_RESEARCH_MODELS=0.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from facellm.faces.dlib_models import research_models_allowed

WEIGHTS = Path(__file__).parent / "weights" / "yunet_n_320_320.onnx"
SCORE = 0.6  # OpenCV's default score threshold for YuNet
NMS = 0.3
# dlib-style box from YuNet's five landmarks (eyes, nose tip, mouth corners), in eye-to-mouth distances: its side,
# and its centre's vertical offset from the landmarks' mean (negative: above). YuNet stands in for dlib's CNN detector
# on the faces HOG misses, so the box follows the CNN detector's: medians over the 263 FairFace val 1-1000 crops HOG
# missed where YuNet and the CNN each found one face (the side is also HOG's, 2.30, on 1,089 development faces).
# With YuNet's own box the centre's error was larger (0.08 of the side against HOG's, 0.05 from the landmarks).
SIDE = 2.30
CENTRE_Y = -0.165

_local = threading.local()  # one OpenCV detector per thread: FaceDetectorYN keeps per-call state


def available() -> bool:
    """Whether YuNet may run here: its weights are shipped and research-only weights are allowed."""
    return research_models_allowed() and WEIGHTS.is_file()


def detect(rgb: np.ndarray) -> list[tuple]:
    """Faces in an (H, W, 3) uint8 RGB image as (left, top, right, bottom, score, "yunet") in dlib's box geometry."""
    import cv2

    height, width = rgb.shape[:2]
    detector = getattr(_local, "detector", None)
    if detector is None:
        # Errors only: OpenCV's DNN module otherwise warns about its graph engine on every load.
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        detector = _local.detector = cv2.FaceDetectorYN.create(str(WEIGHTS), "", (width, height), SCORE, NMS)
    detector.setInputSize((width, height))
    _, faces = detector.detect(np.ascontiguousarray(rgb[:, :, ::-1]))
    boxes = []
    for face in [] if faces is None else faces:
        points = face[4:14].reshape(5, 2)
        reach = float(np.linalg.norm(points[3:5].mean(0) - points[:2].mean(0)))  # eyes to mouth
        cx, cy = points.mean(0) + (0.0, CENTRE_Y * reach)
        half = SIDE * reach / 2
        name = "yunet-turned" if turned(points, reach) else "yunet"
        boxes.append((int(cx - half), int(cy - half), int(cx + half), int(cy + half), float(face[-1]), name))
    return boxes


TURNED = 0.7  # eye distance below this share of the eye-to-mouth distance: a face turned far (frontal: about 1.1)


def turned(points: np.ndarray, reach: float) -> bool:
    """Whether YuNet's five landmarks show a face turned far to one side (its eyes close together in the picture,
    against `reach`, the eye-to-mouth distance), where a box from the landmarks no longer matches dlib's."""
    return float(np.linalg.norm(points[0] - points[1])) < TURNED * reach
