"""A released package, not only a clone: build the wheel, install it in a fresh environment, and run the paper's
plan and the demo from an empty folder (the recipes travel inside the package)."""

from __future__ import annotations

import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(*command: object, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    environment.pop("FACELLM_API_KEY", None)
    environment.pop("OPENAI_API_KEY", None)
    return subprocess.run(
        [str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=environment
    )


def see_dependencies(python: Path) -> None:
    """Let a new environment import what this one has installed, after its own packages. `venv
    --system-site-packages` would show it the base interpreter's packages instead when the tests themselves run in a
    virtual environment (how most users install)."""
    own = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=ROOT).stdout.strip()
    ours = [path for path in site.getsitepackages() if Path(path).is_dir()]
    lines = [f"import site; site.addsitedir({path!r})" for path in ours]
    (Path(own) / "outer-environment.pth").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.slow
def test_a_wheel_install_plans_the_paper_and_runs_the_demo_from_an_empty_folder(tmp_path):
    built = run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", tmp_path, ROOT, cwd=ROOT
    )
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next(tmp_path.glob("facellm-*.whl"))
    venv = tmp_path / "venv"
    # The project's dependencies come from this environment; the package itself only from the wheel.
    assert run(sys.executable, "-m", "venv", venv, cwd=tmp_path).returncode == 0
    python, facellm = venv / "bin" / "python", venv / "bin" / "facellm"
    see_dependencies(python)
    installed = run(python, "-m", "pip", "install", "--no-deps", "--no-index", wheel, cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr[-2000:]
    empty = tmp_path / "empty"
    empty.mkdir()
    where = run(python, "-c", "import facellm; print(facellm.__file__)", cwd=empty)
    assert where.stdout.startswith(str(venv)), where.stdout + where.stderr

    plan = run(facellm, "reproduce", "--size", "1b", "--dry-run", cwd=empty)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "facellm train --config configs/train/facellm-1b.yaml" in plan.stdout
    config = run(
        python,
        "-c",
        "from facellm.configs import config_file; print(config_file('configs/train/facellm-1b.yaml'))",
        cwd=empty,
    )
    assert config.stdout.strip().startswith(str(venv)), config.stdout + config.stderr  # the plan's path resolves
    shipped = run(facellm, "dev", "configs", "facellm-1b", cwd=empty)
    assert shipped.returncode == 0 and shipped.stdout.strip().startswith(str(venv)), shipped.stdout + shipped.stderr
    accelerate = run(facellm, "dev", "configs", "fsdp", cwd=empty)
    assert Path(accelerate.stdout.strip()).is_file()

    demo = run(facellm, "demo", "--images", "4", "--eval-images", "2", "--train-steps", "4", cwd=empty, timeout=600)
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    assert (empty / "runs" / "demo" / "report" / "report.md").is_file()
