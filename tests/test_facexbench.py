"""FaceXBench loading and prompts against the benchmark's real question files."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from facellm.errors import InputError
from facellm.eval.facexbench import CATEGORIES, COT_INSTRUCTION, build_prompt, load_benchmark
from tests.conftest import ASSETS, SHARED_FACEXBENCH, needs_shared_facexbench

OFFICIAL_CATEGORY_COUNTS = {
    "bias_fairness": 1500,
    "face_localization": 1100,
    "attributes_expression": 800,
    "face_recognition": 800,
    "fas_deepfakes": 700,
    "tools_use": 100,
}
OFFICIAL_SUBCATEGORY_COUNTS = {
    "age": 500,
    "gender": 500,
    "race": 500,
    "headpose": 400,
    "segmentation": 400,
    "crowd_counting": 300,
    "attributes": 400,
    "expression": 400,
    "hr_fr": 400,
    "celebrity_identification": 300,
    "lr_fr": 100,
    "fas": 400,
    "deepfakes": 300,
    "tools_retrieval": 100,
}


@needs_shared_facexbench
def test_all_5000_questions_load_with_official_counts():
    questions = load_benchmark(SHARED_FACEXBENCH / "benchmark")
    assert len(questions) == 5000
    assert len({q.key for q in questions}) == 5000
    assert Counter(q.category for q in questions) == OFFICIAL_CATEGORY_COUNTS
    assert Counter(q.subcategory for q in questions) == OFFICIAL_SUBCATEGORY_COUNTS
    assert {q.subcategory for q in questions} == {s for subs in CATEGORIES.values() for s in subs}


def test_every_prompt_is_built_in_every_setting(bench_source):
    questions = load_benchmark(bench_source)
    for q in questions:
        assert q.correct in q.letters
        for setting in ("zero-shot", "in-context", "cot"):
            prompt = build_prompt(q, setting)
            option_lines = prompt.rstrip("\n").splitlines()[-len(q.options) :]
            assert option_lines == [f"({letter}) {option}" for letter, option in zip(q.letters, q.options)]
            assert (q.prepend_text in prompt) == (setting == "in-context" and bool(q.prepend_text))
            assert (COT_INSTRUCTION in prompt) == (setting == "cot")
            if q.category == "tools_use":
                assert prompt.startswith(q.context)


def test_prompt_matches_the_official_runner_layout():
    data = json.loads((ASSETS / "facexbench" / "utkface_single_mcq_age_test.json").read_text())
    raw = data["questions"]["1"]
    q = next(q for q in load_benchmark(ASSETS / "facexbench") if q.file == "utkface_single_mcq_age_test.json")
    expected = (
        data["prepend_text"]
        + "\n"
        + raw["question_text"]
        + "\n"
        + data["postpend_text"]
        + "\n"
        + "".join(f"({letter}) {option}\n" for letter, option in zip("ABCD", raw["options"]))
    )
    assert build_prompt(q, "in-context") == expected
    assert build_prompt(q, "zero-shot") == expected.removeprefix(data["prepend_text"] + "\n")
    assert [p.name for p in q.image_paths] == ["question_1.png"]


def test_odd_option_counts_are_kept():
    questions = load_benchmark(ASSETS / "facexbench")
    assert {len(q.options) for q in questions} == {2, 3, 4}
    two = next(q for q in questions if len(q.options) == 2)
    assert two.letters == ["A", "B"] and build_prompt(two).endswith(f"(B) {two.options[1]}\n")


def test_only_and_limit():
    only = load_benchmark(ASSETS / "facexbench", only={"age", "hr_fr"}, limit=2)
    assert Counter(q.subcategory for q in only) == {"age": 2, "hr_fr": 2}
    with pytest.raises(InputError, match="no questions for --only"):
        load_benchmark(ASSETS / "facexbench", only={"nonsense"})


def test_bad_benchmark_folders(tmp_path):
    with pytest.raises(InputError, match="benchmark folder not found"):
        load_benchmark(tmp_path / "absent")
    with pytest.raises(InputError, match="no FaceXBench JSON files"):
        load_benchmark(tmp_path)
    (tmp_path / "broken.json").write_text('{"category": "x"}')
    with pytest.raises(InputError, match=r"not a FaceXBench question file: .*broken\.json"):
        load_benchmark(tmp_path)
    with pytest.raises(InputError, match="unknown setting"):
        build_prompt(load_benchmark(ASSETS / "facexbench")[0], "few-shot")


def _positions_report(benchmark, *extra):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(  # as bench/README.md runs it: a module, from the repository root
        [sys.executable, "-m", "bench.accuracy.facexbench_answer_position", "--benchmark", str(benchmark), *extra],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
    )
    return done


@needs_shared_facexbench
def test_answer_position_check_finds_the_crowd_range_shortcut(tmp_path):
    # In FaceXBench's crowd range files the right range is always the second lowest of the four.
    rows = _positions_report(SHARED_FACEXBENCH / "benchmark", "--min", "90").stdout.splitlines()
    crowd = next(line for line in rows if line.startswith("| shanghaitech_single_mcq_range |"))
    assert "0/50/0/0" in crowd and crowd.endswith("| 100% |")
    # Questions whose right value moves over every rank are not listed.
    ranges = ["10 to 14", "15 to 19", "20 to 24", "25 to 29"]
    even = {str(k): {"options": ranges, "correct_answer_option": "ABCD"[k % 4]} for k in range(8)}
    (tmp_path / "even_mcq.json").write_text(json.dumps({"questions": even}))
    assert "even_mcq" not in _positions_report(tmp_path, "--min", "30").stdout
    empty = _positions_report(tmp_path / "none")
    assert empty.returncode == 1 and "pass --benchmark DIR" in empty.stderr
