"""Answer extraction and the report, checked against fixtures made with FaceXBench's official script."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from facellm.cli import cli
from facellm.errors import InputError
from facellm.eval.extract import extract_compat, extract_strict
from facellm.eval.report import load_predictions, official_text, parse_official_text, score, write_report
from tests.conftest import SHARED_FACEXBENCH

CASES = SHARED_FACEXBENCH / "extraction_cases.jsonl"
SAMPLE_RUN = SHARED_FACEXBENCH / "sample_run"
needs_cases = pytest.mark.skipif(not CASES.is_file(), reason="../shared/facexbench is not present")


def _cases():
    return [json.loads(line) for line in CASES.read_text().splitlines()]


@needs_cases
def test_compat_equals_official_on_every_case():
    cases = _cases()
    assert len(cases) > 4000
    wrong = [c for c in cases if extract_compat(c["prediction"], c["options"]) != c["official"]]
    assert wrong == []


@needs_cases
def test_strict_reads_the_intended_option_on_every_case():
    cases = _cases()
    wrong = [c for c in cases if extract_strict(c["prediction"], c["options"]) != c["intended"]]
    assert wrong == []
    # The fixture is only a good test if the two extractors really disagree on it.
    assert sum(extract_compat(c["prediction"], c["options"]) != c["intended"] for c in cases) > 700


FOUR = ["20-29", "40-49", "30-39", "None of the above"]


@pytest.mark.parametrize(
    ("answer", "options", "compat", "strict"),
    [
        ("A woman in her thirties, so (C).", FOUR, "A", "C"),  # a leading article read as option A
        ("12", ["1", "12", "3", "4"], "A", "B"),  # "12" contains option "1"
        ("Image 1 and Image 2", ["Image 1", "Image 1 and Image 2", "Image 3", "Image 4"], "A", "B"),
        ("b)", FOUR, None, "B"),  # lowercase letters never count officially
        ("the answer is d", ["p", "q", "r", "s"], "C", "D"),  # option "r" occurs inside "answer"
        ("B... no, C", ["p", "q", "r", "s"], "B", "C"),  # self-correction
        ("Step 1: look at the eyes.\nStep 2: compare.\nAnswer: D", FOUR, "D", "D"),  # CoT final line
        ("C or B", ["hat", "eye glasses", "earring", "necklace"], "C", None),  # hedge commits to nothing
        ("It is not 2; it is 1.", ["2", "3", "0", "1"], "A", "D"),
        ("", FOUR, None, None),
    ],
)
def test_known_faults(answer, options, compat, strict):
    assert extract_compat(answer, options) == compat
    assert extract_strict(answer, options) == strict


@pytest.mark.skipif(not SAMPLE_RUN.is_dir(), reason="../shared/facexbench is not present")
def test_report_equals_official_aggregation(tmp_path):
    results = tmp_path / "vlmevalkit-run"
    shutil.copytree(SAMPLE_RUN, results)
    expected = parse_official_text((SAMPLE_RUN / "expected_results.txt").read_text())
    report, _ = score(load_predictions(results), "compat")
    assert parse_official_text(official_text(report, "golden")) == expected
    assert expected["total"] == (263, 560)

    # Through the CLI, on a folder in FaceXBench's own result layout (as VLMEvalKit runs leave them).
    result = CliRunner().invoke(cli, ["eval", "report", str(results), "--model-name", "golden"])
    assert result.exit_code == 0, result.output
    assert parse_official_text((results / "results.txt").read_text()) == expected
    payload = json.loads((results / "report.json").read_text())
    strict = next(r for r in payload["reports"] if r["extractor"] == "strict")
    assert strict["overall"]["correct"] > 263  # the strict reader recovers answers the official one misreads
    assert (results / "report.png").stat().st_size > 10_000
    assert "FaceLLM-1B" in (results / "report.md").read_text()


def test_report_on_missing_or_empty_folder(tmp_path):
    with pytest.raises(InputError, match="results folder not found"):
        load_predictions(tmp_path / "absent")
    with pytest.raises(InputError, match="no FaceXBench result files"):
        write_report(tmp_path, tmp_path, "x")
    result = CliRunner().invoke(cli, ["eval", "report", str(tmp_path / "absent")])
    assert result.exit_code == 2 and "results folder not found" in result.output


def test_missing_prediction_counts_as_wrong(tmp_path):
    data = {
        "category": "bias_fairness",
        "sub-category": "age",
        "num_images": "single",
        "questions": {
            "1": {"options": ["a", "b"], "correct_answer_option": "A", "prediction": "A"},
            "2": {"options": ["a", "b"], "correct_answer_option": "B"},
        },
    }
    (tmp_path / "f.json").write_text(json.dumps(data))
    report, _ = score(load_predictions(tmp_path), "strict")
    assert (report.overall.correct, report.overall.total, report.overall.unparsed) == (1, 2, 1)


def test_plots_leave_the_process_matplotlib_backend_alone(tmp_path):
    import matplotlib

    from facellm.finetune.recipe import plot_loss

    matplotlib.use("svg")
    plot_loss([(1, 2.0), (2, 1.5)], tmp_path / "loss.png")
    assert (tmp_path / "loss.png").stat().st_size > 1000 and matplotlib.get_backend() == "svg"
