"""Image quality of a face region: brightness, contrast, sharpness (variance of the Laplacian) and resolution.

Sharpness is measured on the face resized to 112 px wide, so it compares faces of different sizes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from facellm.faces.detect import Box


@dataclass(frozen=True)
class Quality:
    brightness: float  # mean gray level, 0-255
    contrast: float  # standard deviation of gray levels
    sharpness: float  # variance of the Laplacian at 112 px width
    face_width: int  # pixels
    face_height: int


def face_quality(image: Image.Image, box: Box) -> Quality:
    import cv2

    crop = image.convert("L").crop(
        (max(box.left, 0), max(box.top, 0), min(box.right, image.width), min(box.bottom, image.height))
    )
    gray = np.asarray(crop, dtype=np.float64)
    scaled = np.asarray(crop.resize((112, max(1, round(112 * crop.height / max(crop.width, 1))))), dtype=np.float64)
    sharpness = float(cv2.Laplacian(scaled, cv2.CV_64F).var())
    return Quality(
        round(float(gray.mean()), 1), round(float(gray.std()), 1), round(sharpness, 1), box.width, box.height
    )
