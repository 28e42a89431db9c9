"""The one inference path: conversations (turns with images) in, answer texts or a token stream out.

`ask`, `chat`, the server, local evaluation and the local teacher all call `generate` or `stream`.
Batches are left-padded so that each prompt ends right where generation starts; batched greedy output therefore
equals one-at-a-time greedy output.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from facellm.conversation import Conversation, GenerationSettings
from facellm.errors import InputError
from facellm.model.loading import LoadedModel

# Padded prompt tokens one batch may hold (members x longest prompt); keeps very long prompts from being batched
# with many others. 16 four-image FaceXBench questions fit at InternVL3's 256 tokens per 448 px tile (one tile each).
if TYPE_CHECKING:
    from transformers import BatchFeature, ProcessorMixin


MAX_BATCH_TOKENS = 32_768
# Processor attributes naming the placeholder tokens a chat template inserts for images and videos.
PLACEHOLDER_ATTRIBUTES = (
    "image_token",
    "video_token",
    "start_image_token",
    "end_image_token",
    "boi_token",
    "eoi_token",
)


def to_messages(conversation: Conversation) -> list[dict]:
    """Hugging Face chat-template messages; each image becomes an `{"type": "image"}` placeholder."""
    messages = []
    for turn in conversation:
        if turn.role not in ("system", "user", "assistant"):
            raise InputError(f"unknown role {turn.role!r}", "use system, user or assistant")
        content = [{"type": "image"} for _ in turn.images] + [{"type": "text", "text": turn.text}]
        messages.append({"role": turn.role, "content": content})
    return messages


def check_conversation(lm: LoadedModel, conversation: Conversation) -> None:
    """Raise `InputError` for a conversation the model cannot take: not ending with a user turn that has text or
    images, or text holding one of the model's own image placeholder tokens (the processor would count it as an
    image that was never sent)."""
    if not conversation or conversation[-1].role != "user":
        raise InputError("each conversation must end with a user question", "pass -q 'your question'")
    if not conversation[-1].text.strip() and not conversation[-1].images:
        raise InputError("each conversation must end with a non-empty user question", "pass -q 'your question'")
    placeholders = {getattr(lm.processor, name, None) for name in PLACEHOLDER_ATTRIBUTES} - {None, ""}
    for turn in conversation:
        for token in placeholders:
            if isinstance(token, str) and token in turn.text:
                raise InputError(
                    f"the text contains the model's image placeholder {token}",
                    "remove it; images go in as images, not as placeholder text",
                )


def prepare_inputs(lm: LoadedModel, conversations: Sequence[Conversation], checked: bool = False) -> BatchFeature:
    """Render the chat template, tokenise with left padding and preprocess images; tensors on the model's device.
    `checked`: the conversations already passed `check_conversation` (a server checks each request as it comes)."""
    for conversation in [] if checked else conversations:
        check_conversation(lm, conversation)
    texts = [
        lm.processor.apply_chat_template(to_messages(c), add_generation_prompt=True, tokenize=False)
        for c in conversations
    ]
    images = [[image for turn in c for image in turn.images] for c in conversations]
    kwargs: dict[str, Any] = {"text": texts, "padding": True, "padding_side": "left", "return_tensors": "pt"}
    if any(images):
        if not all(images):
            raise InputError("a batch mixes items with and without images", "batch them separately")
        kwargs["images"] = images
    inputs = lm.processor(**kwargs).to(lm.device)
    if "pixel_values" in inputs:
        inputs["pixel_values"] = inputs["pixel_values"].to(lm.dtype)
    return inputs


def _generate_kwargs(lm: LoadedModel, settings: GenerationSettings) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "max_new_tokens": settings.max_new_tokens,
        "do_sample": settings.do_sample,
        "pad_token_id": lm.tokenizer.pad_token_id,
    }
    if settings.do_sample:
        kwargs.update(temperature=settings.temperature, top_p=settings.top_p)
    else:
        # Unset sampling knobs a checkpoint's generation_config may carry, so greedy decoding stays quiet.
        kwargs.update(temperature=None, top_p=None, top_k=None)
    return kwargs


def _seed(settings: GenerationSettings) -> None:
    if settings.seed is not None:
        import torch

        torch.manual_seed(settings.seed)


def generate(
    lm: LoadedModel,
    conversations: Sequence[Conversation],
    settings: GenerationSettings | None = None,
    batch_size: int = 8,
) -> list[str]:
    """Answer each conversation; runs `batch_size` conversations per forward pass, returns texts in input order."""
    return _generate(lm, conversations, settings, batch_size, lengths=None)


def generate_checked(
    lm: LoadedModel,
    conversations: Sequence[Conversation],
    lengths: Sequence[int],
    settings: GenerationSettings | None = None,
    batch_size: int = 8,
) -> list[str]:
    """`generate` for conversations that already passed `check_conversation`, with the token counts that check
    found (a server checks each request as it arrives): they are neither checked nor counted again."""
    return _generate(lm, conversations, settings, batch_size, lengths)


def _generate(
    lm: LoadedModel,
    conversations: Sequence[Conversation],
    settings: GenerationSettings | None,
    batch_size: int,
    lengths: Sequence[int] | None,
) -> list[str]:
    import torch

    settings = settings or GenerationSettings()
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}", "use --batch-size 1 or more")
    _seed(settings)
    answers: dict[int, str] = {}
    for batch in _length_batches(lm, conversations, batch_size, lengths=lengths):
        inputs = prepare_inputs(lm, [conversations[i] for i in batch], checked=lengths is not None)
        with torch.inference_mode():
            output = lm.model.generate(**inputs, **_generate_kwargs(lm, settings))
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        texts = lm.processor.batch_decode(new_tokens, skip_special_tokens=True)
        answers.update((i, text.strip()) for i, text in zip(batch, texts))
    return [answers[i] for i in range(len(conversations))]


def _length_batches(
    lm: LoadedModel,
    conversations: Sequence[Conversation],
    batch_size: int,
    max_batch_tokens: int = MAX_BATCH_TOKENS,
    lengths: Sequence[int] | None = None,
) -> list[list[int]]:
    """Indices grouped into batches of similar prompt length, so short prompts are not padded to long ones.

    Length = text tokens of the rendered prompt + image tokens (from the processor's own count where it offers
    one). A batch also stops growing when its padded size (members x longest prompt) would pass
    `max_batch_tokens`, so one very long prompt runs with few or no others instead of inflating a full batch.
    Conversations with images and text-only ones never share a batch (processors take images for all or none)."""
    if len(conversations) == 1:
        return [[0]]
    lengths = list(lengths) if lengths is not None else [_estimated_length(lm, c) for c in conversations]
    has_images = [any(turn.images for turn in c) for c in conversations]
    batches: list[list[int]] = []
    for kind in (True, False):
        batches_of_kind: list[list[int]] = []
        for index in sorted((i for i in range(len(conversations)) if has_images[i] == kind), key=lengths.__getitem__):
            current = batches_of_kind[-1] if batches_of_kind else None
            if current and len(current) < batch_size and (len(current) + 1) * lengths[index] <= max_batch_tokens:
                current.append(index)
            else:
                batches_of_kind.append([index])
        batches += batches_of_kind
    return batches


def _estimated_length(lm: LoadedModel, conversation: Conversation) -> int:
    sizes = [(im.height, im.width) for turn in conversation for im in turn.images]
    return estimate_tokens(lm.processor, to_messages(conversation), sizes)


def estimate_tokens(
    processor: ProcessorMixin,
    messages: list[dict],
    image_sizes: Sequence[tuple[int, int]],
    add_generation_prompt: bool = True,
) -> int:
    """Tokens a chat will take: text tokens of the rendered template plus image tokens, counted by the processor
    from the image sizes (height, width) where it offers that; no image is decoded or preprocessed."""
    text = processor.apply_chat_template(messages, add_generation_prompt=add_generation_prompt, tokenize=False)
    tokenizer = getattr(processor, "tokenizer", processor)
    length = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    count = getattr(processor, "_get_num_multimodal_tokens", None)
    if image_sizes and count is not None:
        try:
            length += sum(count(image_sizes=list(image_sizes)).num_image_tokens)
        except (AttributeError, TypeError, ValueError):
            pass  # processors without a per-image count: the text length alone still orders batches
    return length


def stream(
    lm: LoadedModel,
    conversation: Conversation,
    settings: GenerationSettings | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[str]:
    """Yield the answer to one conversation piece by piece as tokens are generated; setting `cancel` stops the
    generation after the current token (a server uses it when the client goes away)."""
    return _stream(lm, conversation, settings, cancel, checked=False)


def stream_checked(
    lm: LoadedModel,
    conversation: Conversation,
    settings: GenerationSettings | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[str]:
    """`stream` for a conversation that already passed `check_conversation` (it is not checked again)."""
    return _stream(lm, conversation, settings, cancel, checked=True)


def _stream(
    lm: LoadedModel,
    conversation: Conversation,
    settings: GenerationSettings | None,
    cancel: threading.Event | None,
    checked: bool,
) -> Iterator[str]:
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

    class _Cancelled(StoppingCriteria):
        def __init__(self, event: threading.Event) -> None:
            self.event = event

        def __call__(self, input_ids, scores, **kwargs):
            return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)

    settings = settings or GenerationSettings()
    _seed(settings)
    inputs = prepare_inputs(lm, [conversation], checked=checked)
    streamer = TextIteratorStreamer(lm.tokenizer, skip_prompt=True, skip_special_tokens=True)
    extra = {"stopping_criteria": StoppingCriteriaList([_Cancelled(cancel)])} if cancel is not None else {}
    failure: list[BaseException] = []

    def run() -> None:
        try:
            with torch.inference_mode():
                lm.model.generate(**inputs, **_generate_kwargs(lm, settings), streamer=streamer, **extra)
        except BaseException as exc:  # re-raised in the caller's thread below
            failure.append(exc)
            streamer.end()

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    try:
        yield from streamer
    except GeneratorExit:  # the caller stopped reading: with `cancel`, end the generation too
        if cancel is not None:
            cancel.set()
            worker.join()
        raise
    worker.join()
    if failure:
        raise failure[0]


def choose_option(
    lm: LoadedModel,
    conversations: Sequence[Conversation],
    choices: Sequence[Sequence[str]],
    batch_size: int = 8,
) -> list[str]:
    """For each conversation, the choice (e.g. an option letter) whose first token the model finds most likely
    as the start of its answer. One forward pass per batch, no generation; left padding puts every prompt's
    next-token logits at the last position."""
    import torch

    if any(not options for options in choices):
        raise InputError("choose_option got a question without choices", "pass the option letters")
    answers: dict[int, str] = {}
    for batch in _length_batches(lm, conversations, batch_size):
        inputs = prepare_inputs(lm, [conversations[i] for i in batch])
        with torch.inference_mode():
            logits = lm.model(**inputs).logits[:, -1, :]
        for i, row in zip(batch, logits):
            ids = [lm.tokenizer.encode(option, add_special_tokens=False)[0] for option in choices[i]]
            answers[i] = choices[i][int(torch.argmax(row[ids]))]
    return [answers[i] for i in range(len(conversations))]
