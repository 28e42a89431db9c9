"""`serve --ground`: face analyses and latency per request, ours vs the same server without grounding, same run.

A server on 127.0.0.1 answers with the offline tiny checkpoint wrapped in `--ground` (measured face facts put before
every question); each request carries one shipped FairFace sample face. The script counts how many times the face
analysis runs per request (it wraps `facellm.faces.analyze_image`) and times the requests one after another.
Baseline, same run: the same server and requests without grounding (what grounding adds is the difference).
To compare two versions of facellm, run this script with each on PYTHONPATH in the same hour.

Run: python -m bench.speed.serve_ground [--requests 24]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import httpx

import facellm.faces
from facellm.backends import BackendSpec, build_backend
from facellm.backends.openai_client import image_data_url
from facellm.images import read_image
from facellm.model.tiny import make_tiny_checkpoint
from facellm.samples import sample_faces
from facellm.serve.app import create_app
from facellm.serve.engine import Engine
from facellm.testing.server import BackgroundServer

analyses = 0
_analyze = facellm.faces.analyze_image


def _counted(*args, **kwargs):
    global analyses
    analyses += 1
    return _analyze(*args, **kwargs)


facellm.faces.analyze_image = _counted


def serve_and_time(checkpoint: Path, ground: bool, requests: int) -> tuple[float, float]:
    """(seconds per request, face analyses per request)."""
    global analyses
    backend = build_backend(BackendSpec(str(checkpoint), device="cpu", ground=ground))
    faces = [image_data_url(read_image(face.path)) for face in sample_faces()]
    bodies = [
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": faces[i % len(faces)]}},
                        {"type": "text", "text": "Describe the face."},
                    ],
                }
            ],
            "max_tokens": 8,
        }
        for i in range(requests + 1)
    ]
    with BackgroundServer(create_app(Engine(backend))) as server:
        httpx.post(server.url + "/v1/chat/completions", json=bodies[0], timeout=300).raise_for_status()  # warm-up
        analyses, started = 0, time.perf_counter()
        for body in bodies[1:]:
            httpx.post(server.url + "/v1/chat/completions", json=body, timeout=300).raise_for_status()
        return (time.perf_counter() - started) / requests, analyses / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=24)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = make_tiny_checkpoint(Path(tmp) / "tiny")
        plain, _ = serve_and_time(checkpoint, False, args.requests)
        grounded, per_request = serve_and_time(checkpoint, True, args.requests)
    print(f"{args.requests} requests, one face image each, tiny checkpoint, 8 new tokens")
    print(f"ours:     serve --ground: {grounded:.3f} s per request, {per_request:.2f} face analyses per request")
    print(f"baseline: serve (no grounding): {plain:.3f} s per request; grounding adds {grounded - plain:.3f} s")


if __name__ == "__main__":
    main()
