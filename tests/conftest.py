"""Shared fixtures: the offline tiny checkpoint (built once per session), the loaded model, real sample faces."""

from __future__ import annotations

import os

# Tests never touch a model hub: make any accidental hub lookup fail fast instead of reaching the network.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import pytest  # noqa: E402

from facellm.samples import sample_faces  # noqa: E402


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    from facellm.testing import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def tiny_lm(tiny_checkpoint):
    from facellm.model import load_model

    return load_model(tiny_checkpoint, device="cpu")


@pytest.fixture(scope="session")
def faces():
    return sample_faces()


@pytest.fixture(scope="session")
def face_images(faces):
    from facellm.images import read_image

    return [read_image(face.path) for face in faces]
