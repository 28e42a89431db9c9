"""`facellm analyze`, `facellm verify` and `facellm faces` (train the face models, cluster by identity)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from facellm.cli.common import expand_images, landmarks_option, report_skipped
from facellm.cli.root import cli
from facellm.errors import FaceLLMError
from facellm.faces.classifier import TASKS as CLASSIFIER_TASKS
from facellm.faces.detect import DETECTORS


def _analyze_one(job: tuple[str, str, bool, int, bool, str | None]) -> dict:
    from facellm.faces import analyze_image
    from facellm.images import read_image

    path, detector, with_attributes, points, count, maps = job
    try:
        image = read_image(path)
        result = {"image": path, **analyze_image(image, detector, with_attributes, points).as_dict()}
        if count:
            result["people"] = _people(image, Path(path), maps)
        return result
    except FaceLLMError as exc:
        return {"image": path, "error": str(exc)}


def _people(image, path: Path, maps: str | None) -> dict:
    """The crowd model's count for one image; its density map saved into `maps` as NAME-density.png if given."""
    from facellm.faces.crowd import density_picture, predict

    counted = predict(image)
    found = {"count": round(counted.count, 1)}
    if maps:
        target = Path(maps) / f"{path.stem}-density.png"
        density_picture(image, counted).save(target)
        found["density_map"] = str(target)
    return found


@cli.command("analyze")
@click.argument("images", nargs=-1, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per image) instead of a table.")
@click.option("--detector", type=click.Choice(DETECTORS), default="auto", show_default=True)
@click.option("--workers", type=click.IntRange(0), default=0, help="Processes for folders (default: one per CPU core).")
@click.option("--attributes", "with_attributes", is_flag=True, help="Add age, gender, race, expression probabilities.")
@landmarks_option
@click.option(
    "--count",
    "count_people",
    is_flag=True,
    help="Add the crowd model's count of the people in each image (beyond face detection).",
)
@click.option(
    "--density-maps",
    type=click.Path(path_type=Path),
    help="With --count: save each image's density map over it as NAME-density.png here.",
)
@click.option("--licenses", is_flag=True, help="Print each bundled model's licence and training data, then exit.")
def analyze_command(
    images, as_json, detector, workers, with_attributes, landmark_points, count_people, density_maps, licenses
) -> None:
    """Faces in images (files or folders): box, landmarks, head pose, eye/mouth openness, quality."""
    import json

    from facellm.parallel import map_over_cores

    if licenses:
        from facellm.faces.licenses import BUNDLED_MODELS

        for name, licence, data in BUNDLED_MODELS:
            click.echo(f"{name}\n  licence: {licence}\n  trained on: {data}")
        return
    if not images:
        raise FaceLLMError("no images given", "pass image files or folders (or --licenses)")
    points = _landmark_points(landmark_points)
    paths = expand_images(images)
    if not paths:
        raise FaceLLMError("no images found in the given paths", "pass image files or folders holding them")
    if len(paths) == 1:
        missing = paths[0]
        if not missing.exists():
            raise FaceLLMError(f"image not found: {missing}", "check the path")
    if density_maps and not count_people:
        raise FaceLLMError("--density-maps needs --count", "add --count")
    if count_people:
        from facellm.faces.crowd import shipped_model

        shipped_model()  # refused here, before any image is read, when the weights may not be used or are missing
        if density_maps:
            density_maps.mkdir(parents=True, exist_ok=True)
    maps = str(density_maps) if density_maps else None
    jobs = [(str(p), detector, with_attributes, points, count_people, maps) for p in paths]
    results = map_over_cores(_analyze_one, jobs, workers)
    if len(results) == 1 and "error" in results[0]:
        raise FaceLLMError(results[0]["error"])
    if as_json:
        click.echo(json.dumps(results if len(results) > 1 else results[0], indent=1))
    else:
        for result in results:
            _print_analysis(result)
    failed = [r for r in results if "error" in r]
    if failed and len(results) > 1:
        click.echo(f"{len(failed)} of {len(results)} images could not be read (listed above)", err=True)


def _pose_text(pose: dict | None) -> str:
    if pose is None:
        return "n/a (needs the 68-point model)"
    yaw, pitch, roll = (round(pose[a]) + 0 for a in ("yaw", "pitch", "roll"))  # + 0: never "-0"
    return f"{pose['label']} (yaw {yaw}, pitch {pitch}, roll {roll})"


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _landmark_points(choice: str | None) -> int:
    """--landmarks, else FACELLM_LANDMARKS (a bad value fails here, once, not on every image), else 68."""
    from facellm.faces.models import landmark_points

    return int(choice) if choice else landmark_points()


def _print_analysis(result: dict) -> None:
    if "error" in result:
        click.echo(f"{result['image']}: skipped: {result['error']}")
        return
    click.echo(f"{result['image']}: {result['face_count']} face(s), {result['width']}x{result['height']} px")
    for i, face in enumerate(result["faces"]):
        box, pose, q = face["box"], face["pose"], face["quality"]
        click.echo(
            f"  face {i + 1}: box ({box['left']},{box['top']})-({box['right']},{box['bottom']}) [{box['detector']}] "
            f"pose {_pose_text(pose)} "
            f"eyes {_ratio(face['eye_openness'])} mouth {_ratio(face['mouth_openness'])} size {q['face_width']}px "
            f"brightness {q['brightness']:.0f} contrast {q['contrast']:.0f} sharpness {q['sharpness']:.0f}"
        )
        if face.get("attributes"):
            best = {name: max(probs.items(), key=lambda kv: kv[1]) for name, probs in face["attributes"].items()}
            click.echo("    attributes: " + ", ".join(f"{name} {label} ({p:.0%})" for name, (label, p) in best.items()))
    if "people" in result:
        where = f" (density map: {result['people']['density_map']})" if "density_map" in result["people"] else ""
        click.echo(f"  people (crowd model estimate): {result['people']['count']:.0f}{where}")


@cli.command("verify")
@click.argument("images", nargs=-1, type=click.Path(path_type=Path))
@click.option("--pairs", "pairs_file", type=click.Path(path_type=Path), help="LFW-format pairs file.")
@click.option("--images", "images_dir", type=click.Path(path_type=Path), help="Image root for --pairs.")
@click.option(
    "--threshold",
    type=click.FloatRange(0, min_open=True),
    default=0.6,
    show_default=True,
    help="Same-person distance for A B.",
)
@click.option(
    "--jitters",
    type=click.IntRange(0, 100),
    default=0,
    show_default=True,
    help="Average each descriptor over this many perturbed copies (about N times slower).",
)
@click.option("--workers", type=click.IntRange(0), default=0, help="Processes for --pairs (default: one per CPU core).")
@click.option("--json", "as_json", is_flag=True)
@landmarks_option
def verify_command(images, pairs_file, images_dir, threshold, jitters, workers, as_json, landmark_points) -> None:
    """Same person or not: `verify A B`, or the LFW pair protocol with --pairs and --images."""
    import json

    import numpy as np

    from facellm.faces.embed import descriptor_of_file, descriptors_of, evaluate_pairs, read_pairs

    points = _landmark_points(landmark_points)

    if pairs_file:
        if images or not images_dir:
            raise FaceLLMError("--pairs needs --images DIR and no image arguments", "see facellm verify -h")
        pairs = read_pairs(pairs_file, images_dir)
        if not images_dir.is_dir():
            raise FaceLLMError(f"image folder {images_dir} not found", "pass the folder that holds the pairs' images")
        paths = sorted({p for _, a, b, _ in pairs for p in (a, b)})
        with click.progressbar(length=len(paths), label="descriptors", file=sys.stderr) as bar:
            found, skipped = descriptors_of(paths, jitters, workers, lambda: bar.update(1), points)
        report_skipped([f"{path}: {why}" for path, why in skipped.items()])
        usable = [p for p in pairs if p[1] in found and p[2] in found]
        if len({f for f, *_ in usable}) < 2:
            raise FaceLLMError(
                f"only {len(usable)} of {len(pairs)} pairs have both images readable, in fewer than two folds",
                "check that --images is the folder that holds the pairs' images",
            )
        scored = evaluate_pairs(usable, found)
        result = {
            "pairs": len(usable),
            "pairs_skipped": len(pairs) - len(usable),
            "accuracy": round(100 * scored.accuracy, 2),
            "fold_accuracies": [round(100 * a, 2) for a in scored.fold_accuracies],
            "thresholds": [round(t, 4) for t in scored.thresholds],
            "shrinks": scored.shrinks,
            "jitters": jitters,
        }
        click.echo(
            json.dumps(result, indent=1)
            if as_json
            else f"accuracy {result['accuracy']}% over {len(usable)} pairs ({result['pairs_skipped']} skipped); "
            f"per fold {result['fold_accuracies']}; learnt on the other folds: thresholds "
            f"{result['thresholds']}, whitening shrinkage {scored.shrinks} (1.0 = plain distances)"
        )
        return
    if len(images) != 2:
        raise FaceLLMError("verify needs two images (or --pairs FILE --images DIR)", "e.g. facellm verify a.jpg b.jpg")
    a, b = (descriptor_of_file(p, jitters, points) for p in images)
    gap = float(np.linalg.norm(a - b))
    result = {"same_person": gap < threshold, "distance": round(gap, 4), "threshold": threshold}
    click.echo(
        json.dumps(result)
        if as_json
        else f"{'same person' if result['same_person'] else 'different people'}: distance {gap:.4f} "
        f"(threshold {threshold})"
    )


@cli.group("faces")
def faces_group() -> None:
    """Face collections and predictors: cluster by identity, train the attribute predictors."""


@faces_group.command("train-attributes")
@click.option("--fairface", required=True, type=click.Path(path_type=Path), help="FairFace folder (CSV + images).")
@click.option("--train-limit", type=int, default=16000, show_default=True, help="FairFace train images to use.")
@click.option("--val-limit", type=int, default=2500, show_default=True, help="FairFace val images to score.")
@click.option("--epochs", type=int, default=8, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), help="Weights file (default: the packaged one).")
@click.option("--workers", type=int, default=0, help="Processes for feature extraction (default: CPU cores).")
def faces_train_attributes(fairface, train_limit, val_limit, epochs, out, workers) -> None:
    """Train the age/gender/race network on FairFace train; report accuracy on FairFace val (overall, per race)."""
    from facellm.faces import attributes_training

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
    from facellm.faces import expression, expression_training

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
    from facellm.faces import pose

    if not (aflw / "labels.csv").is_file():
        raise FaceLLMError(f"{aflw / 'labels.csv'} not found", "pass --aflw with AFLW2000's labels.csv and images/")
    report = pose.train(aflw, out or pose.WEIGHTS, workers, say=lambda line: click.echo(line, err=True))
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
    from facellm.faces import crowd, crowd_training

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
    from facellm.faces import celeb_attributes_training as training

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
    from facellm.faces import classifier_training

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

    from facellm.faces.embed import cluster_images

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
