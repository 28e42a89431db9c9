"""`facellm analyze` (faces in images: boxes, landmarks, pose, quality, attributes, crowd counts) and `facellm verify`
(same person or not, for two images or an LFW pairs file)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from facellm.cli.common import expand_images, landmarks_option, report_skipped
from facellm.cli.root import cli
from facellm.errors import FaceLLMError
from facellm.faces import analyze_image
from facellm.faces.crowd import density_picture, predict, shipped_model
from facellm.faces.detect import DETECTORS, detect_faces
from facellm.faces.embed import descriptor_of_file, descriptors_of, evaluate_pairs, read_pairs
from facellm.faces.licenses import BUNDLED_MODELS
from facellm.faces.models import landmark_points
from facellm.images import read_image
from facellm.parallel import map_over_cores


def _analyze_one(job: tuple[str, str, bool, int, bool, str | None]) -> dict:

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

    counted = predict(image)
    found = {"count": round(counted.count, 1)}
    if maps:
        target = Path(maps) / f"{path.stem}-density.png"
        density_picture(image, counted).save(target)
        found["density_map"] = str(target)
    return found


@cli.command("analyze")
@click.argument("images", nargs=-1, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON Lines (one object per image) instead of a table.")
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

    if licenses:
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
        shipped_model()  # refused here, before any image is read, when the weights may not be used or are missing
        if density_maps:
            density_maps.mkdir(parents=True, exist_ok=True)
    maps = str(density_maps) if density_maps else None
    jobs = [(str(p), detector, with_attributes, points, count_people, maps) for p in paths]
    results = map_over_cores(_analyze_one, jobs, workers)
    if len(results) == 1 and "error" in results[0]:
        raise FaceLLMError(results[0]["error"])
    if as_json:
        for result in results:  # JSON Lines: one object per image, whatever the number of images
            click.echo(json.dumps(result))
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
    counts = [len(detect_faces(read_image(p))) for p in images]
    for path, count in zip(images, counts):
        if count > 1:
            click.echo(f"note: {path} shows {count} faces; its largest face was compared", err=True)
    result = {"same_person": gap < threshold, "distance": round(gap, 4), "threshold": threshold, "faces": counts}
    click.echo(
        json.dumps(result)
        if as_json
        else f"{'same person' if result['same_person'] else 'different people'}: distance {gap:.4f} "
        f"(threshold {threshold})"
    )
