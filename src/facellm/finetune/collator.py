"""The multimodal collator: render each sample with the model's chat template, preprocess its images, and keep only
the assistant answers (and their end-of-turn token) in the labels.

Which tokens are the assistant's is learnt from the chat template itself: rendering a probe conversation gives the
text that opens an assistant turn (ChatML's `<|im_start|>assistant\\n`, Gemma's `<start_of_turn>model\\n`) and the
marker that closes it (`<|im_end|>`). In the tokenised batch every span from an opening to the next closing marker
is trained on; everything else (system, user turns, image tokens, padding) is -100.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from facellm.errors import InputError
from facellm.images import read_image

if TYPE_CHECKING:
    from transformers import ProcessorMixin


IGNORE = -100


@dataclass
class TokenCounter:
    """Tokens the collator produced (`tokens` real, `positions` including padding) and samples it dropped."""

    tokens: int = 0
    positions: int = 0
    dropped: int = 0


def turn_markers(processor: ProcessorMixin) -> tuple[list[int], list[int]]:
    """Token ids that open an assistant turn and that close it, derived from the chat template."""
    tokenizer = getattr(processor, "tokenizer", processor)
    question = [{"role": "user", "content": [{"type": "text", "text": "PROBEQ"}]}]
    answered = question + [{"role": "assistant", "content": [{"type": "text", "text": "PROBEA"}]}]
    render = processor.apply_chat_template
    before = render(question, add_generation_prompt=False, tokenize=False)
    opened = render(question, add_generation_prompt=True, tokenize=False)
    full = render(answered, add_generation_prompt=False, tokenize=False)
    if not opened.startswith(before) or "PROBEA" not in full:
        raise InputError("cannot find the assistant turn in this model's chat template", "use a ChatML-style model")
    header = opened[len(before) :]
    tail = full[full.index("PROBEA") + len("PROBEA") :].strip()
    closing = tail.split()[0] if tail else (tokenizer.eos_token or "")
    header_ids = tokenizer(header, add_special_tokens=False)["input_ids"]
    closing_ids = tokenizer(closing, add_special_tokens=False)["input_ids"]
    if not header_ids or not closing_ids:
        raise InputError("the chat template has no assistant markers", "use a model with a chat template")
    return header_ids, closing_ids


def assistant_labels(input_ids: list[int], header: list[int], closing: list[int]) -> list[int]:
    """Labels for one sequence: assistant spans (closing marker included) keep their ids, the rest is IGNORE."""
    labels = [IGNORE] * len(input_ids)
    i = 0
    while i <= len(input_ids) - len(header):
        if input_ids[i : i + len(header)] != header:
            i += 1
            continue
        start = i + len(header)
        end = start
        while end <= len(input_ids) - len(closing) and input_ids[end : end + len(closing)] != closing:
            end += 1
        stop = min(end + len(closing), len(input_ids))
        labels[start:stop] = input_ids[start:stop]
        i = stop
    return labels


class AssistantOnlyCollator:
    """Turn dataset rows (`images`, `messages` JSON) into model inputs with assistant-only labels.

    `pixel_values` of all tiles of all images of the batch are concatenated on dim 0 (as InternVL expects)."""

    def __init__(self, processor, cutoff_len: int, counter: TokenCounter | None = None) -> None:
        self.processor = processor
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.cutoff_len = cutoff_len
        self.counter = counter or TokenCounter()
        self.header, self.closing = turn_markers(processor)

    def __call__(self, rows: list[dict]) -> dict:
        import torch

        texts, images = [], []
        for row in rows:
            messages = json.loads(row["messages"])
            texts.append(self.processor.apply_chat_template(messages, add_generation_prompt=False, tokenize=False))
            images.append([read_image(p) for p in row["images"]])
        kwargs = {"text": texts, "padding": True, "padding_side": "right", "return_tensors": "pt"}
        if any(images):
            kwargs["images"] = images
        batch = self.processor(**kwargs)
        lengths = batch["attention_mask"].sum(dim=1)
        too_long = [i for i, n in enumerate(lengths.tolist()) if n > self.cutoff_len]
        if too_long:  # estimates said they fit; never truncate through image tokens: drop them instead
            if len(too_long) == len(rows):
                raise InputError(f"a whole batch exceeds cutoff_len={self.cutoff_len}", "raise cutoff_len")
            self.counter.dropped += len(too_long)
            keep = [row for i, row in enumerate(rows) if i not in too_long]
            return self(keep)
        labels = [assistant_labels(ids, self.header, self.closing) for ids in batch["input_ids"].tolist()]
        batch["labels"] = torch.tensor(labels)
        batch["labels"][batch["attention_mask"] == 0] = IGNORE
        self.counter.tokens += int(lengths.sum())
        self.counter.positions += batch["attention_mask"].numel()
        return dict(batch)
