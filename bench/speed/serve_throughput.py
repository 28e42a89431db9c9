"""Server throughput and latency vs calling the model layer directly, with the tiny checkpoint on CPU.

At 1, 8 and 32 concurrent clients, each client sends requests (a 224 px FairFace face as a base64 data URL plus a
question, max_tokens 16, greedy) through the official `openai` client to `facellm serve` started as its own process
on a loopback port (so client threads and the server do not share one interpreter lock).
The direct baseline does the same work in this process without HTTP: `generate()` on the already-decoded image,
one request at a time for 1 client and in batches of the client count otherwise (what the server's batching aims
at). Printed: requests/s and p50/p95 latency for both, and the server's overhead at 1 client, measured with the
`openai` client and again with a plain keep-alive httpx client (the difference is the client library's own cost),
with server and direct requests interleaved one by one so that drifts in machine speed hit both alike.

Run: python -m bench.speed.serve_throughput [--requests 64] [--max-tokens 16]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from openai import OpenAI  # noqa: E402

from facellm.backends.openai_client import image_data_url  # noqa: E402
from facellm.images import read_image  # noqa: E402
from facellm.model import GenerationSettings, generate, load_model, question  # noqa: E402
from facellm.model.tiny import make_tiny_checkpoint  # noqa: E402
from facellm.samples import sample_faces  # noqa: E402
from facellm.testing.server import ServerProcess  # noqa: E402

TOKENS = 16  # set by --max-tokens


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def through_server(url: str, images, clients: int, requests: int, client_kind: str = "openai") -> tuple[float, list]:
    """Requests/s and latencies through the server, sent with the official `openai` client or with plain httpx
    (keep-alive, JSON in and out), which shows how much of the round trip is the client library's own work."""
    import httpx

    client = OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
    plain = httpx.Client(base_url=url, timeout=60, limits=httpx.Limits(max_keepalive_connections=clients))
    urls = [image_data_url(im) for im in images]

    def one(i: int) -> float:
        started = time.perf_counter()
        messages = [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": urls[i % len(urls)]}},
                    {"type": "text", "text": f"Question {i}: describe the face."},
                ],
            }
        ]
        if client_kind == "openai":
            client.chat.completions.create(model="facellm", messages=messages, max_tokens=TOKENS)
        else:
            body = {"model": "facellm", "messages": messages, "max_tokens": TOKENS}
            plain.post("/v1/chat/completions", json=body).raise_for_status()
        return time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        latencies = list(pool.map(one, range(requests)))
    plain.close()
    return requests / (time.perf_counter() - started), latencies


def direct(lm, images, clients: int, requests: int) -> tuple[float, list[float]]:
    settings = GenerationSettings(max_new_tokens=TOKENS)
    conversations = [question([images[i % len(images)]], f"Question {i}: describe the face.") for i in range(requests)]
    latencies = []
    started = time.perf_counter()
    for start in range(0, requests, clients):
        batch = conversations[start : start + clients]
        t = time.perf_counter()
        generate(lm, batch, settings, batch_size=clients)
        latencies += [time.perf_counter() - t] * len(batch)
    return requests / (time.perf_counter() - started), latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=16)
    args = parser.parse_args()
    global TOKENS
    TOKENS = args.max_tokens
    images = [read_image(face.path) for face in sample_faces()]
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = make_tiny_checkpoint(Path(tmp) / "tiny")
        lm = load_model(checkpoint, device="cpu")
        with ServerProcess(
            "--model", str(checkpoint), "--device", "cpu", "--max-batch", "32", "--max-queue", "256"
        ) as server:
            url = server.url
            through_server(url, images, 1, 4)  # warm-up
            direct(lm, images, 1, 4)
            print(f"{args.requests} requests per setting, tiny InternVL on CPU, max_tokens {TOKENS}, greedy")
            overhead = None
            for clients in (1, 8, 32):
                s_rate, s_lat = through_server(url, images, clients, args.requests)
                d_rate, d_lat = direct(lm, images, clients, args.requests)
                print(
                    f"{clients:2d} clients: server {s_rate:6.1f} req/s p50 {1000 * statistics.median(s_lat):6.1f} ms "
                    f"p95 {1000 * percentile(s_lat, 0.95):6.1f} ms | direct {d_rate:6.1f} req/s "
                    f"p50 {1000 * statistics.median(d_lat):6.1f} ms p95 {1000 * percentile(d_lat, 0.95):6.1f} ms"
                )
                if clients == 1:
                    overhead = statistics.median(s_lat) / statistics.median(d_lat) - 1
            print(f"server overhead at 1 client (p50 latency, openai client): {100 * overhead:.1f}%")
            # Interleaved: one request through the server, then the same work directly, and so on, so that drift in
            # the machine's speed (other tenants, clocks) hits both sides alike; 1 client, each client kind.
            for kind in ("openai", "http"):
                server_times, direct_times = [], []
                for i in range(args.requests):
                    server_times += through_server(url, images[i % 3 :], 1, 1, kind)[1]
                    direct_times += direct(lm, images[i % 3 :], 1, 1)[1]
                s50, d50 = statistics.median(server_times), statistics.median(direct_times)
                print(
                    f"interleaved, 1 client, {kind} client: server p50 {1000 * s50:.2f} ms, direct p50 "
                    f"{1000 * d50:.2f} ms, overhead {100 * (s50 / d50 - 1):.1f}% ({1000 * (s50 - d50):.2f} ms)"
                )


if __name__ == "__main__":
    main()
