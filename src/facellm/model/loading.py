"""Load any Hugging Face image-text-to-text checkpoint (hub id or local folder), optionally with a LoRA adapter.

Everything goes through the public Auto classes (`AutoModelForImageTextToText`, `AutoProcessor`), so InternVL3-hf,
the released FaceLLM models, Qwen2.5-VL, Gemma 3, LLaVA and the offline tiny checkpoint share one path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facellm.errors import InputError, ModelLoadError

if TYPE_CHECKING:
    import torch


DEFAULT_MODEL = "Idiap/FaceLLM-1B"
DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass
class LoadedModel:
    """A model ready for generation, with the processor that prepares its inputs."""

    model: Any
    processor: Any
    device: Any  # torch.device
    dtype: Any  # torch.dtype
    name: str
    adapter: str | None = None

    @property
    def tokenizer(self) -> Any:
        return getattr(self.processor, "tokenizer", self.processor)


def resolve_device(device: str | None = None) -> torch.device:
    """`None`/"auto" picks CUDA when present, else CPU; anything else is passed to `torch.device`."""
    import torch

    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"unknown device {device!r} ({exc})", "use auto, cpu, cuda or cuda:N") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r} requested but CUDA is not available", "use --device cpu")
    return resolved


def resolve_dtype(dtype: str | None, device: torch.device) -> torch.dtype:
    """ "auto" means bfloat16 on CUDA (float16 where bf16 is unsupported) and float32 on CPU."""
    import torch

    name = dtype or "auto"
    if name not in DTYPES:
        raise InputError(f"unknown dtype {name!r}", f"use one of {', '.join(DTYPES)}")
    if name != "auto":
        return getattr(torch, name)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def save_processor(processor: Any, folder: str | Path) -> None:
    """Save a processor whose config says how it tiles images. InternVL's processor cuts images into tiles whatever
    its image processor's `crop_to_patches` says, and published InternVL3-hf configs say false; vLLM reads that flag
    to size its image budget (false: one tile per image, 16 tokens for the tiny checkpoint where up to 80 arrive,
    256 for InternVL3-1B where up to 3,328 do). The flag is set from a measured call before saving."""
    image_processor = getattr(processor, "image_processor", None)
    token = getattr(processor, "image_token", None)
    size = getattr(image_processor, "size", None)
    tiles_images = hasattr(image_processor, "crop_to_patches")
    if image_processor is not None and token is not None and tiles_images and size is not None and size.height:
        from PIL import Image

        wide = Image.new("RGB", (2 * size.width, size.height))
        tiles = processor(text=token, images=[wide], return_tensors="pt")["pixel_values"].shape[0]
        image_processor.crop_to_patches = tiles > 1
    processor.save_pretrained(folder)


MERGE_RECORD = "facellm_merge.json"  # `facellm export` writes it into a merged folder: what it was merged from


def describe_model(model: str | Path, adapter: str | Path | None = None) -> str:
    """How reports name a model: the folder or hub id, its adapter, or what a merged folder was merged from."""
    import json

    if adapter:
        return f"{model} + adapter {adapter}"
    record = Path(model) / MERGE_RECORD
    if record.is_file():
        merged = json.loads(record.read_text(encoding="utf-8"))
        return f"{model} (merged from {merged['base']} + adapter {merged['adapter']})"
    return str(model)


def load_model(
    model: str | Path = DEFAULT_MODEL,
    adapter: str | Path | None = None,
    device: str | None = None,
    dtype: str | None = None,
) -> LoadedModel:
    """Load model + processor (+ PEFT adapter) in eval mode on the chosen device; raise `ModelLoadError` on failure."""
    from safetensors import SafetensorError
    from transformers import AutoModelForImageTextToText, AutoProcessor

    name = str(model)
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    hint = (
        "pass --model with a local checkpoint folder (e.g. run `facellm dev make-tiny-model tiny-model`, then "
        "--model tiny-model), or check that the Hugging Face Hub is reachable and the id is right"
    )
    if _looks_like_path(name) and not Path(name).is_dir():
        raise ModelLoadError(f"model folder not found: {name}", hint)
    if adapter is not None:
        _check_adapter_folder(Path(adapter))  # before the base model's slow load
    try:
        processor = AutoProcessor.from_pretrained(name)
        net = AutoModelForImageTextToText.from_pretrained(name, dtype=torch_dtype)
    except (OSError, ValueError, KeyError, SafetensorError) as exc:  # SafetensorError: a cut or corrupt weights file
        raise ModelLoadError(f"cannot load model {name!r}: {_first_line(exc)}", hint) from exc
    tokenizer = getattr(processor, "tokenizer", processor)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if adapter is not None:
        net = _attach_adapter(net, Path(adapter))
    net.to(torch_device).eval()
    return LoadedModel(net, processor, torch_device, torch_dtype, name, str(adapter) if adapter else None)


def _attach_adapter(net, adapter: Path):
    from peft import PeftModel
    from safetensors import SafetensorError

    try:
        return PeftModel.from_pretrained(net, str(adapter))
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as exc:
        raise ModelLoadError(
            f"cannot apply adapter {adapter}: {_first_line(exc)}", "check that it was trained on this --model"
        ) from exc


def _check_adapter_folder(adapter: Path) -> None:
    if not (adapter / "adapter_config.json").is_file():
        raise ModelLoadError(
            f"not a PEFT adapter folder: {adapter} (no adapter_config.json)",
            "pass the folder that `facellm train` or PEFT's save_pretrained wrote",
        )


def _looks_like_path(name: str) -> bool:
    """Hub ids are `owner/name`; anything starting like a path, or with more parts, is a folder."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name or Path(name).exists()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
