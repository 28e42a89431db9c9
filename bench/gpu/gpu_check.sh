#!/usr/bin/env bash
# The GPU check in one command, for a lent H100/H200 (no internet, no weights needed; PyTorch, transformers, peft and
# accelerate installed): the InternVL3-1B shape in bf16, LoRA at micro-batch 10 x 2048 (tokens/s, MFU, peak memory
# against `facellm plan`), batched vs one-at-a-time FaceXBench-style generation, likelihood scoring.
# Writes $OUT/gpu_check.json (OUT defaults to runs/gpu-check). Stops after 8 minutes whatever happens.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"  # runs from a bare checkout too
out="${OUT:-runs/gpu-check}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
timeout 480 python -m bench.gpu.gpu_check --out "$out/gpu_check.json" "$@"
