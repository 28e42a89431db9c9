"""The Python API: every example of docs/python-api.md runs as written (from a folder laid out like the repository
root), and the functions return typed results, refuse bad input in one line, and import lazily."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import facellm
from facellm.api import Answer, Verification
from facellm.errors import FaceLLMError
from facellm.faces.analyze import FaceAnalysis, ImageAnalysis
from facellm.samples import SAMPLE_DIR

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "python-api.md"
JOBS = ("analyze", "verify", "ask", "evaluate", "build_dataset", "train")


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.slow
def test_every_example_of_the_page_runs_in_order(tmp_path, monkeypatch, capsys):
    blocks = python_blocks(PAGE.read_text(encoding="utf-8"))
    assert len(blocks) >= 4
    (tmp_path / "src").symlink_to(ROOT / "src")  # the repository root's paths, with the outputs kept in tmp_path
    monkeypatch.chdir(tmp_path)
    names: dict = {}
    for number, block in enumerate(blocks, 1):
        exec(compile(block, f"python-api.md block {number}", "exec"), names)
    printed = capsys.readouterr().out
    assert "different people" in printed or "same person" in printed
    assert names["built"].pairs > 0 and names["trained"].global_step == 2
    assert names["run"].counts.answered_total == names["run"].counts.questions > 0
    assert (tmp_path / "runs" / "api-examples" / "eval-specialist" / "report.md").is_file()


def test_the_six_jobs_are_typed_and_documented():
    for name in JOBS:
        function = getattr(facellm, name)
        assert function.__doc__ and function.__annotations__.get("return"), name
        assert name in facellm.__all__


def test_analyze_and_ask_return_typed_results():
    face = SAMPLE_DIR / "val_119.jpg"
    found = facellm.analyze(face)
    assert isinstance(found, ImageAnalysis) and found.face_count == 1 and isinstance(found.faces[0], FaceAnalysis)
    answer = facellm.ask(str(face), "Is this a man or a woman?", model="specialist")
    assert isinstance(answer, Answer) and answer.text.startswith("Man") and "specialist" in answer.model
    same = facellm.verify(face, face)
    assert isinstance(same, Verification) and same.same_person and same.distance < 0.05 and same.faces == (1, 1)


def test_bad_input_is_one_clear_error(tmp_path):
    with pytest.raises(FaceLLMError, match="not found"):
        facellm.analyze(tmp_path / "missing.jpg")
    with pytest.raises(FaceLLMError, match="question is empty"):
        facellm.ask(SAMPLE_DIR / "val_119.jpg", "  ", model="specialist")
    with pytest.raises(FaceLLMError, match="no training config"):
        facellm.train(None)
    with pytest.raises(FaceLLMError, match="limit must be at least 1"):
        facellm.evaluate(tmp_path, tmp_path / "run", model="specialist", limit=0)
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_import_facellm_loads_nothing_heavy():
    code = "import sys, facellm; print(sorted(m for m in ('torch', 'transformers', 'dlib', 'cv2') if m in sys.modules))"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    printed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert printed.strip() == "[]"
