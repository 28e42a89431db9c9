"""`facellm serve` under hostile load, measured from outside: the server runs as its own process (tiny checkpoint,
CPU) and this script reads its memory from /proc.

1. Mixed load: 350 requests at 50 concurrent, cycling through text-only, image + text and image-only requests and
   four bad kinds (empty text, the image placeholder token, a lone surrogate, a seed over 64 bits). Printed: how
   many of each expected status got what, and resident memory before and after.
2. Huge images: 3 concurrent requests of 8 JPEGs of 6000 x 6600 pixels (about 130 KB per request). Printed: peak
   resident memory (VmHWM) against the memory before, memory after, and the slowest /health answer meanwhile.
3. A 300 MB chunked body (no content-length) against the 20 MB limit: status and peak memory growth.

`--server-src DIR` runs the server from another checkout's `src` (the client side stays this one), which is how
the figures before the hardening were measured.

Run: python -m bench.speed.serve_hardening [--server-src /path/to/old/checkout/src]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx  # noqa: E402

from facellm.images import read_image  # noqa: E402
from facellm.model.tiny import make_tiny_checkpoint  # noqa: E402
from facellm.samples import sample_faces  # noqa: E402
from facellm.testing.hostile import chunked_body, huge_images_request, mixed_requests  # noqa: E402
from facellm.testing.server import ServerProcess  # noqa: E402

HEADERS = {"content-type": "application/json"}
TIMEOUT_S = 120.0  # set by --timeout


def post(url: str, body) -> int | str:
    try:
        return httpx.post(url + "/v1/chat/completions", content=body, headers=HEADERS, timeout=TIMEOUT_S).status_code
    except httpx.HTTPError as exc:
        return type(exc).__name__


def mixed_load(server: ServerProcess, images) -> None:
    for body, _ in mixed_requests(images, 14):
        post(server.url, body)
    before = server.memory_mb()["VmRSS"]
    requests = mixed_requests(images, 350)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=50) as pool:
        got = list(pool.map(lambda item: post(server.url, item[0]), requests))
    seconds = time.perf_counter() - started
    outcome = Counter((expected, status) for (_, expected), status in zip(requests, got))
    after = server.memory_mb()["VmRSS"]
    rows = ", ".join(f"expected {e} got {s}: {n}" for (e, s), n in sorted(outcome.items(), key=str))
    print(f"mixed load, 350 requests at 50 concurrent in {seconds:.1f} s: {rows}")
    print(f"  RSS before {before:.0f} MB, after {after:.0f} MB ({100 * (after / before - 1):+.1f}%)")


def huge_images(server: ServerProcess) -> None:
    body = huge_images_request()
    before = server.memory_mb()
    waits, done = [], threading.Event()

    def watch() -> None:
        while not done.is_set():
            started = time.perf_counter()
            try:
                httpx.get(server.url + "/health", timeout=60)
            except httpx.HTTPError:
                pass
            waits.append(time.perf_counter() - started)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=3) as pool:
        statuses = list(pool.map(lambda _: post(server.url, body), range(3)))
    seconds = time.perf_counter() - started
    done.set()
    watcher.join()
    after = server.memory_mb()
    print(
        f"3 x 8 images of 6000x6600 ({len(body) // 1024} KB per request): statuses {statuses} in {seconds:.1f} s; "
        f"RSS before {before['VmRSS']:.0f} MB, peak {after['VmHWM']:.0f} MB, after {after['VmRSS']:.0f} MB; "
        f"slowest /health {max(waits):.2f} s"
    )


def chunked(server: ServerProcess) -> None:
    before = server.memory_mb()
    status = post(server.url, chunked_body(300))
    after = server.memory_mb()
    grown = after["VmHWM"] - max(before["VmHWM"], before["VmRSS"])
    print(f"300 MB chunked body: {status}; peak RSS grew {grown:.0f} MB, RSS after {after['VmRSS']:.0f} MB")


def main() -> None:
    global TIMEOUT_S
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server-src", help="Run the server from this src folder (another checkout).")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, help="Seconds a request may take (client side).")
    args = parser.parse_args()
    TIMEOUT_S = args.timeout
    env = {"PYTHONPATH": str(Path(args.server_src).resolve())} if args.server_src else None
    images = [read_image(face.path) for face in sample_faces()]
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = make_tiny_checkpoint(Path(tmp) / "tiny")
        serve = ("--model", str(checkpoint), "--device", "cpu", "--max-queue", "256")
        with ServerProcess(*serve, env=env) as server:
            mixed_load(server, images)
        with ServerProcess(*serve, env=env) as server:  # a fresh server each time, so each peak is its own
            chunked(server)
        with ServerProcess(*serve, env=env) as server:
            huge_images(server)


if __name__ == "__main__":
    main()
