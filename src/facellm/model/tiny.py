"""Build a tiny InternVL-architecture checkpoint offline, in seconds, on CPU.

The checkpoint is a real `InternVLForConditionalGeneration` with a real `InternVLProcessor` (byte-level BPE
tokenizer trained here, chat template, image and video processors), saved with `save_pretrained`. It therefore
loads through exactly the same public loader (`facellm.model.load_model`) as `OpenGVLab/InternVL3-1B-hf` or
`Idiap/FaceLLM-1B`, which lets tests, the demo and users smoke-test every path without a model hub.

Its weights are random, so its answers are gibberish. The text model is initialised with a large
`initializer_range` so that different inputs give different greedy continuations (at the usual 0.02 every prompt
yields the same token, which would make batching and adapter tests prove nothing).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from facellm.model.loading import save_processor

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, ProcessorMixin


IMAGE_SIZE = 64
PATCH_SIZE = 8
DOWNSAMPLE_RATIO = 0.5
# Tokens each 64 px tile turns into after pixel shuffle: (64 / 8) ** 2 * 0.5 ** 2.
IMAGE_SEQ_LENGTH = int((IMAGE_SIZE // PATCH_SIZE) ** 2 * DOWNSAMPLE_RATIO**2)

# Named special tokens InternVL's processor looks up on the tokenizer (as in InternVL3-hf's tokenizer_config).
IMAGE_TOKENS = {
    "start_image_token": "<img>",
    "end_image_token": "</img>",
    "context_image_token": "<IMG_CONTEXT>",
    "video_token": "<video>",
}
SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    *IMAGE_TOKENS.values(),
    "<quad>",
    "</quad>",
    "<ref>",
    "</ref>",
    "<box>",
    "</box>",
]

# ChatML with InternVL's image placeholder. Assistant turns are wrapped in {% generation %} so that
# `return_assistant_tokens_mask` can find them when building training labels.
CHAT_TEMPLATE = (
    "{%- macro render(content) -%}"
    "{%- if content is string -%}{{ content }}"
    "{%- else -%}{%- for item in content -%}"
    "{%- if item['type'] == 'image' -%}{{ '<IMG_CONTEXT>\\n' }}"
    "{%- elif item['type'] == 'video' -%}{{ '<video>\\n' }}"
    "{%- elif item['type'] == 'text' -%}{{ item['text'] }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{%- endmacro -%}"
    "{%- for message in messages -%}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['role'] == 'assistant' -%}"
    "{% generation %}{{ render(message['content']) + '<|im_end|>' }}{% endgeneration %}"
    "{%- else -%}{{ render(message['content']) + '<|im_end|>' }}{%- endif -%}"
    "{{ '\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)

# A few hundred words about faces, enough for a BPE vocabulary that encodes every question compactly.
_CORPUS = """
describe this image the face of person man woman boy girl child adult young old elderly age group years
gender male female ethnicity race white black east asian southeast indian middle eastern latino hispanic
demographic attributes facial structure skin texture expression emotion lighting image quality face pose
forensic considerations detail eyes nose lips mouth jawline cheekbones forehead chin eyebrows ears hair beard
moustache smooth wrinkles scars freckles moles tattoos happy sad angry surprised neutral fear disgust smile
frown bright dark shadow sharp blurry blur distortion noise resolution contrast brightness sharpness frontal
profile tilt turned left right up down looking camera occlusion glasses sunglasses mask hat makeup ageing
low light partial visible appears seems likely estimated between twenty thirty forty fifty sixty seventy
based on visual information what is how many who where which does this show a an and or of in on with to
is are has have was were be it its their they he she his her him them there here that these those
question answer image shows photo picture portrait close background foreground colour color skin tone
round oval square long narrow wide thin full high low prominent subtle strong soft symmetrical features
analysis biometric evidence observable objective plain paragraph yes no not very slightly quite fairly
"""


def _train_tokenizer(vocab_size: int = 600):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    lines = [line for line in _CORPUS.strip().splitlines()]
    tokenizer.train_from_iterator(lines * 4, trainer=trainer)
    return tokenizer


CONTEXT = 8192  # tokens, for the model and its tokenizer alike: FaceXBench's tools prompts take 6,600 in its vocabulary


def build_tiny_processor() -> ProcessorMixin:
    """The processor of the tiny checkpoint: trained tokenizer, chat template, 64 px image and video processors."""
    return build_processor(IMAGE_SIZE, IMAGE_SEQ_LENGTH, max_patches=4, model_max_length=CONTEXT)


def build_processor(
    image_size: int,
    image_seq_length: int,
    max_patches: int,
    model_max_length: int,
    image_mean: list[float] | None = None,
    image_std: list[float] | None = None,
) -> ProcessorMixin:
    """An InternVL processor with the small trained tokenizer (the released special tokens and chat template) and
    image/video processors of `image_size` px tiles, `image_seq_length` tokens per tile."""
    from transformers import (
        GotOcr2ImageProcessor,
        InternVLProcessor,
        InternVLVideoProcessor,
        PreTrainedTokenizerFast,
    )

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=_train_tokenizer(),
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=IMAGE_TOKENS,
        model_max_length=model_max_length,
        padding_side="left",
    )
    size = {"height": image_size, "width": image_size}
    colours = {"image_mean": image_mean, "image_std": image_std} if image_mean else {}
    image_processor = GotOcr2ImageProcessor(
        size=size, crop_to_patches=False, min_patches=1, max_patches=max_patches, **colours
    )
    video_processor = InternVLVideoProcessor(size=size, **colours)
    return InternVLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        image_seq_length=image_seq_length,
        chat_template=CHAT_TEMPLATE,
    )


def build_tiny_model(tokenizer: PreTrainedTokenizerBase, seed: int = 0) -> PreTrainedModel:
    """A randomly initialised InternVL model (2-layer vision tower, 2-layer Qwen2 text model) for `tokenizer`."""
    import torch
    from transformers import GenerationConfig, InternVLConfig, InternVLForConditionalGeneration, Qwen2Config
    from transformers.models.internvl import InternVLVisionConfig

    vision = InternVLVisionConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
    )
    text = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,  # head_dim 32: vLLM's CPU attention refuses head_dim 16
        num_key_value_heads=1,
        max_position_embeddings=CONTEXT,
        initializer_range=0.5,
        tie_word_embeddings=False,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    config = InternVLConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_TOKENS["context_image_token"]),
        image_seq_length=IMAGE_SEQ_LENGTH,
        downsample_ratio=DOWNSAMPLE_RATIO,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = InternVLForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        eos_token_id=[tokenizer.eos_token_id, tokenizer.pad_token_id],
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
    )
    return model.eval()


def make_tiny_checkpoint(out_dir: str | Path, seed: int = 0) -> Path:
    """Build the tiny model and processor and save both to `out_dir`; returns the folder."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    processor = build_tiny_processor()
    model = build_tiny_model(processor.tokenizer, seed=seed)
    model.save_pretrained(out)
    save_processor(processor, out)
    return out
