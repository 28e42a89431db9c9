"""Merge a LoRA adapter into its base model and save a standalone checkpoint (safetensors, processor, template)
that `facellm ask`, `facellm serve` and plain transformers load without PEFT. The folder also records what it was
merged from (`facellm_merge.json`), which evaluation reports name."""

from __future__ import annotations

import json
from pathlib import Path

from facellm.errors import ModelLoadError
from facellm.files import empty_folder
from facellm.model import load_model
from facellm.model.loading import MERGE_RECORD, save_processor


def merge_adapter(
    base: str, adapter: str | Path, out: str | Path, dtype: str = "auto", push_to_hub: str | None = None
) -> Path:
    from transformers import AutoProcessor

    adapter_dir, target = Path(adapter), empty_folder(out, "--out")
    lm = load_model(base, adapter=adapter_dir, device="cpu", dtype=dtype)
    merged = lm.model.merge_and_unload()
    merged.save_pretrained(target)
    # The adapter folder holds the processor the run trained with; fall back to the base model's.
    source = adapter_dir if (adapter_dir / "processor_config.json").exists() else base
    try:
        save_processor(AutoProcessor.from_pretrained(source), target)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot copy the processor from {source}: {exc}", "check --base") from None
    record = {"base": str(base), "adapter": str(adapter_dir.resolve())}
    (target / MERGE_RECORD).write_text(json.dumps(record, indent=1), encoding="utf-8")
    if push_to_hub:
        merged.push_to_hub(push_to_hub)
        AutoProcessor.from_pretrained(target).push_to_hub(push_to_hub)
    return target
