"""Embedded face analysis on pretrained dlib models: detection, landmarks, head pose, quality, identity."""

from facellm.faces.analyze import FaceAnalysis, ImageAnalysis, analyze_image, face_attributes, measured_facts
from facellm.faces.detect import Box, detect_faces
from facellm.faces.embed import distance, face_descriptor, image_descriptor

__all__ = [
    "Box",
    "FaceAnalysis",
    "ImageAnalysis",
    "analyze_image",
    "detect_faces",
    "distance",
    "face_attributes",
    "face_descriptor",
    "image_descriptor",
    "measured_facts",
]
