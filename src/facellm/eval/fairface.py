"""FairFace attribute accuracy with fairness gaps: age, gender and race asked as multiple-choice questions.

Each image of a FairFace label CSV (`file,age,gender,race,...`) becomes one question per task with every class of
that task as an option, in FairFace's order. The questions run through the same resumable runner as FaceXBench;
the report gives accuracy per task, per race group, the largest gap between race groups, and a confusion matrix.
"""

from __future__ import annotations

import json
from pathlib import Path

from facellm.data.sources import read_csv_rows
from facellm.errors import InputError
from facellm.eval.extract import extract_strict
from facellm.eval.facexbench import Question
from facellm.labels import FAIRFACE_RACES, FAIRFACE_VOCAB, normalise

TASKS = ("age", "gender", "race")
QUESTIONS = {
    "age": "Which age group does the person in this image belong to?",
    "gender": "What is the gender of the person in this image?",
    "race": "Which racial group does the person in this image most likely belong to?",
}
INSTRUCTION = "Answer with the option letter only."


def load_fairface(
    labels_csv: str | Path, images_dir: str | Path, tasks: tuple[str, ...] = TASKS, limit: int | None = None
) -> tuple[list[Question], dict[str, dict[str, str]]]:
    """Questions for `tasks` over the first `limit` rows, and each image's normalised labels by its CSV path."""
    labels_path, root = Path(labels_csv), Path(images_dir)
    if not labels_path.is_file():
        raise InputError(f"label file not found: {labels_path}", "pass FairFace's fairface_label_val.csv")
    if not root.is_dir():
        raise InputError(f"image folder not found: {root}", "pass the folder the CSV's file paths start from")
    unknown = set(tasks) - set(TASKS)
    if unknown:
        raise InputError(f"unknown FairFace task(s): {', '.join(sorted(unknown))}", "use age, gender, race")
    rows = read_csv_rows(labels_path, required={"file", *TASKS})[:limit]
    labels = {row["file"]: {task: normalise(task, row[task]) for task in TASKS} for row in rows}
    questions = [
        Question(
            file=f"fairface_{task}.json",
            qid=file,
            category="fairface",
            subcategory=task,
            dataset="fairface",
            num_images="single",
            images=(file,),
            text=QUESTIONS[task],
            options=FAIRFACE_VOCAB[task],
            correct=chr(ord("A") + FAIRFACE_VOCAB[task].index(truth[task])),
            postpend_text=INSTRUCTION,
            root=root,
        )
        for task in tasks
        for file, truth in labels.items()
    ]
    return questions, labels


def fairface_report(
    questions: list[Question], predictions: dict[str, str], labels: dict[str, dict[str, str]], out_dir: str | Path
) -> dict:
    """Accuracy per task and per race group, the largest race gap, confusion matrices; writes JSON, MD and PNGs."""
    out = Path(out_dir)
    report: dict = {"tasks": {}}
    for task in dict.fromkeys(q.subcategory for q in questions):
        classes = FAIRFACE_VOCAB[task]
        confusion = [[0] * (len(classes) + 1) for _ in classes]  # last column: unreadable answers
        per_race = {race: [0, 0] for race in FAIRFACE_RACES}
        for q in (q for q in questions if q.subcategory == task):
            truth = classes.index(labels[q.qid][task])
            letter = extract_strict(predictions.get(q.key), q.options)
            guess = ord(letter) - ord("A") if letter else len(classes)
            confusion[truth][guess] += 1
            tally = per_race[labels[q.qid]["race"]]
            tally[0] += guess == truth
            tally[1] += 1
        total = sum(map(sum, confusion))
        correct = sum(confusion[i][i] for i in range(len(classes)))
        race_accuracy = {race: round(100 * c / n, 2) for race, (c, n) in per_race.items() if n}
        report["tasks"][task] = {
            "accuracy": round(100 * correct / total, 2) if total else 0.0,
            "correct": correct,
            "total": total,
            "unparsed": sum(row[-1] for row in confusion),
            "per_race": race_accuracy,
            "race_gap": round(max(race_accuracy.values()) - min(race_accuracy.values()), 2) if race_accuracy else 0.0,
            "classes": list(classes),
            "confusion": confusion,
        }
        _confusion_png(task, classes, confusion, out / f"confusion_{task}.png")
    (out / "fairface_report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    (out / "fairface_report.md").write_text(_markdown(report), encoding="utf-8")
    return report


def _markdown(report: dict) -> str:
    lines = ["# FairFace attribute accuracy", "", "| task | accuracy % | correct/total | unparsed | largest race gap |"]
    lines.append("|---|---|---|---|---|")
    for task, r in report["tasks"].items():
        lines.append(
            f"| {task} | {r['accuracy']:.2f} | {r['correct']}/{r['total']} | {r['unparsed']} | {r['race_gap']:.2f} |"
        )
    lines += ["", "| race group | " + " | ".join(report["tasks"]) + " |", "|---|" + "---|" * len(report["tasks"])]
    for race in FAIRFACE_RACES:
        cells = [f"{r['per_race'][race]:.2f}" if race in r["per_race"] else "-" for r in report["tasks"].values()]
        lines.append(f"| {race} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _confusion_png(task: str, classes: tuple[str, ...], confusion: list[list[int]], path: Path) -> None:
    from matplotlib.figure import Figure  # a figure of its own: the process's matplotlib backend is left alone

    columns = [*classes, "unreadable"]
    fig = Figure(figsize=(1.1 * len(columns) + 2, 0.9 * len(classes) + 2))
    ax = fig.subplots()
    ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("FairFace label")
    for i, row in enumerate(confusion):
        for j, value in enumerate(row):
            if value:
                ax.text(j, i, str(value), ha="center", va="center", fontsize=8)
    ax.set_title(f"FairFace {task}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
