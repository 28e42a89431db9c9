"""Random-initialised checkpoints of the released InternVL3-hf shapes (1B, 8B, 38B), built offline.

The model is the published architecture (`facellm/model/shapes/`) with random weights, saved in bf16 with
`save_pretrained`, so it loads through `facellm.model.load_model` like a real checkpoint and runs the real code
paths at real size. Its processor is configured like the released one: 448 px tiles, tiling between 1 and 12
patches plus a thumbnail (the processor always tiles; its saved config says so, see `save_processor`), ImageNet
mean and std, 256 image tokens per tile, the released special tokens and a chat template of the released form.
The tokenizer is the tiny checkpoint's small trained one (the real 151k vocabulary cannot be built offline): text is
tokenised differently from the real model, image token counts are the same, and the embedding keeps the released
151,674 rows, so memory and compute are those of the real shape. 8B and 38B are too big to materialise on a laptop:
for them only the config and the processor are written.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from facellm.errors import InputError
from facellm.model.loading import save_processor
from facellm.model.tiny import build_processor
from facellm.plan import shape_config

if TYPE_CHECKING:
    from transformers import ProcessorMixin


SHAPES = ("internvl3-1b", "internvl3-8b", "internvl3-38b")
MATERIALISED = ("internvl3-1b",)
TILE, TOKENS_PER_TILE, MAX_PATCHES = 448, 256, 12
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def build_shape_processor() -> ProcessorMixin:

    return build_processor(
        TILE, TOKENS_PER_TILE, MAX_PATCHES, model_max_length=32768, image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD
    )


def shape_size(shape: str) -> str:
    if shape not in SHAPES:
        raise InputError(f"unknown shape {shape!r}", f"use one of {', '.join(SHAPES)}")
    return shape.rsplit("-", 1)[1]


def make_shape_checkpoint(shape: str, out_dir: str | Path, seed: int = 0) -> tuple[Path, bool]:
    """Write the shape's config and processor to `out_dir`, and its random bf16 weights where the shape is small
    enough to build here; returns the folder and whether weights were written."""
    import torch
    from transformers import GenerationConfig, InternVLForConditionalGeneration

    config = shape_config(shape_size(shape))
    processor = build_shape_processor()
    tokenizer = processor.tokenizer
    config.image_token_id = tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>")
    config.text_config.eos_token_id = tokenizer.eos_token_id
    config.text_config.pad_token_id = tokenizer.pad_token_id
    config.text_config.bos_token_id = None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_processor(processor, out)
    generation = GenerationConfig(
        eos_token_id=[tokenizer.eos_token_id], pad_token_id=tokenizer.pad_token_id, do_sample=False
    )
    if shape not in MATERIALISED:
        config.save_pretrained(out)
        generation.save_pretrained(out)
        return out, False
    torch.manual_seed(seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # build in bf16 directly: half the memory of building in fp32
    try:
        model = InternVLForConditionalGeneration(config)
    finally:
        torch.set_default_dtype(previous)
    model.generation_config = generation
    model.save_pretrained(out)
    return out, True
