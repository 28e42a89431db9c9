"""`facellm data stats`: what a run holds, for a person deciding whether the dataset is ready.

Counts per aspect and status, per demographic group (is the set balanced?), failures by cause, filter flags,
skipped images, answer lengths, tokens and cost; written as `stats.md`, `stats.json` and two PNG plots.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from facellm.data.store import QAStore
from facellm.errors import Cause


def run_stats(store: QAStore) -> dict:
    records = store.records()
    unusable = store.unusable()
    done = [r for r in records if r.status == "done"]
    kept = [r for r in done if not r.flags]
    groups: dict[str, Counter] = {}
    for record in kept:
        for attribute in ("age", "gender", "race"):
            if attribute in record.known:
                groups.setdefault(attribute, Counter())[record.known[attribute]] += 1
    return {
        "pairs": {
            "done": len(done),
            "kept": len(kept),
            "failed": sum(r.status == "failed" for r in records),
            "batched": sum(r.status == "batched" for r in records),
        },
        "images": len({r.image_hash for r in done}),
        "per_aspect": {
            a: {"done": n, "kept": sum(r.aspect == a for r in kept)}
            for a, n in sorted(Counter(r.aspect for r in done).items())
        },
        "per_group": {k: dict(sorted(v.items())) for k, v in groups.items()},
        "failures": dict(Counter(r.cause or Cause.OTHER.value for r in records if r.status == "failed")),
        "flags": dict(Counter(f for r in done for f in r.flags)),
        "skipped_images": store.skipped(),
        "teachers": dict(Counter(r.teacher for r in done)),
        "modes": dict(Counter(r.mode for r in done)),
        "tokens": {"prompt": sum(r.prompt_tokens for r in done), "completion": sum(r.completion_tokens for r in done)},
        "image_bytes_sent": sum(r.image_bytes for r in done),
        "unusable_replies": {"count": len(unusable), "cost_usd": round(sum(u["cost"] for u in unusable), 4)},
        "cost_usd": round(sum(r.cost for r in records) + sum(u["cost"] for u in unusable), 4),
        "answer_chars": [len(r.answer or "") for r in done],
    }


def write_stats(store: QAStore, out_dir: str | Path | None = None) -> dict:
    stats = run_stats(store)
    out = Path(out_dir) if out_dir else store.run_dir
    out.mkdir(parents=True, exist_ok=True)
    lengths = stats.pop("answer_chars")
    stats["answer_chars_summary"] = _summary(lengths)
    (out / "stats.json").write_text(json.dumps(stats, indent=1, ensure_ascii=False), encoding="utf-8")
    (out / "stats.md").write_text(markdown(stats), encoding="utf-8")
    _plots(stats, lengths, out)
    return stats


def _summary(values: list[int]) -> dict:
    if not values:
        return {}
    ordered = sorted(values)
    return {
        "min": ordered[0],
        "median": ordered[len(ordered) // 2],
        "max": ordered[-1],
        "mean": round(sum(ordered) / len(ordered), 1),
    }


def markdown(stats: dict) -> str:
    p = stats["pairs"]
    lines = [
        "# Dataset run statistics",
        "",
        f"{p['done']} pairs answered ({p['kept']} kept after filters), {p['failed']} failed, {p['batched']} waiting "
        f"in a Batch API job; {stats['images']} images; {len(stats['skipped_images'])} images skipped.",
        f"Tokens: {stats['tokens']['prompt']} prompt, {stats['tokens']['completion']} completion; cost "
        f"US$ {stats['cost_usd']:.4f} (of which US$ {stats['unusable_replies']['cost_usd']:.4f} on "
        f"{stats['unusable_replies']['count']} unusable per-image replies, kept in the store); image bytes sent "
        f"{stats['image_bytes_sent']:,}.",
        f"Answer length (characters): {stats['answer_chars_summary']}.",
        "",
        "| aspect | done | kept |",
        "|---|---|---|",
        *[f"| {a} | {c['done']} | {c['kept']} |" for a, c in stats["per_aspect"].items()],
        "",
    ]
    for attribute, counts in stats["per_group"].items():
        lines += [f"| {attribute} | kept pairs |", "|---|---|", *[f"| {g} | {n} |" for g, n in counts.items()], ""]
    for title, table in (("failure cause", stats["failures"]), ("filter flag", stats["flags"])):
        if table:
            lines += [f"| {title} | count |", "|---|---|", *[f"| {k} | {n} |" for k, n in table.items()], ""]
    if stats["skipped_images"]:
        lines += ["Skipped images:", *[f"- {image}: {reason}" for image, reason in stats["skipped_images"].items()]]
    return "\n".join(lines) + "\n"


def _plots(stats: dict, lengths: list[int], out: Path) -> None:
    from matplotlib.figure import Figure  # a figure of its own: the process's matplotlib backend is left alone

    fig = Figure(figsize=(7, 3.5))
    ax = fig.subplots()
    ax.hist(lengths or [0], bins=30, color="#4878a8")
    ax.set_xlabel("answer length (characters)")
    ax.set_ylabel("pairs")
    fig.tight_layout()
    fig.savefig(out / "answer_lengths.png", dpi=90)

    groups = stats["per_group"]
    fig = Figure(figsize=(4.5 * max(1, len(groups)), 3.8))
    axes = fig.subplots(1, max(1, len(groups)), squeeze=False)
    for ax, (attribute, counts) in zip(axes[0], groups.items()):
        ax.bar(list(counts), list(counts.values()), color="#6a9f58")
        ax.set_title(f"kept pairs by {attribute}")
        ax.tick_params(axis="x", rotation=60)
    fig.tight_layout()
    fig.savefig(out / "group_balance.png", dpi=90)
