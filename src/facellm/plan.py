"""`facellm plan`: memory per GPU for LoRA training and for inference at the released InternVL3 shapes.

Parameter counts come from the model built on PyTorch's meta device from the shape files in
`facellm/model/shapes/` (no memory, no weights). Memory terms, per GPU, in bytes (w = bytes per weight and
activation: 2 for bf16, 4 for fp32; b = micro-batch, s = sequence length, N = GPUs):

- weights: P x w, divided by N under FSDP and ZeRO-3 (plus one gathered decoder layer, the largest, x w x 2);
- LoRA: P_lora x 16 (fp32 parameter, gradient and two AdamW moments: PEFT keeps adapters in fp32), / N when sharded;
- activations of the language model, per token: with gradient checkpointing each decoder layer keeps its input
  (h values) and one layer at a time is recomputed with everything its backward needs (6h + 2 kv + 4 I values: the
  two norm inputs, the shared projection inputs, query/key/value, attention output, and the MLP's gate, activation,
  up and product, I = MLP width); without checkpointing every layer keeps the latter. Times b x s x w;
- logits: b x s x V x (w + 8): the logits, their fp32 copy for the loss and its saved softmax (V = vocabulary);
- runtime: a fixed allowance (CUDA context and allocator slack; the interpreter and libraries on CPU).

The vision tower and projector are frozen and see no gradient, so they only add their weights. Inference: weights
(divided by the tensor-parallel size) + the KV cache (2 x layers x kv x w per token) of a FaceXBench batch.
FLOPs per trained token, for the bench and the GPU check: 6 x P_language (forward + backward through the language
model; the frozen vision tower's forward, 2 x P_vision per image token, comes on top for image tokens).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib.abc import Traversable
from importlib.resources import files
from typing import TYPE_CHECKING

from facellm.errors import InputError

if TYPE_CHECKING:
    from transformers import InternVLConfig


SIZES = ("1b", "8b", "38b")
STRATEGIES = ("single", "ddp", "fsdp", "zero3")
# The paper's recipe (FaceLLM, Idiap 2025): micro-batch x accumulation, cutoff 2048, LoRA r16 on the LLM.
PAPER_MICRO_BATCH = {"1b": 10, "8b": 10, "38b": 2}
CUTOFF = 2048
LORA_RANK = 16
RUNTIME_GIB = 1.0
# A FaceXBench batch at inference: the eval runner's 16 four-image questions (256 tokens per 448 px tile, one tile
# each), ~100 text tokens, 16 answer tokens.
EVAL_BATCH, EVAL_TOKENS = 16, 4 * 256 + 100 + 16
GIB = 2**30


def shape_file(size: str) -> Traversable:
    if size not in SIZES:
        raise InputError(f"unknown size {size!r}", f"use one of {', '.join(SIZES)}")
    return files("facellm.model").joinpath(f"shapes/internvl3-{size}.json")


def shape_config(size: str) -> InternVLConfig:
    """The `InternVLConfig` of a released InternVL3-hf shape."""
    from transformers import InternVLConfig

    values = json.loads(shape_file(size).read_text(encoding="utf-8"))
    return InternVLConfig(**{k: v for k, v in values.items() if not k.startswith("_") and k != "model_type"})


@dataclass(frozen=True)
class ShapeCounts:
    total: int
    vision: int
    projector: int
    language: int  # decoder layers, embeddings, final norm and lm_head
    lora: int  # rank-16 adapters on every linear layer of the language model (lm_head excepted)
    largest_layer: int  # parameters of the biggest decoder or vision layer (what FSDP/ZeRO-3 gather at once)
    hidden: int
    kv: int  # key/value width (heads x head dim)
    mlp: int
    layers: int
    vocab: int


@cache
def shape_counts(size: str, lora_rank: int = LORA_RANK) -> ShapeCounts:
    """Parameter counts of a shape, from the model built on the meta device (nothing is allocated)."""
    import torch
    from transformers import InternVLForConditionalGeneration

    config = shape_config(size)
    with torch.device("meta"):
        model = InternVLForConditionalGeneration(config)
    sizes = {name: p.numel() for name, p in model.named_parameters()}
    part = lambda key: sum(n for name, n in sizes.items() if key in name)  # noqa: E731
    lora = sum(
        lora_rank * (m.in_features + m.out_features)
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and "language_model" in name
    )
    layers = [module for name, module in model.named_modules() if name.endswith(("layers.0", "layer.0"))]
    text = config.text_config
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    return ShapeCounts(
        total=sum(sizes.values()),
        vision=part("vision_tower"),
        projector=part("multi_modal_projector"),
        language=part("language_model") + part("lm_head"),
        lora=lora,
        largest_layer=max(sum(p.numel() for p in layer.parameters()) for layer in layers),
        hidden=text.hidden_size,
        kv=text.num_key_value_heads * head_dim,
        mlp=text.intermediate_size,
        layers=text.num_hidden_layers,
        vocab=text.vocab_size,
    )


@dataclass
class StrategyPlan:
    strategy: str
    gpus: int
    weights_gib: float
    lora_state_gib: float
    activations_gib: float
    logits_gib: float
    runtime_gib: float
    total_gib: float
    fits: bool
    largest_micro_batch: int  # that fits at this sequence length (0: not even one)


@dataclass
class MemoryPlan:
    size: str
    parameters: dict
    dtype_bytes: int
    micro_batch: int
    seq_len: int
    gradient_checkpointing: bool
    gpu_memory_gib: float
    training: list[StrategyPlan] = field(default_factory=list)
    inference: dict = field(default_factory=dict)
    flops_per_token: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def training_bytes(
    counts: ShapeCounts,
    strategy: str,
    gpus: int,
    micro_batch: int,
    seq_len: int,
    dtype_bytes: int = 2,
    checkpointing: bool = True,
    runtime_gib: float = RUNTIME_GIB,
) -> dict:
    """The memory terms (bytes per GPU) of one training step; see the module docstring for each formula."""
    if strategy not in STRATEGIES:
        raise InputError(f"unknown strategy {strategy!r}", f"use one of {', '.join(STRATEGIES)}")
    sharded = strategy in ("fsdp", "zero3")
    shards = gpus if sharded else 1
    w = dtype_bytes
    weights = counts.total * w / shards + (counts.largest_layer * w * 2 if sharded and gpus > 1 else 0)
    lora = counts.lora * 16 / shards
    tokens = micro_batch * seq_len
    layer_values = 6 * counts.hidden + 2 * counts.kv + 4 * counts.mlp
    if checkpointing:
        activations = tokens * w * (counts.layers * counts.hidden + layer_values)
    else:
        activations = tokens * w * counts.layers * layer_values
    logits = tokens * counts.vocab * (w + 8)
    return {
        "weights": weights,
        "lora": lora,
        "activations": activations,
        "logits": logits,
        "runtime": runtime_gib * GIB,
    }


def memory_plan(
    size: str,
    gpus: int = 1,
    gpu_memory_gib: float = 80.0,
    micro_batch: int | None = None,
    seq_len: int = CUTOFF,
    dtype_bytes: int = 2,
    checkpointing: bool = True,
    runtime_gib: float = RUNTIME_GIB,
) -> MemoryPlan:
    """Per-GPU memory for training (each strategy) and inference at a released shape; which fit `gpu_memory_gib`."""
    if gpus < 1:
        raise InputError(f"--gpus must be at least 1, got {gpus}", "pass the number of GPUs, e.g. --gpus 8")
    if not gpu_memory_gib > 0:
        raise InputError(f"--gpu-memory must be positive, got {gpu_memory_gib}", "pass GiB per GPU, e.g. 80")
    if seq_len < 1 or (micro_batch is not None and micro_batch < 1):
        raise InputError("--seq-len and --micro-batch must be at least 1", "e.g. --micro-batch 10 --seq-len 2048")
    counts = shape_counts(size)
    batch = micro_batch or PAPER_MICRO_BATCH[size]
    plan = MemoryPlan(size, asdict(counts), dtype_bytes, batch, seq_len, checkpointing, gpu_memory_gib)
    limit = gpu_memory_gib * GIB
    for strategy in STRATEGIES:
        n = 1 if strategy == "single" else gpus
        terms = training_bytes(counts, strategy, n, batch, seq_len, dtype_bytes, checkpointing, runtime_gib)
        total = sum(terms.values())
        one = training_bytes(counts, strategy, n, 1, seq_len, dtype_bytes, checkpointing, runtime_gib)
        per_sample = one["activations"] + one["logits"]
        fixed = sum(one.values()) - per_sample
        largest = max(0, int((limit - fixed) // per_sample)) if per_sample else 0
        plan.training.append(
            StrategyPlan(
                strategy,
                n,
                _gib(terms["weights"]),
                _gib(terms["lora"]),
                _gib(terms["activations"]),
                _gib(terms["logits"]),
                runtime_gib,
                _gib(total),
                total <= limit,
                largest,
            )
        )
    kv_cache = eval_kv_cache_bytes(counts, dtype_bytes)
    for tp in sorted({1, gpus}):
        total = counts.total * dtype_bytes / tp + kv_cache / tp + runtime_gib * GIB
        plan.inference[f"tensor_parallel_{tp}"] = {
            "weights_gib": _gib(counts.total * dtype_bytes / tp),
            "kv_cache_gib": _gib(kv_cache / tp),
            "total_gib": _gib(total),
            "fits": total <= limit,
        }
    plan.inference["batch"] = {"questions": EVAL_BATCH, "tokens_each": EVAL_TOKENS}
    plan.flops_per_token = 6.0 * counts.language
    return plan


def eval_kv_cache_bytes(counts: ShapeCounts, dtype_bytes: int) -> int:
    """KV cache of one FaceXBench batch: keys and values of every layer for every token of every question."""
    return 2 * counts.layers * counts.kv * dtype_bytes * EVAL_BATCH * EVAL_TOKENS


VLLM_MEMORY_SHARE = 0.9  # vLLM's default --gpu-memory-utilization


def smallest_tensor_parallel(plan: MemoryPlan) -> int | None:
    """The fewest GPUs (a power of two up to 8) whose tensor-parallel inference fits in vLLM's default share of
    each GPU's memory, for `vllm serve --tensor-parallel-size`."""
    counts = shape_counts(plan.size)
    limit = plan.gpu_memory_gib * GIB * VLLM_MEMORY_SHARE
    kv = eval_kv_cache_bytes(counts, plan.dtype_bytes)
    for tp in (1, 2, 4, 8):
        if (counts.total * plan.dtype_bytes + kv) / tp + RUNTIME_GIB * GIB <= limit:
            return tp
    return None


def _gib(value: float) -> float:
    return round(value / GIB, 2)


def describe(plan: MemoryPlan) -> str:
    """The plan as a few lines of text (what `facellm plan` prints without --json)."""
    p = plan.parameters
    dtype = {2: "bf16", 4: "fp32"}.get(plan.dtype_bytes, f"{plan.dtype_bytes}-byte")
    lines = [
        f"InternVL3-{plan.size.upper()}: {p['total'] / 1e9:.3f} B parameters (vision {p['vision'] / 1e9:.3f} B, "
        f"projector {p['projector'] / 1e6:.1f} M, language {p['language'] / 1e9:.3f} B); LoRA r{LORA_RANK} on the "
        f"language model: {p['lora'] / 1e6:.1f} M trainable",
        f"training, {dtype}, micro-batch {plan.micro_batch} x {plan.seq_len} tokens, gradient checkpointing "
        f"{'on' if plan.gradient_checkpointing else 'off'}, {plan.gpu_memory_gib:g} GiB per GPU:",
    ]
    for s in plan.training:
        lines.append(
            f"  {s.strategy:6s} x{s.gpus}: {s.total_gib:7.1f} GiB per GPU (weights {s.weights_gib}, LoRA state "
            f"{s.lora_state_gib}, activations {s.activations_gib}, logits {s.logits_gib}, runtime {s.runtime_gib}) "
            f"-> {'fits' if s.fits else 'does not fit'}; largest micro-batch that fits: {s.largest_micro_batch}"
        )
    for name, row in plan.inference.items():
        if name.startswith("tensor_parallel"):
            lines.append(
                f"  inference, {name.replace('_', ' ')}: {row['total_gib']} GiB per GPU (weights "
                f"{row['weights_gib']}, KV cache {row['kv_cache_gib']} for {EVAL_BATCH} FaceXBench "
                f"questions) -> {'fits' if row['fits'] else 'does not fit'}"
            )
    tp = smallest_tensor_parallel(plan)
    lines.append(f"  serving with vLLM: --tensor-parallel-size {tp}" if tp else "  serving: does not fit on 8 GPUs")
    lines.append(f"  FLOPs per trained token (6 x language parameters): {plan.flops_per_token / 1e9:.2f} GFLOP")
    return "\n".join(lines)
