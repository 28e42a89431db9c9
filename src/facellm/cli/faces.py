"""`facellm faces`: train the face models (one command per model) and cluster images by identity."""

from __future__ import annotations

from pathlib import Path

import click

from facellm.cli.common import expand_images, report_skipped
from facellm.cli.root import cli
from facellm.errors import FaceLLMError
from facellm.faces import (
    attributes_training,
    classifier_training,
    crowd,
    crowd_training,
    expression,
    expression_training,
    pose,
    pose_training,
)
from facellm.faces import celeb_attributes_training as training
from facellm.faces.classifier import TASKS as CLASSIFIER_TASKS
from facellm.faces.embed import cluster_images


@cli.group("faces")
def faces_group() -> None:
    """Face models and collections: train each face model, cluster images by identity."""


@faces_group.command("train-attributes")
@click.option("--fairface", required=True, type=click.Path(path_type=Path), help="FairFace folder (CSV + images).")
@click.option("--train-limit", type=int, default=16000, show_default=True, help="FairFace train images to use.")
@click.option("--val-limit", type=int, default=2500, show_default=True, help="FairFace val images to score.")
@click.option("--epochs", type=int, default=8, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), help="Weights file (default: the packaged one).")
@click.option("--workers", type=int, default=0, help="Processes for feature extraction (default: CPU cores).")
def faces_train_attributes(fairface, train_limit, val_limit, epochs, out, workers) -> None:
    """Train the age/gender/race network on FairFace train; report accuracy on FairFace val (overall, per race)."""

    report, target = attributes_training.train(fairface, train_limit, val_limit, epochs, out, workers, click.echo)
    for name, r in report.items():
        click.echo(f"{name:6s} {r['accuracy']:6.2f}% on {r['n']} val images; per race {r['per_race']}")
    click.echo(f"weights written to {target} (model card beside it)")


@faces_group.command("train-expression")
@click.option("--fer", type=click.Path(path_type=Path), help="FER2013 folder with labels.csv: train the grey model.")
@click.option(
    "--rafdb",
    type=click.Path(path_type=Path),
    help="RAF-DB folder with labels.csv: fine-tune the FER2013 model into the colour one.",
)
@click.option("--epochs", type=int, help="Epochs (default: 10 for --fer, 8 for --rafdb).")
@click.option("--out", type=click.Path(path_type=Path), help="Weights file (default: the packaged one).")
def faces_train_expression(fer, rafdb, epochs, out) -> None:
    """Train the expression CNN on FER2013 Training (accuracy on PublicTest), or fine-tune it on RAF-DB's training
    split (accuracy on its held-out split)."""

    if (fer is None) == (rafdb is None):
        raise FaceLLMError("give one of --fer or --rafdb", "--fer trains the FER2013 model, --rafdb fine-tunes it")
    folder = fer or rafdb
    if not (folder / "labels.csv").is_file():
        raise FaceLLMError(f"{folder / 'labels.csv'} not found", "pass the folder that holds labels.csv and images/")
    say = lambda line: click.echo(line, err=True)  # noqa: E731
    if fer:
        target = out or expression.WEIGHTS
        report = expression_training.train(folder / "labels.csv", epochs or 10, out=target, say=say)
        figure = f"PublicTest accuracy {report['public_test_accuracy']}%"
    else:
        target = out or expression.RAFDB_WEIGHTS
        report = expression_training.train_rafdb(folder, epochs or 8, out=target, say=say)
        figure = f"held-out accuracy {report['held_out_accuracy']}%"
    click.echo(f"{figure}; weights written to {target}")


@faces_group.command("train-pose")
@click.option("--aflw", required=True, type=click.Path(path_type=Path), help="AFLW2000-3D folder with labels.csv.")
@click.option("--out", type=click.Path(path_type=Path), help="Weights file (default: the packaged one).")
@click.option("--workers", type=int, default=0, help="Processes for landmark extraction (default: one per core).")
def faces_train_pose(aflw, out, workers) -> None:
    """Train the head-pose networks on AFLW2000-3D landmarks; report 5-fold mean absolute error per axis."""

    if not (aflw / "labels.csv").is_file():
        raise FaceLLMError(f"{aflw / 'labels.csv'} not found", "pass --aflw with AFLW2000's labels.csv and images/")
    report = pose_training.train(aflw, out or pose.WEIGHTS, workers, say=lambda line: click.echo(line, err=True))
    click.echo(
        f"5-fold MAE (degrees) {report['mae_5fold_degrees']}, mean {report['mae_5fold_mean']}; "
        f"weights written to {out or pose.WEIGHTS}"
    )


@faces_group.command("train-crowd")
@click.option(
    "--data",
    required=True,
    type=click.Path(path_type=Path),
    help="ShanghaiTech part B folder with labels.csv, points.csv and images/.",
)
@click.option(
    "--extra",
    multiple=True,
    type=click.Path(path_type=Path),
    help="More training folders in the same layout (every image is trained on); repeatable.",
)
@click.option("--epochs", type=int, default=150, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), help="Weights file (default: the packaged one).")
@click.option("--workers", type=int, default=0, help="Processes for dlib's trunk (default: one per core).")
def faces_train_crowd(data, extra, epochs, out, workers) -> None:
    """Train the crowd-counting density head on ShanghaiTech B's training split; report MAE and RMSE of the count
    on its held-out split (faces/splits.py)."""

    for name in ("labels.csv", "points.csv"):
        if not (data / name).is_file():
            raise FaceLLMError(
                f"{data / name} not found", "pass --data with ShanghaiTech B's labels.csv, points.csv and images/"
            )
    if epochs < 1:
        raise FaceLLMError(f"--epochs must be at least 1, got {epochs}", "use e.g. 150")
    target = out or crowd.WEIGHTS
    for folder in extra:
        crowd_training.labelled_items(folder)  # a bad folder fails before any work
    report = crowd_training.train(
        data, epochs, target, workers, say=lambda line: click.echo(line, err=True), extra=extra
    )
    click.echo(
        f"held-out MAE {report['held_out_mae']} RMSE {report['held_out_rmse']} on "
        f"{report['held_out_images']} images (mean count {report['held_out_mean_count']}); weights written to "
        f"{target}"
    )


@faces_group.command("train-celeb-attributes")
@click.option(
    "--images",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder of CelebA's numbered images (000001.jpg ...; only 1-9000 are read).",
)
@click.option("--labels", required=True, type=click.Path(path_type=Path), help="CelebA's list_attr_celeba.txt.")
@click.option(
    "--dev-from",
    type=click.IntRange(2, 9000),
    help="Keep images from this number to 9000 out of training and score on them (a development part).",
)
@click.option("--epochs", type=click.IntRange(1), default=12, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), help="Weights file (default: the packaged one).")
@click.option(
    "--workers", type=click.IntRange(0), default=0, help="Processes for face framing (default: one per core)."
)
def faces_train_celeb_attributes(images, labels, dev_from, epochs, out, workers) -> None:
    """Train the 40 CelebA attribute model on CelebA images 1-9000 (9001 and above are kept for measuring)."""

    target = out or training.WEIGHTS
    card = training.train(
        images,
        labels,
        dev_first=dev_from,
        epochs=epochs,
        out=target,
        workers=workers,
        say=lambda line: click.echo(line, err=True),
    )
    scored = card["accuracy"]
    summary = (
        f"mean accuracy {scored['mean']['accuracy']}% (majority baseline {scored['mean']['majority']}%) on "
        f"{scored['n']} development faces; "
        if scored
        else ""
    )
    click.echo(f"{summary}weights written to {target}")


@faces_group.command("train-classifier")
@click.argument("task", type=click.Choice(sorted(CLASSIFIER_TASKS)))
@click.option("--data", required=True, type=click.Path(path_type=Path), help="The task's folder with labels.csv.")
@click.option("--epochs", type=int, default=15, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), help="Weights file (default: the packaged one).")
@click.option("--workers", type=int, default=0, help="Processes for face cropping (default: one per core).")
def faces_train_classifier(task, data, epochs, out, workers) -> None:
    """Train a face-crop classifier (liveness: NUAA, synthetic: real vs GAN faces) on its training split; report
    accuracy on the held-out split (faces/splits.py)."""

    report = classifier_training.train(task, data, epochs, out, workers, say=lambda line: click.echo(line, err=True))
    click.echo(
        f"held-out accuracy {report['held_out_accuracy']}% on {report['held_out_images']} images "
        f"{report['held_out_per_class']}; weights written to {report['weights']}"
    )


@faces_group.command("cluster")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--threshold", type=float, default=0.5, show_default=True, help="Distance that links two faces.")
@click.option("--json", "as_json", is_flag=True)
def faces_cluster(folder, threshold, as_json) -> None:
    """Group the images of a folder by identity (Chinese whispers over face descriptors)."""
    import json

    if not folder.is_dir():
        raise FaceLLMError(f"folder {folder} not found", "pass a folder of face images")
    paths = expand_images([folder])
    if not paths:
        raise FaceLLMError(f"no images in {folder}", "pass a folder of face images")
    ordered, skipped = cluster_images(paths, threshold)
    if as_json:
        click.echo(json.dumps({"clusters": ordered, "skipped": skipped}, indent=1))
    else:
        for i, members in enumerate(ordered, 1):
            click.echo(f"identity {i} ({len(members)} images): " + ", ".join(Path(m).name for m in members))
        report_skipped(skipped)
