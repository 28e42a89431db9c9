"""`facellm demo`: the whole FaceLLM method, offline on CPU, in a few minutes, one folder per stage.

Stages, in order (each writes `RUN/<stage>/` and a `.done` marker; a rerun skips finished stages):
  faces     split the bundled FairFace faces (or `--fairface DIR`) into training and evaluation faces, kept apart
  analyze   measure every training face (detection, landmarks, head pose, quality)
  data      build a FairFaceGPT-style QA set: the offline template teacher (or an OpenAI-compatible teacher when
            `base_url` and `model` are given), labels and measured facts in the prompts, label-free questions
  export    ShareGPT export, as LLaMA-Factory and `facellm train` read it
  train     LoRA on the offline tiny InternVL checkpoint for a few steps (the real recipe: configs/train/)
  merge     merge the adapter into a standalone model folder
  eval      a FaceXBench-layout question set from the evaluation faces' labels, run with the merged model and
            scored with both extractors, and answered by the specialist backend; FairFace attribute accuracy per
            race group
  report    one markdown report with the plots and the published FaceLLM rows
"""

from __future__ import annotations

import csv
import json
import random
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from facellm.backends import BackendSpec, build_backend
from facellm.data.build import build_dataset
from facellm.data.export import export_dataset
from facellm.data.filters import flag_records
from facellm.data.sources import load_source
from facellm.data.stats import write_stats
from facellm.data.store import QAStore
from facellm.errors import InputError
from facellm.eval.facexbench import load_benchmark
from facellm.eval.fairface import fairface_report, load_fairface
from facellm.eval.report import write_report
from facellm.eval.run import load_done, run_questions
from facellm.faces import analyze_image, measured_facts
from facellm.files import output_folder
from facellm.finetune.config import load_config
from facellm.finetune.merge import merge_adapter
from facellm.images import read_image
from facellm.labels import FAIRFACE_VOCAB, normalise
from facellm.model.tiny import make_tiny_checkpoint
from facellm.parallel import torch_threads_for_idle_cores
from facellm.prompts import load_prompts
from facellm.samples import SAMPLE_DIR, sample_faces

# FaceXBench's own answer-format instruction.
ANSWER_FORMAT = "Please answer the question and provide only the correct option letter, e.g., A, B, C, D."
STAGES = ("faces", "analyze", "data", "export", "train", "merge", "eval", "report")


@dataclass
class DemoSettings:
    out: Path
    images: int = 8
    eval_images: int = 4
    fairface: Path | None = None
    base_url: str | None = None
    model: str | None = None
    train_steps: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        """Refuse settings that cannot run, before any stage starts."""
        if self.images < 1 or self.eval_images < 1:
            raise InputError(
                f"--images {self.images} and --eval-images {self.eval_images}: each needs at least one face",
                "pass --images 1 or more and --eval-images 1 or more",
            )
        if self.train_steps < 1:
            raise InputError(f"--train-steps {self.train_steps} trains nothing", "pass --train-steps 1 or more")
        output_folder(self.out, "--out")


def _check_settings(settings: DemoSettings) -> None:
    """A demo folder resumes only the run it holds: its settings are written once and must match afterwards."""
    path = settings.out / "settings.json"
    chosen = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(settings).items() if k != "out"}
    if not path.exists():
        path.write_text(json.dumps(chosen, indent=1), encoding="utf-8")
        return
    earlier = json.loads(path.read_text(encoding="utf-8"))
    changed = sorted(k for k in chosen if earlier.get(k) != chosen[k])
    if changed:
        raise InputError(
            f"--out {settings.out} holds a demo run with other settings ({', '.join(changed)})",
            "choose a new --out, or delete that folder to start over",
        )


def run_demo(settings: DemoSettings, say: Callable[[str], None] = print) -> Path:
    """Run every unfinished stage; returns the report path."""
    out = settings.out
    out.mkdir(parents=True, exist_ok=True)
    _check_settings(settings)
    torch_threads_for_idle_cores()  # on a machine busy with other work, fewer threads than cores go faster
    stages = {
        "faces": _faces,
        "analyze": _analyze,
        "data": _data,
        "export": _export,
        "train": _train,
        "merge": _merge,
        "eval": _eval,
        "report": _report,
    }
    for number, name in enumerate(STAGES, 1):
        folder = out / name
        if (folder / ".done").exists():
            say(f"[{number}/{len(STAGES)}] {name}: done in an earlier run, skipped")
            continue
        say(f"[{number}/{len(STAGES)}] {name} ...")
        if folder.exists():
            shutil.rmtree(folder)  # an interrupted stage starts over
        folder.mkdir(parents=True)
        summary = stages[name](settings, folder)
        (folder / ".done").write_text(json.dumps(summary or {}), encoding="utf-8")
        say(f"[{number}/{len(STAGES)}] {name}: {summary.get('note', 'done') if summary else 'done'}")
    return out / "report" / "report.md"


def _faces(settings: DemoSettings, folder: Path) -> dict:
    """labels.csv for training faces and for evaluation faces, with the images copied beside them."""
    if settings.fairface:
        root = Path(settings.fairface)
        labels = root / "fairface_label_val.csv"
        images = root / "fairface_img_margin025"
        if not labels.is_file() or not images.is_dir():
            raise InputError(
                f"{root} is not a FairFace folder", "it needs fairface_label_val.csv and fairface_img_margin025/"
            )
        with open(labels, newline="", encoding="utf-8") as f:
            rows = [
                {"file": r["file"], "age": r["age"], "gender": r["gender"], "race": r["race"]}
                for r in csv.DictReader(f)
            ]
    else:
        images = SAMPLE_DIR
        rows = [{"file": f.path.name, "age": f.age, "gender": f.gender, "race": f.race} for f in sample_faces()]
    if settings.images + settings.eval_images > len(rows):
        raise InputError(
            f"--images {settings.images} plus {settings.eval_images} evaluation faces exceed the {len(rows)} faces "
            f"available",
            "lower --images, or pass --fairface DIR for more faces",
        )
    random.Random(settings.seed).shuffle(rows)
    for split, chosen in (
        ("train", rows[: settings.images]),
        ("eval", rows[settings.images : settings.images + settings.eval_images]),
    ):
        write_face_folder(chosen, images, folder / split)
    return {"note": f"{settings.images} training and {settings.eval_images} evaluation faces (kept apart)"}


def write_face_folder(rows: list[dict], images: Path, target: Path) -> Path:
    """Copy the images of FairFace-style label rows into `target` (flat names) with a labels.csv beside them."""
    target.mkdir(parents=True, exist_ok=True)
    with open(target / "labels.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, ["file", "age", "gender", "race"])
        writer.writeheader()
        for row in rows:
            name = row["file"].replace("/", "_")
            shutil.copy(images / row["file"], target / name)
            writer.writerow({"file": name, "age": row["age"], "gender": row["gender"], "race": row["race"]})
    return target


def _analyze(settings: DemoSettings, folder: Path) -> dict:

    train = settings.out / "faces" / "train"
    results = {}
    for row in _labels(train / "labels.csv"):
        analysis = analyze_image(read_image(train / row["file"]))
        results[row["file"]] = {"measured": measured_facts(analysis), "analysis": analysis.as_dict()}
    (folder / "analysis.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    found = sum(r["measured"]["face_count"] > 0 for r in results.values())
    return {"note": f"faces found in {found} of {len(results)} images"}


def _data(settings: DemoSettings, folder: Path) -> dict:

    train = settings.out / "faces" / "train"
    analysis = json.loads((settings.out / "analyze" / "analysis.json").read_text())
    records = load_source("fairface", train, train / "labels.csv")
    spec = load_prompts()
    if settings.base_url and settings.model:
        teacher = build_backend(BackendSpec(api_base=settings.base_url, api_model=settings.model))
        teacher.check_ready()
    else:
        teacher = build_backend(BackendSpec("template", prompts=spec))

    def measured(record) -> dict:
        return analysis[record.image]["measured"]

    with QAStore(folder) as store:
        summary = build_dataset(records, spec, teacher, store, measured=measured)
        store.set_flags(flag_records(store.records("done")))
        stats = write_stats(store)
    return {"note": f"{summary.done} QA pairs from {teacher.name} ({stats['pairs']['kept']} kept after filters)"}


def _export(settings: DemoSettings, folder: Path) -> dict:

    with QAStore(settings.out / "data") as store:
        counts = export_dataset(store, "sharegpt", folder, val_fraction=0.0)
    return {"note": f"{counts.get('train', 0)} pairs in {folder / 'train.json'}"}


def _train(settings: DemoSettings, folder: Path) -> dict:
    from facellm.finetune.recipe import train

    base = make_tiny_checkpoint(folder / "base-model", seed=settings.seed)
    config = load_config(
        None,
        [
            f"model={base}",
            f"dataset={settings.out / 'export' / 'train.json'}",
            f"image_root={settings.out / 'faces' / 'train'}",
            f"output_dir={folder / 'run'}",
            "learning_rate=1e-2",
            "lr_scheduler=cosine",
            f"max_steps={settings.train_steps}",
            "per_device_batch_size=8",
            "gradient_accumulation_steps=1",
            "gradient_checkpointing=false",
            "precision=fp32",
            f"logging_steps={min(5, settings.train_steps)}",  # a short run still logs its loss
            "save_steps=100000",
            f"seed={settings.seed}",
        ],
    )
    summary = train(config)
    losses = summary["logged_losses"]
    loss = f"logged training loss {losses[0]:.2f} -> {losses[-1]:.2f}" if losses else "no loss logged"
    return {
        "note": f"{summary['global_step']} LoRA steps, {loss}",
        "base": str(base),
        "adapter": summary["output"],
    }


def _merge(settings: DemoSettings, folder: Path) -> dict:

    trained = json.loads((settings.out / "train" / ".done").read_text())
    target = merge_adapter(trained["base"], trained["adapter"], folder / "model")
    return {"note": f"standalone model in {target}", "model": str(target)}


def _eval(settings: DemoSettings, folder: Path) -> dict:

    evaluation = settings.out / "faces" / "eval"
    bench = make_question_set(evaluation, folder / "facexbench", settings.seed)
    model = json.loads((settings.out / "merge" / ".done").read_text())["model"]
    # Likelihood scoring: the tiny model's free text rarely names a letter, its letter probabilities always do.
    answerer = build_backend(BackendSpec(model, device="cpu", scoring="likelihood"))
    run_questions(load_benchmark(bench), answerer, folder / "facexbench-run")
    reports = write_report(folder / "facexbench-run" / "results", folder / "facexbench-run", answerer.name)
    questions, truth = load_fairface(evaluation / "labels.csv", evaluation)
    run_questions(questions, answerer, folder / "fairface-run")
    fairface = fairface_report(questions, load_done(folder / "fairface-run"), truth, folder / "fairface-run")
    strict = next(r for r in reports if r.extractor == "strict").overall
    specialist = build_backend(BackendSpec("specialist"))
    run_questions(load_benchmark(bench), specialist, folder / "specialist-run")
    write_report(folder / "specialist-run" / "results", folder / "specialist-run", specialist.name)
    return {
        "note": f"FaceXBench-layout accuracy {strict.accuracy:.1f}% (strict) on {strict.total} questions; "
        f"FairFace gender {fairface['tasks']['gender']['accuracy']:.1f}%"
    }


def make_question_set(faces_dir: Path, out: Path, seed: int = 0) -> Path:
    """Age, gender and race multiple-choice questions in FaceXBench's JSON layout from labelled faces."""
    rng = random.Random(seed)
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    rows = _labels(faces_dir / "labels.csv")
    texts = {
        "age": ("Age estimation: pick the age group of the person.", "Which age group best describes the person?"),
        "gender": ("Gender recognition: pick the gender of the person.", "What is the gender of the person?"),
        "race": ("Race estimation: pick the racial group of the person.", "Which race best describes the person?"),
    }
    for task, (prepend, question) in texts.items():
        questions = {}
        for number, row in enumerate(rows, 1):
            truth = normalise(task, row[task])
            others = [v for v in FAIRFACE_VOCAB[task] if v != truth]
            options = [truth, *rng.sample(others, min(2, len(others))), "None of the above"]
            rng.shuffle(options)
            name = f"images/fairface_demo_{task}/question_{number}.jpg"
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(faces_dir / row["file"], out / name)
            questions[str(number)] = {
                "image_paths": [name],
                "question_text": question,
                "options": options,
                "correct_answer_option": "ABCD"[options.index(truth)],
                "answer": truth,
            }
        payload = {
            "category": "bias_fairness",
            "sub-category": task,
            "dataset": "fairface",
            "question_type": "MCQ",
            "num_images": "single",
            "prepend_text": prepend,
            "postpend_text": ANSWER_FORMAT,
            "questions": questions,
        }
        (out / f"fairface_single_mcq_{task}_demo.json").write_text(json.dumps(payload, indent=1), encoding="utf-8")
    return out


def _report(settings: DemoSettings, folder: Path) -> dict:
    out = settings.out
    for source, name in (
        (out / "data" / "group_balance.png", "dataset_balance.png"),
        (out / "train" / "run" / "loss.png", "loss_curve.png"),
        (out / "eval" / "facexbench-run" / "report.png", "facexbench_accuracy.png"),
    ):
        if source.exists():
            shutil.copy(source, folder / name)
    steps = {name: json.loads((out / name / ".done").read_text()).get("note", "") for name in STAGES[:-1]}
    facexbench = (out / "eval" / "facexbench-run" / "report.md").read_text(encoding="utf-8")
    specialist = (out / "eval" / "specialist-run" / "report.md").read_text(encoding="utf-8")
    fairface = (out / "eval" / "fairface-run" / "fairface_report.md").read_text(encoding="utf-8")
    data_stats = (out / "data" / "stats.md").read_text(encoding="utf-8")
    lines = [
        "# facellm demo report",
        "",
        "The FaceLLM method end to end on CPU: real FairFace faces, an offline teacher, a tiny random InternVL",
        "checkpoint fine-tuned for a few steps. The numbers show the pipeline works; they are not a trained",
        "model's accuracy (for that, see the published rows below and `facellm reproduce`).",
        "",
        "## Stages",
        "",
        *[f"- **{name}**: {note}" for name, note in steps.items()],
        "",
        "## Dataset",
        "",
        "![dataset balance](dataset_balance.png)",
        "",
        data_stats.replace("# Dataset run statistics", "").strip(),
        "",
        "## Training",
        "",
        "![loss curve](loss_curve.png)",
        "",
        "## Evaluation",
        "",
        "![accuracy](facexbench_accuracy.png)",
        "",
        facexbench.replace("# FaceXBench report:", "### FaceXBench-layout questions:").strip(),
        "",
        "The same questions answered by the specialist backend (face-analysis models, no language model):",
        "",
        specialist.replace("# FaceXBench report:", "### Specialist on the same questions:").strip(),
        "",
        fairface.replace("# FairFace attribute accuracy", "### FairFace attribute accuracy (evaluation faces)").strip(),
        "",
    ]
    (folder / "report.md").write_text("\n".join(lines), encoding="utf-8")
    return {"note": f"report in {folder / 'report.md'}"}


def _labels(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
