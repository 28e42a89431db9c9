"""`facellm serve` as its own process (the real CLI, tiny checkpoint, key set) under hostile load: 50 concurrent mixed
text / image / bad requests, 8-image requests of 40-megapixel photos, a chunked body far over the limit; its memory
read from /proc. Also: a port already in use is a one-line error."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from facellm.testing.hostile import chunked_body, huge_images_request, mixed_requests
from facellm.testing.server import ServerProcess

KEY = "load-test-key-77"
HEADERS = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads memory from /proc")


@pytest.fixture(scope="module")
def served(tiny_checkpoint):
    with ServerProcess(
        "--model",
        str(tiny_checkpoint),
        "--device",
        "cpu",
        "--api-key-env",
        "LOAD_TEST_KEY",
        "--max-queue",
        "256",
        env={"LOAD_TEST_KEY": KEY},
    ) as server:
        yield server


def post(url: str, body, timeout: float = 120) -> httpx.Response:
    return httpx.post(url + "/v1/chat/completions", content=body, headers=HEADERS, timeout=timeout)


@pytest.mark.slow
def test_mixed_load_at_50_concurrent_keeps_every_answer_and_memory(served, face_images):
    url = served.url
    for body, _ in mixed_requests(face_images, 14):  # warm-up: first batches allocate the model's working memory
        post(url, body)
    before = served.memory_mb()["VmRSS"]
    requests = mixed_requests(face_images, 200)
    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(lambda item: post(url, item[0]).status_code, requests))
    assert statuses == [expected for _, expected in requests]
    after = served.memory_mb()["VmRSS"]
    assert after <= 1.2 * before, (before, after)
    assert "Traceback" not in served.log_text()  # every refusal was a clean 400, nothing blew up inside


def test_chunked_body_over_the_limit_does_not_grow_memory(served):
    url = served.url
    peak_before = served.memory_mb()["VmHWM"]
    now_before = served.memory_mb()["VmRSS"]

    try:  # 300 MB with no content-length; the limit is 20 MB
        refused = post(url, chunked_body(300)).status_code == 413
    except (httpx.RemoteProtocolError, httpx.WriteError, httpx.ReadError):
        refused = True  # the server hung up on a client that kept writing after the 413: also a refusal
    assert refused
    grown = served.memory_mb()["VmHWM"] - max(peak_before, now_before)
    assert grown < 60, grown  # at most the 20 MB limit plus buffers, never the 300 MB body


@pytest.mark.slow
def test_eight_huge_images_per_request_stay_bounded_and_health_answers(served):
    """3 concurrent requests of 8 JPEGs of 6000 x 6600 pixels (40 MP each, about 130 KB per request): each image is
    decoded at reduced scale and kept at 2048 px, so memory stays bounded and /health keeps answering."""
    url = served.url
    body = huge_images_request()
    before = served.memory_mb()["VmRSS"]
    health_waits, done = [], threading.Event()

    def watch_health():
        while not done.is_set():
            started = time.perf_counter()
            httpx.get(url + "/health", timeout=30)
            health_waits.append(time.perf_counter() - started)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch_health)
    watcher.start()
    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            statuses = [r.status_code for r in pool.map(lambda _: post(url, body, timeout=300), range(3))]
    finally:
        busy = time.perf_counter() - started
        done.set()
        watcher.join()
    peak = served.memory_mb()["VmHWM"]
    assert statuses == [200, 200, 200]
    # /health kept answering while the images were decoded, each time in a small part of the requests' time.
    assert len(health_waits) >= 3 and max(health_waits) < busy / 4, (health_waits, busy)
    assert peak - before < 1500, (before, peak)  # the unbounded server reached 6.6 GB here
    print(
        f"\n8-image requests: {busy:.1f} s, RSS before {before:.0f} MB, peak {peak:.0f} MB, slowest /health "
        f"{max(health_waits):.3f} s"
    )


@pytest.mark.slow
def test_port_in_use_is_a_one_line_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "facellm.cli", "serve", "--offline", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot listen on 127.0.0.1:{port}") and "--port" in lines[0]
