#!/usr/bin/env bash
# Builds (once) the virtual environment bench/interop/interop_llamafactory.py trains in: llamafactory 0.9.5, which pins
# transformers<=5.6 and peft<=0.18.1 (facellm runs newer ones), with whatever torch pip picks for this machine.
# Never part of the project's own dependencies. Usage: bench/interop/llamafactory_env.sh [ENV_DIR]
set -euo pipefail
env="${1:-${FACELLM_LLAMAFACTORY_ENV:-$HOME/.cache/facellm/bench-envs/llamafactory}}"
if [ -x "$env/bin/python" ] && "$env/bin/python" -c "import llamafactory" 2>/dev/null; then
  echo "$env"
  exit 0
fi
python3 -m venv "$env"
"$env/bin/python" -m pip install -q --upgrade pip
"$env/bin/python" -m pip install -q llamafactory==0.9.5
echo "$env"
