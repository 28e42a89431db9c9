"""QA pairs per second building a FairFaceGPT-style set: our concurrent builder vs the reference approach.

Same mock chat-completions server on 127.0.0.1 (300 ms latency, 5% injected faults: 429, 500, garbage replies,
timeouts), same FairFace val images, same prompts, measured one after the other in this process.

  baseline   the reference approach: one request at a time, a 1 s pause after each, retrying a failed request
             up to 5 times; measured on a sample (`--baseline-pairs`), its rate compared with ours
  ours       `build_dataset`, per-aspect mode, concurrency 64, into a fresh SQLite store; then counted for lost
             (missing or failed) and duplicated pairs
  per-image  the same images in per-image mode: one request per image returns all 8 aspects; compared on image
             bytes sent per QA pair

Run: python -m bench.speed.data_build_throughput [--images 200] [--concurrency 64] [--baseline-pairs 40]
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

import httpx

from bench.paths import SHARED
from facellm.backends.openai_client import ChatClient, EndpointConfig, image_data_url
from facellm.backends.openai_compatible import OpenAIBackend
from facellm.data.build import build_dataset
from facellm.data.sources import load_source
from facellm.data.store import QAStore
from facellm.images import read_image
from facellm.prompts import load_prompts
from facellm.testing.mock_openai import MockOpenAIServer, describing_responder

FAIRFACE = SHARED / "data" / "fairface"
FAULTS = (429, 500, "garbage", "timeout")


def baseline(server: MockOpenAIServer, records, spec, pairs: int) -> tuple[int, float]:
    """One request at a time with a 1 s pause after each; returns (pairs answered, seconds)."""
    answered, start = 0, time.perf_counter()
    with httpx.Client(timeout=1.0) as http:
        for record in records:
            url = image_data_url(read_image(record.path))
            for aspect in spec.aspects:
                if answered >= pairs:
                    return answered, time.perf_counter() - start
                content = [
                    {"type": "image_url", "image_url": {"url": url}},
                    {"type": "text", "text": spec.user_prompt(aspect, record.known)},
                ]
                messages = [{"role": "system", "content": spec.system}, {"role": "user", "content": content}]
                body = {"model": "gpt-4o-2024-11-20", "max_tokens": 700, "messages": messages}
                for _ in range(6):
                    try:
                        reply = http.post(server.base_url + "/chat/completions", json=body)
                        if reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"]:
                            answered += 1
                            break
                    except (httpx.HTTPError, ValueError, KeyError):
                        pass
                    finally:
                        time.sleep(1.0)
    return answered, time.perf_counter() - start


def ours(server: MockOpenAIServer, records, spec, concurrency: int, run: Path, mode: str) -> tuple[float, dict]:
    config = EndpointConfig(
        server.base_url,
        "gpt-4o-2024-11-20",
        concurrency=concurrency,
        timeout_s=1.0,
        max_retries=8,
        backoff_s=0.05,
        backoff_max_s=0.5,
    )
    with QAStore(run) as store:
        start = time.perf_counter()
        build_dataset(records, spec, OpenAIBackend(ChatClient(config)), store, mode=mode)
        seconds = time.perf_counter() - start
    db = sqlite3.connect(run / "qa.sqlite")
    (rows, keys, done, image_bytes) = db.execute(
        "SELECT COUNT(*), COUNT(DISTINCT image || aspect), SUM(status = 'done'), SUM(image_bytes) FROM qa"
    ).fetchone()
    db.close()
    return seconds, {"rows": rows, "distinct_pairs": keys, "done": done, "image_bytes": image_bytes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--baseline-pairs", type=int, default=40)
    args = parser.parse_args()

    records = load_source(
        "fairface", FAIRFACE / "fairface_img_margin025", FAIRFACE / "fairface_label_val.csv", limit=args.images
    )
    spec = load_prompts()
    expected = len(records) * len(spec.aspects)
    server_options = {
        "responder": describing_responder,
        "latency_s": 0.3,
        "fault_rate": 0.05,
        "fault_kinds": FAULTS,
        "timeout_s": 2.0,
    }
    with tempfile.TemporaryDirectory() as tmp, MockOpenAIServer(**server_options) as server:
        seconds, counts = ours(server, records, spec, args.concurrency, Path(tmp) / "ours", "per-aspect")
        ours_rate = counts["done"] / seconds
        lost = expected - counts["done"]
        duplicated = counts["rows"] - counts["distinct_pairs"]
        print(
            f"{len(records)} FairFace val images x {len(spec.aspects)} aspects = {expected} pairs; mock latency "
            f"300 ms, 5% faults {FAULTS}; faults served so far: {server.faults_served}"
        )
        print(
            f"ours (per-aspect, concurrency {args.concurrency}): {counts['done']} pairs in {seconds:.1f} s = "
            f"{ours_rate:.1f} pairs/s; lost {lost}, duplicated {duplicated}"
        )

        image_seconds, image_counts = ours(server, records, spec, args.concurrency, Path(tmp) / "img", "per-image")
        per_aspect_bytes = counts["image_bytes"] / counts["done"]
        per_image_bytes = image_counts["image_bytes"] / image_counts["done"]
        print(
            f"ours (per-image): {image_counts['done']} pairs in {image_seconds:.1f} s = "
            f"{image_counts['done'] / image_seconds:.1f} pairs/s; image bytes per pair {per_image_bytes:,.0f} vs "
            f"per-aspect {per_aspect_bytes:,.0f}: {per_aspect_bytes / per_image_bytes:.1f}x fewer"
        )

        answered, base_seconds = baseline(server, records, spec, args.baseline_pairs)
        base_rate = answered / base_seconds
        print(
            f"baseline (sequential, 1 s pause): {answered} pairs in {base_seconds:.1f} s = {base_rate:.3f} pairs/s "
            f"(sample; all {expected} pairs would take about {expected / base_rate / 60:.0f} min)"
        )
        print(f"ours vs baseline: {ours_rate / base_rate:.0f}x pairs per second")


if __name__ == "__main__":
    main()
