"""Score FaceXBench predictions: accuracy overall, per category, sub-category and image count, for both extractors.

Input is a folder of result files in FaceXBench's own layout (the question JSON with a `prediction` per question),
as `facellm eval facexbench` writes them under `RUN/results/` and as VLMEvalKit runs left them, so old runs can be
rescored. Outputs: the official script's `results.txt` text, `report.md`, `report.json` and `report.png`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from facellm.errors import InputError
from facellm.eval.extract import extract_compat, extract_strict
from facellm.eval.facexbench import CATEGORIES

EXTRACTORS: dict[str, Callable] = {"compat": extract_compat, "strict": extract_strict}
PUBLISHED_CSV = Path(__file__).parent / "published" / "facexbench_published.csv"
# Published column -> FaceXBench category.
PUBLISHED_COLUMNS = {
    "bias_fairness": "bias_fairness",
    "face_recognition": "face_recognition",
    "face_authentication": "fas_deepfakes",
    "face_analysis": "attributes_expression",
    "face_localization": "face_localization",
    "face_tools_use": "tools_use",
}


@dataclass
class Scored:
    """One answered question: where it belongs in the report and what it scored."""

    file: str
    qid: str
    category: str
    subcategory: str
    num_images: str
    correct: str
    prediction: str | None
    extracted: str | None


@dataclass
class Tally:
    correct: int = 0
    total: int = 0
    unparsed: int = 0

    @property
    def accuracy(self) -> float:
        return 100.0 * self.correct / self.total if self.total else 0.0

    def add(self, item: Scored) -> None:
        self.total += 1
        self.correct += item.extracted == item.correct
        self.unparsed += item.extracted is None


@dataclass
class Report:
    """Accuracy of one extractor over a set of predictions."""

    extractor: str
    overall: Tally = field(default_factory=Tally)
    category: dict[str, Tally] = field(default_factory=dict)
    subcategory: dict[str, Tally] = field(default_factory=dict)
    num_images: dict[str, Tally] = field(default_factory=dict)

    def as_dict(self) -> dict:
        def table(groups: dict[str, Tally]) -> dict:
            return {k: {"accuracy": round(t.accuracy, 2), **vars(t)} for k, t in groups.items()}

        return {
            "extractor": self.extractor,
            "overall": {"accuracy": round(self.overall.accuracy, 2), **vars(self.overall)},
            "category": table(self.category),
            "subcategory": table(self.subcategory),
            "num_images": table(self.num_images),
        }


def load_predictions(results_dir: str | Path) -> list[dict]:
    """Every question of every result JSON under `results_dir` (recursively), with its file's grouping fields."""
    root = Path(results_dir)
    if not root.is_dir():
        raise InputError(f"results folder not found: {root}", "pass a run folder or a folder of result JSONs")
    paths = sorted(p for p in root.rglob("*.json") if p.name not in ("report.json", "run.json"))
    rows = []
    for path in paths:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"cannot parse result file {path}: {exc}", "remove or repair it") from None
        if not isinstance(data, dict) or "questions" not in data:
            continue
        for qid, q in data["questions"].items():
            rows.append(
                {
                    "file": path.name,
                    "qid": str(qid),
                    "category": data.get("category", "unknown"),
                    "subcategory": data.get("sub-category", "unknown"),
                    "num_images": data.get("num_images", "unknown"),
                    "correct": q.get("correct_answer_option"),
                    "options": q.get("options", []),
                    "prediction": q.get("prediction"),
                }
            )
    if not rows:
        raise InputError(f"no FaceXBench result files in {root}", "run `facellm eval facexbench` first")
    return rows


def score(rows: list[dict], extractor: str) -> tuple[Report, list[Scored]]:
    """Extract each answer with `extractor` and tally it; a missing prediction counts as wrong, like the official."""
    extract = EXTRACTORS[extractor]
    report = Report(extractor)
    scored = []
    for row in rows:
        item = Scored(
            row["file"],
            row["qid"],
            row["category"],
            row["subcategory"],
            row["num_images"],
            row["correct"],
            row["prediction"],
            extract(row["prediction"] or "", row["options"]),
        )
        scored.append(item)
        report.overall.add(item)
        report.category.setdefault(item.category, Tally()).add(item)
        report.subcategory.setdefault(item.subcategory, Tally()).add(item)
        report.num_images.setdefault(item.num_images, Tally()).add(item)
    report.category = _ordered(report.category, list(CATEGORIES))
    report.subcategory = _ordered(report.subcategory, [s for subs in CATEGORIES.values() for s in subs])
    report.num_images = _ordered(report.num_images, ["single", "multiple", "zero"])
    return report, scored


def _ordered(groups: dict[str, Tally], order: list[str]) -> dict[str, Tally]:
    """Known groups in the benchmark's canonical order, unknown ones after them by name."""
    rank = {name: i for i, name in enumerate(order)}
    return dict(sorted(groups.items(), key=lambda kv: (rank.get(kv[0], len(order)), kv[0])))


def official_text(report: Report, model_name: str) -> str:
    """The report in the official script's `results.txt` format."""
    o = report.overall
    lines = [f"Model Name: {model_name} | Total Questions: {o.total}", f"Total Accuracy: {_cell(o)}", ""]
    for title, groups in (
        ("Category Accuracies:", report.category),
        ("Sub-category Accuracies:", report.subcategory),
        ("Number of Images Accuracies:", report.num_images),
    ):
        lines.append(title)
        lines.extend(f"{name}: {_cell(t)}" for name, t in groups.items())
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def parse_official_text(text: str) -> dict[str, tuple[int, int]]:
    """`{"total": (correct, total), "category/x": ..., "subcategory/x": ..., "num_images/x": ...}` from results.txt."""
    import re

    sections = {"Category": "category", "Sub-category": "subcategory", "Number of Images": "num_images"}
    parsed: dict[str, tuple[int, int]] = {}
    section = "total"
    for line in text.splitlines():
        header = re.match(r"^(.*) Accuracies:$", line)
        if header:
            section = sections[header.group(1)]
            continue
        found = re.match(r"^(.+?): [\d.]+% \((\d+)/(\d+)\)$", line)
        if found:
            name = "total" if found.group(1) == "Total Accuracy" else f"{section}/{found.group(1)}"
            parsed[name] = (int(found.group(2)), int(found.group(3)))
    return parsed


def _cell(t: Tally) -> str:
    return f"{t.accuracy:.2f}% ({t.correct}/{t.total})"


def published_rows() -> list[dict]:
    with open(PUBLISHED_CSV, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def markdown(reports: list[Report], model_name: str) -> str:
    """Both extractors side by side, then the published table with our row in the same columns."""
    by_name = {r.extractor: r for r in reports}
    names = list(by_name)
    head = "| group | " + " | ".join(f"{n} acc % (correct/total)" for n in names) + " |"
    lines = [f"# FaceXBench report: {model_name}", "", head, "|---|" + "---|" * len(names)]

    def row(label: str, pick: Callable[[Report], Tally | None]) -> None:
        cells = []
        for n in names:
            t = pick(by_name[n])
            cells.append(_cell(t) if t else "-")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    row("**overall**", lambda r: r.overall)
    for group, attr in (("category", "category"), ("sub-category", "subcategory"), ("images", "num_images")):
        for key in getattr(reports[0], attr):
            row(f"{group}: {key}", partial(_tally, attr=attr, key=key))
    lines.append("")
    lines.append("| unparsed answers | " + " | ".join(str(by_name[n].overall.unparsed) for n in names) + " |")
    lines += ["", "## Published (FaceLLM paper table) and this run", ""]
    columns = ["overall", *PUBLISHED_COLUMNS]
    lines.append("| model | " + " | ".join(columns) + " |")
    lines.append("|---|" + "---|" * len(columns))
    for published in published_rows():
        lines.append(f"| {published['model']} | " + " | ".join(published[c] for c in columns) + " |")
    for report in reports:
        cells = [f"{report.overall.accuracy:.2f}"]
        for column in PUBLISHED_COLUMNS.values():
            t = report.category.get(column)
            cells.append(f"{t.accuracy:.2f}" if t else "-")
        lines.append(f"| **{model_name} ({report.extractor})** | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def bar_chart(reports: list[Report], path: Path, model_name: str) -> None:
    """Per-category accuracy bars for each extractor."""
    from matplotlib.figure import Figure  # a figure of its own: the process's matplotlib backend is left alone

    categories = list(reports[0].category)
    width = 0.8 / len(reports)
    fig = Figure(figsize=(9, 4.5))
    ax = fig.subplots()
    for i, report in enumerate(reports):
        values = [report.category[c].accuracy for c in categories]
        ax.bar([x + i * width for x in range(len(categories))], values, width, label=report.extractor)
    ax.axhline(25.10, color="grey", linestyle="--", linewidth=1, label="random (25.10)")
    ax.set_xticks([x + width * (len(reports) - 1) / 2 for x in range(len(categories))], categories, rotation=20)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"FaceXBench: {model_name}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _tally(report: Report, attr: str, key: str) -> Tally | None:
    """The tally of one group (`attr`: category, subcategory or num_images) in a report, if it has that group."""
    return getattr(report, attr).get(key)


def write_report(results_dir: str | Path, out_dir: str | Path, model_name: str) -> list[Report]:
    """Score with both extractors and write results.txt (compat, the official format), report.md/.json/.png."""
    rows = load_predictions(results_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    reports = []
    per_question: dict[str, list[Scored]] = {}
    for name in EXTRACTORS:
        report, scored = score(rows, name)
        reports.append(report)
        per_question[name] = scored
    (out / "results.txt").write_text(official_text(reports[0], model_name), encoding="utf-8")
    (out / "report.md").write_text(markdown(reports, model_name), encoding="utf-8")
    payload: dict[str, Any] = {
        "model": model_name,
        "reports": [r.as_dict() for r in reports],
        "questions": [
            {**vars(c), "strict": s.extracted, "compat": c.extracted}
            for c, s in zip(per_question["compat"], per_question["strict"])
        ],
    }
    for q in payload["questions"]:
        del q["extracted"]
    (out / "report.json").write_text(json.dumps(payload, indent=1), encoding="utf-8")
    bar_chart(reports, out / "report.png", model_name)
    return reports
