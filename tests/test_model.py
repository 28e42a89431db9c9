"""The model layer on the offline tiny InternVL checkpoint and real sample faces."""

from __future__ import annotations

import pytest
import torch

from facellm.errors import InputError, ModelLoadError
from facellm.model import GenerationSettings, Turn, generate, load_model, question, stream
from facellm.model.generate import prepare_inputs
from facellm.model.loading import resolve_device, resolve_dtype

SHORT = GenerationSettings(max_new_tokens=8)


def test_tiny_checkpoint_loads_through_auto_classes(tiny_lm):
    assert type(tiny_lm.model).__name__ == "InternVLForConditionalGeneration"
    assert type(tiny_lm.processor).__name__ == "InternVLProcessor"
    assert tiny_lm.model.config.image_token_id == tiny_lm.tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>")
    assert tiny_lm.device.type == "cpu" and tiny_lm.dtype == torch.float32


def test_single_image_answer(tiny_lm, face_images):
    answer = generate(tiny_lm, [question([face_images[0]], "Describe this face.")], SHORT)
    assert len(answer) == 1 and answer[0]


def test_multi_image_prompt_holds_every_image(tiny_lm, face_images):
    conversation = question(face_images[:3], "Are these the same person?")
    inputs = prepare_inputs(tiny_lm, [conversation])
    start = tiny_lm.tokenizer.convert_tokens_to_ids("<img>")
    assert int((inputs["input_ids"] == start).sum()) == 3
    multi = generate(tiny_lm, [conversation], SHORT)[0]
    single = generate(tiny_lm, [question(face_images[:1], "Are these the same person?")], SHORT)[0]
    assert multi != single  # the other two images reach the model


@pytest.mark.slow
def test_batched_greedy_equals_one_at_a_time(tiny_lm, face_images):
    conversations = [
        question([face_images[0]], "Describe this image."),
        question([face_images[1]], "What is the age group of this person, judging only from the face?"),
        question(face_images[2:4], "Compare them."),
        question([face_images[4]], "Pose?"),
    ]
    settings = GenerationSettings(max_new_tokens=12)
    batched = generate(tiny_lm, conversations, settings, batch_size=4)
    one_by_one = [generate(tiny_lm, [c], settings)[0] for c in conversations]
    assert batched == one_by_one
    # Smaller batches are formed by prompt length, not input order; answers still come back in input order.
    assert generate(tiny_lm, conversations, settings, batch_size=3) == one_by_one
    assert len(set(batched)) == len(batched)  # different inputs give different answers, so equality means something
    inputs = prepare_inputs(tiny_lm, conversations)
    assert (inputs["attention_mask"][:, -1] == 1).all()  # left padding: every prompt ends at the last position


def test_stream_yields_the_generated_answer(tiny_lm, face_images):
    conversation = question([face_images[5]], "Describe the skin texture.")
    pieces = list(stream(tiny_lm, conversation, SHORT))
    assert len(pieces) > 1
    assert "".join(pieces).strip() == generate(tiny_lm, [conversation], SHORT)[0]


def test_multi_turn_history_changes_the_answer(tiny_lm, face_images):
    first = [Turn("user", "Describe this face.", [face_images[0]])]
    follow_up = first + [Turn("assistant", "a young man"), Turn("user", "And the lighting?")]
    fresh = [Turn("user", "And the lighting?", [face_images[0]])]
    assert generate(tiny_lm, [follow_up], SHORT) != generate(tiny_lm, [fresh], SHORT)


def test_seeded_sampling_is_reproducible(tiny_lm, face_images):
    conversation = question([face_images[0]], "Describe this image.")
    settings = GenerationSettings(max_new_tokens=12, do_sample=True, temperature=1.0, seed=7)
    assert generate(tiny_lm, [conversation], settings) == generate(tiny_lm, [conversation], settings)
    greedy = generate(tiny_lm, [conversation], GenerationSettings(max_new_tokens=12))
    samples = {generate(tiny_lm, [conversation], GenerationSettings(12, True, 1.5, 1.0, s))[0] for s in range(4)}
    assert samples - set(greedy)


def test_lora_adapter_loads_and_changes_logits(tiny_checkpoint, tiny_lm, face_images, tmp_path):
    from peft import LoraConfig, get_peft_model

    base = load_model(tiny_checkpoint, device="cpu")
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(base.model, config).save_pretrained(tmp_path / "adapter")

    adapted = load_model(tiny_checkpoint, adapter=tmp_path / "adapter", device="cpu")
    assert type(adapted.model).__name__ == "PeftModel"
    inputs = prepare_inputs(tiny_lm, [question([face_images[0]], "Describe this image.")])
    with torch.inference_mode():
        plain = tiny_lm.model(**inputs).logits
        tuned = adapted.model(**inputs).logits
    assert not torch.allclose(plain, tuned)


def test_missing_adapter_folder_is_reported(tiny_checkpoint, tmp_path):
    with pytest.raises(ModelLoadError, match="not a PEFT adapter folder"):
        load_model(tiny_checkpoint, adapter=tmp_path, device="cpu")


def test_unreachable_model_names_the_fix():
    with pytest.raises(ModelLoadError, match="cannot load model 'Idiap/FaceLLM-1B'.*--model with a local"):
        load_model("Idiap/FaceLLM-1B", device="cpu")


def test_missing_model_folder(tmp_path):
    with pytest.raises(ModelLoadError, match="model folder not found"):
        load_model(tmp_path / "absent", device="cpu")


def test_folder_without_checkpoint(tmp_path):
    with pytest.raises(ModelLoadError, match="cannot load model"):
        load_model(tmp_path, device="cpu")


def test_conversation_must_end_with_a_question(tiny_lm, face_images):
    with pytest.raises(InputError, match="non-empty user question"):
        generate(tiny_lm, [question([], "   ")])
    with pytest.raises(InputError, match="image placeholder <IMG_CONTEXT>"):
        generate(tiny_lm, [question([face_images[0]], "What is <IMG_CONTEXT> here?")])
    assert generate(tiny_lm, [question([face_images[0]], "")], SHORT)[0]  # an image alone is a valid prompt


def test_images_and_text_only_questions_in_one_call(tiny_lm, face_images):
    """Items with and without images are batched apart inside one call; answers equal one-at-a-time answers."""
    items = [question([face_images[0]], "a"), question([], "b"), question([face_images[1]], "c"), question([], "d")]
    together = generate(tiny_lm, items, SHORT, batch_size=4)
    assert together == [generate(tiny_lm, [item], SHORT)[0] for item in items]


def test_text_only_question(tiny_lm):
    assert generate(tiny_lm, [question([], "Hello there")], SHORT)[0]


@pytest.mark.parametrize(
    "kwargs",
    [{"max_new_tokens": 0}, {"do_sample": True, "temperature": 0}, {"top_p": 0}, {"top_p": 1.5}],
)
def test_generation_settings_are_validated(kwargs):
    with pytest.raises(InputError):
        GenerationSettings(**kwargs)


def test_device_and_dtype_resolution():
    cpu = resolve_device("cpu")
    assert resolve_dtype("auto", cpu) == torch.float32
    assert resolve_dtype("bfloat16", cpu) == torch.bfloat16
    assert resolve_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(InputError, match="unknown dtype"):
        resolve_dtype("int3", cpu)
    with pytest.raises(InputError, match="unknown device"):
        resolve_device("toaster")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA is not available"):
            resolve_device("cuda")


def test_bfloat16_generation_on_cpu(tiny_checkpoint, face_images):
    lm = load_model(tiny_checkpoint, device="cpu", dtype="bfloat16")
    assert next(lm.model.parameters()).dtype == torch.bfloat16
    assert generate(lm, [question([face_images[0]], "Describe this image.")], SHORT)[0]


def test_batches_group_by_length_under_a_token_budget(tiny_lm, face_images):
    from facellm.model.generate import _estimated_length, _length_batches

    short = [question([face_images[i]], "Age?") for i in range(3)]
    long = question(face_images[:4], "Describe every face in detail. " * 20)
    conversations = [short[0], long, short[1], short[2]]
    long_length = _estimated_length(tiny_lm, long)
    assert long_length > 2 * _estimated_length(tiny_lm, short[0])
    assert _length_batches(tiny_lm, conversations, batch_size=8) == [[0, 2, 3, 1]]
    assert _length_batches(tiny_lm, conversations, batch_size=8, max_batch_tokens=long_length) == [[0, 2, 3], [1]]
    assert _length_batches(tiny_lm, conversations, batch_size=2) == [[0, 2], [3, 1]]


def test_saved_processor_config_says_how_images_are_tiled(tiny_checkpoint, tmp_path):
    """InternVL's processor tiles whatever `crop_to_patches` says; vLLM sizes its image budget from that flag, so a
    saved config must state what the processor does (published InternVL3-hf configs say false)."""
    import json

    from PIL import Image
    from transformers import AutoProcessor

    from facellm.model.loading import save_processor

    def tiles(processor) -> int:
        wide = Image.new("RGB", (256, 64))  # four 64 px tiles, plus the thumbnail when tiling
        return processor(text=processor.image_token, images=[wide], return_tensors="pt")["pixel_values"].shape[0]

    def saved_flag(folder) -> bool:
        return json.loads((folder / "processor_config.json").read_text())["image_processor"]["crop_to_patches"]

    assert saved_flag(tiny_checkpoint) is True
    published = AutoProcessor.from_pretrained(tiny_checkpoint)
    published.image_processor.crop_to_patches = False  # as published; the processor still tiles
    assert tiles(published) == 5
    save_processor(published, tmp_path / "saved")
    assert saved_flag(tmp_path / "saved") is True
    single = AutoProcessor.from_pretrained(tiny_checkpoint)
    single.image_processor.max_patches = 1  # no tiling at all: the flag says so
    assert tiles(single) == 1
    save_processor(single, tmp_path / "single")
    assert saved_flag(tmp_path / "single") is False


def test_tiny_checkpoint_tokenizer_and_model_agree_on_the_context(tiny_checkpoint):
    """Issue 34 item 5: the tokenizer said 4,096 tokens where the model takes 8,192."""
    import json

    from transformers import AutoTokenizer

    config = json.loads((tiny_checkpoint / "config.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    assert tokenizer.model_max_length == config["text_config"]["max_position_embeddings"] == 8192
