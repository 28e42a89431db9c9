"""Shared fixtures: the offline tiny checkpoint (built once per session), the loaded model, real sample faces."""

from __future__ import annotations

import os

# Tests never touch a model hub: make any accidental hub lookup fail fast instead of reaching the network.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from facellm.samples import sample_faces  # noqa: E402

ASSETS = Path(__file__).parent / "assets"
# The workplace's shared data (FairFace, LFW, FER2013, FaceXBench files) sits beside the repository when present.
SHARED = Path(os.environ.get("FACELLM_SHARED", Path(__file__).resolve().parents[2] / "shared"))
SHARED_FACEXBENCH = SHARED / "facexbench"


def pytest_sessionstart(session) -> None:
    """CI sets FACELLM_REQUIRE_SHARED=1: a missing ../shared then fails the run instead of skipping its tests."""
    wanted = (SHARED / "data", SHARED_FACEXBENCH / "benchmark")
    if os.environ.get("FACELLM_REQUIRE_SHARED") == "1" and not all(p.is_dir() for p in wanted):
        pytest.exit(f"../shared is missing ({SHARED}): the accuracy tests need its data and FaceXBench files", 1)


needs_shared_facexbench = pytest.mark.skipif(
    not (SHARED_FACEXBENCH / "benchmark").is_dir(), reason="../shared/facexbench is not present"
)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    from facellm.model.tiny import make_tiny_checkpoint

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


@pytest.fixture(scope="session")
def bench_source():
    """The real FaceXBench question files: all of them from ../shared when present, else the project's small copy."""
    full = SHARED_FACEXBENCH / "benchmark"
    return full if full.is_dir() else ASSETS / "facexbench"


@pytest.fixture(scope="session")
def standin_bench(tmp_path_factory):
    """The project's small copy of FaceXBench files with stand-in images at every referenced path."""
    from facellm.testing.facexbench import make_standin_benchmark

    return make_standin_benchmark(ASSETS / "facexbench", tmp_path_factory.mktemp("facexbench"))
