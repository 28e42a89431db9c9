"""vLLM's InternVL vision tower run alone, outside its engine, on the pixel values facellm computes.

Narrows down bench/interop/interop_vllm.py's finding (image answers differ while text answers and the language model
given our image features match): if vLLM's own vision module, loaded with the tiny checkpoint's weights, gives the
transformers vision tower's output on the same pixel values, the difference lies in what vLLM's engine feeds it
(its multimodal pipeline's pixel values) or in the attention backend the engine picks, not in the module's code.
Run: python -m bench.interop.vllm_vision_alone --env ENV   (ENV from bench/interop/vllm_env.sh)
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path


def reference(folder: Path) -> None:
    """Tiny checkpoint, one sample face's pixel values and the transformers vision tower's output, in `folder`."""
    import torch
    from interop_vllm import as_sent

    from facellm.images import read_image
    from facellm.model import load_model, question
    from facellm.model.generate import prepare_inputs
    from facellm.model.tiny import make_tiny_checkpoint
    from facellm.samples import sample_faces

    lm = load_model(make_tiny_checkpoint(folder / "tiny"), device="cpu")
    image = read_image(sample_faces()[0].path)
    (sent,) = as_sent([image])
    pixels = prepare_inputs(lm, [question([sent], "Describe the face.")])["pixel_values"]
    with torch.inference_mode():
        vision = lm.model.model.vision_tower(pixel_values=pixels).last_hidden_state
    torch.save({"pixel_values": pixels, "vision": vision}, folder / "reference.pt")


def inside_vllm(folder: Path) -> None:
    """In vLLM's environment: its InternS1 vision module with the checkpoint's weights on the saved pixel values."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoConfig
    from vllm.config import VllmConfig, set_current_vllm_config
    from vllm.distributed import init_distributed_environment, initialize_model_parallel

    context = set_current_vllm_config(VllmConfig())  # held for the whole function: vLLM's layers read it
    context.__enter__()
    init_distributed_environment(
        world_size=1, rank=0, local_rank=0, backend="gloo", distributed_init_method="tcp://127.0.0.1:29533"
    )
    initialize_model_parallel(1, 1)
    from vllm.model_executor.models.interns1_vit import InternS1VisionModel

    config = AutoConfig.from_pretrained(folder / "tiny")
    saved = torch.load(folder / "reference.pt")
    weights = load_file(folder / "tiny" / "model.safetensors")
    tower = InternS1VisionModel(config.vision_config)
    parameters = dict(tower.named_parameters())
    missing = [name for name in parameters if f"vision_tower.{name}" not in weights]
    for name, parameter in parameters.items():
        if name not in missing:
            parameter.data.copy_(weights[f"vision_tower.{name}"])
    for module in tower.modules():  # vLLM prepares its CPU linear layers after loading
        method = getattr(module, "quant_method", None)
        if method is not None and hasattr(method, "process_weights_after_loading"):
            method.process_weights_after_loading(module)
    with torch.inference_mode():
        output = tower(pixel_values=saved["pixel_values"])
    gap = (output - saved["vision"]).abs().max().item()
    print(
        f"vLLM's vision tower, {len(parameters) - len(missing)} weights loaded, {len(missing)} missing "
        f"{missing[:5]}; pixel values {tuple(saved['pixel_values'].shape)}; largest |vLLM - transformers| "
        f"on the vision output: {gap:.2e}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", type=Path, required=True, help="vLLM environment (bench/interop/vllm_env.sh)")
    parser.add_argument("--inside", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        inside_vllm(args.inside)
        return
    with tempfile.TemporaryDirectory() as tmp:
        reference(Path(tmp))
        result = subprocess.run(
            [str(args.env / "bin" / "python"), __file__, "--env", str(args.env), "--inside", tmp],
            capture_output=True,
            text=True,
        )
        lines = [line for line in result.stdout.splitlines() if line.startswith("vLLM's vision tower")]
        print("\n".join(lines) or f"failed: {result.stderr[-2000:]}")


if __name__ == "__main__":
    main()
