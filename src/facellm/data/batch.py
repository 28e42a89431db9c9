"""OpenAI Batch API round trip for large runs (half the price of live requests at OpenAI).

`prepare_batch` writes every pending (image, aspect) request as one line of a Batch API input file, with the
record key as `custom_id`, and marks those records `batched` in the store. After the batch job finishes,
`ingest_batch` reads its output file and stores each answer (or failure) under its key. Per-aspect mode only.
"""

from __future__ import annotations

import json
from pathlib import Path

from facellm.backends.openai_client import image_data_url
from facellm.data.build import Prices
from facellm.data.sources import FaceRecord
from facellm.data.store import QARecord, QAStore, image_hash, record_key
from facellm.errors import FaceLLMError, InputError
from facellm.images import read_image
from facellm.prompts import PromptSpec


def prepare_batch(
    records: list[FaceRecord],
    spec: PromptSpec,
    model: str,
    store: QAStore,
    out_file: str | Path,
    aspects: list[str] | None = None,
    max_tokens: int = 700,
) -> int:
    """Write the Batch API input JSONL for every request not done or already batched; returns the line count."""
    teacher = f"openai:{model}"
    statuses = store.statuses()
    lines = 0
    with open(out_file, "w", encoding="utf-8") as out:
        for record in records:
            try:
                image = read_image(record.path)
                digest = image_hash(record.path)
            except (FaceLLMError, OSError) as exc:
                store.skip(record.image, str(exc))
                continue
            url = image_data_url(image, lossless=False)  # the Batch API caps an input file at 200 MB
            for aspect in aspects or list(spec.aspects):
                key = record_key(digest, aspect, spec.version, teacher)
                if statuses.get(key) in ("done", "batched"):
                    continue
                body = {
                    "model": model,
                    "max_tokens": max_tokens,
                    "temperature": 0.0,
                    "messages": [
                        {"role": "system", "content": spec.system},
                        {
                            "role": "user",
                            "content": [
                                {"type": "image_url", "image_url": {"url": url}},
                                {"type": "text", "text": spec.user_prompt(aspect, record.known)},
                            ],
                        },
                    ],
                }
                out.write(json.dumps({"custom_id": key, "method": "POST", "url": "/v1/chat/completions", "body": body}))
                out.write("\n")
                store.put(_record(record, digest, aspect, spec, teacher, status="batched", image_bytes=len(url)))
                lines += 1
    return lines


def ingest_batch(store: QAStore, output_file: str | Path, prices: Prices | None = None) -> dict[str, int]:
    """Store the answers of a Batch API output file; unknown ids are counted, not fatal."""
    path = Path(output_file)
    if not path.is_file():
        raise InputError(f"batch output file not found: {path}", "download it from the Batch API first")
    prices = prices or Prices()
    waiting = {r.key: r for r in store.records("batched")}
    counts = {"done": 0, "failed": 0, "unknown": 0}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            key = item["custom_id"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise InputError(
                f"{path} line {number} is not a Batch API output line", "pass the job's output file"
            ) from None
        record = waiting.get(key)
        if record is None:
            counts["unknown"] += 1
            continue
        response = item.get("response") or {}
        body = response.get("body") or {}
        try:
            text = body["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            text = ""
        if response.get("status_code") == 200 and text.strip():
            usage = body.get("usage") or {}
            record.answer, record.status, record.error = text.strip(), "done", None
            record.prompt_tokens = int(usage.get("prompt_tokens", 0))
            record.completion_tokens = int(usage.get("completion_tokens", 0))
            record.cost = prices.cost(record.prompt_tokens, record.completion_tokens)
            counts["done"] += 1
        else:
            error = item.get("error") or body.get("error") or "empty answer"
            record.status, record.error = "failed", f"batch: {json.dumps(error)[:300]}"
            counts["failed"] += 1
        store.put(record)
    return counts


def _record(record: FaceRecord, digest: str, aspect: str, spec: PromptSpec, teacher: str, **fields) -> QARecord:
    return QARecord(
        key=record_key(digest, aspect, spec.version, teacher),
        image_hash=digest,
        image=record.image,
        root=str(record.root),
        aspect=aspect,
        prompt_version=spec.version,
        teacher=teacher,
        mode="batch",
        question=spec.aspects[aspect].stored_question,
        known=record.known,
        **fields,
    )
