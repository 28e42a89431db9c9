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
from PIL import Image

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


def _faces(rgb: np.ndarray) -> list[tuple[float, np.ndarray, float]]:
    """YuNet's faces in an (H, W, 3) uint8 RGB image: (score, its five landmarks, eye-to-mouth distance)."""
    import cv2

    height, width = rgb.shape[:2]
    detector = getattr(_local, "detector", None)
    if detector is None:
        # Errors only: OpenCV's DNN module otherwise warns about its graph engine on every load.
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        detector = _local.detector = cv2.FaceDetectorYN.create(str(WEIGHTS), "", (width, height), SCORE, NMS)
    detector.setInputSize((width, height))
    _, faces = detector.detect(np.ascontiguousarray(rgb[:, :, ::-1]))
    found = []
    for face in [] if faces is None else faces:
        points = face[4:14].reshape(5, 2)
        found.append((float(face[-1]), points, float(np.linalg.norm(points[3:5].mean(0) - points[:2].mean(0)))))
    return found


def detect(rgb: np.ndarray) -> list[tuple]:
    """Faces in an (H, W, 3) uint8 RGB image as (left, top, right, bottom, score, "yunet") in dlib's box geometry."""
    boxes = []
    for score, points, reach in _faces(rgb):
        cx, cy = points.mean(0) + (0.0, CENTRE_Y * reach)
        half = SIDE * reach / 2
        name = "yunet-turned" if turned(points, reach) else "yunet"
        boxes.append((int(cx - half), int(cy - half), int(cx + half), int(cy + half), float(score), name))
    return boxes


# The box dlib's CNN detector gives a face YuNet sees turned far, from YuNet's landmarks, in eye-to-mouth distances:
# its centre lies TURNED_BACK behind the landmarks' mean (away from the nose) and TURNED_CENTRE_Y above it, its side
# is TURNED_SIDE. Medians over the 583 profiles of CFP identities 1-250 (development) where YuNet saw a face turned
# far and the CNN detector found one near it; on the 64 such AFLW2000 development faces the box overlaps the CNN's
# by IoU 0.72 (the box above: 0.56), and the pose model measures from it as well as from the CNN's box
# (docs/benchmarks.md, "Head pose of profiles without dlib's CNN detector").
TURNED_BACK, TURNED_CENTRE_Y, TURNED_SIDE = 0.49, -0.136, 2.04
REGION_SIDE = 200  # px: the region around a turned face is searched again at this size


def turned_box(rgb: np.ndarray, box: tuple) -> tuple[int, int, int, int] | None:
    """The CNN-like box (left, top, right, bottom) of the turned face YuNet finds in the region twice the size of
    `box` around it, or None when it finds none turned there."""
    left, top, right, bottom = box[:4]
    side = max(right - left, bottom - top)
    x0, y0 = max(0, int(left - side / 2)), max(0, int(top - side / 2))
    region = rgb[y0 : y0 + 2 * side, x0 : x0 + 2 * side]
    if min(region.shape[:2]) < 8:
        return None
    factor = min(1.0, REGION_SIDE / max(region.shape[:2]))
    if factor < 1.0:
        size = (max(1, round(region.shape[1] * factor)), max(1, round(region.shape[0] * factor)))
        region = np.asarray(Image.fromarray(region).resize(size, Image.Resampling.BILINEAR))
    found = [(score, points, reach) for score, points, reach in _faces(region) if turned(points, reach)]
    if not found:
        return None
    _, points, reach = max(found, key=lambda face: face[0])
    back = -1.0 if points[2, 0] > points[:2, 0].mean() else 1.0
    cx, cy = points.mean(0) + (TURNED_BACK * back * reach, TURNED_CENTRE_Y * reach)
    half = TURNED_SIDE * reach / 2
    left, top = int((cx - half) / factor + x0), int((cy - half) / factor + y0)
    return left, top, int((cx + half) / factor + x0), int((cy + half) / factor + y0)


TURNED = 0.7  # eye distance below this share of the eye-to-mouth distance: a face turned far (frontal: about 1.1)


def turned(points: np.ndarray, reach: float) -> bool:
    """Whether YuNet's five landmarks show a face turned far to one side (its eyes close together in the picture,
    against `reach`, the eye-to-mouth distance), where a box from the landmarks no longer matches dlib's."""
    return float(np.linalg.norm(points[0] - points[1])) < TURNED * reach
