"""`facellm analyze` (faces in images: boxes, landmarks, pose, quality, attributes, crowd counts) and `facellm verify`
(same person or not, for two images or an LFW pairs file)."""

from __future__ import annotations

from pathlib import Path

import click

from facellm.api import analyze, verify, verify_pairs
from facellm.cli.common import expand_images, landmarks_option, progress_bar, report_skipped
from facellm.cli.root import cli
from facellm.errors import FaceLLMError
from facellm.faces.crowd import density_picture, shipped_model
from facellm.faces.detect import DETECTORS
from facellm.faces.dlib_models import landmark_points
from facellm.faces.licenses import BUNDLED_MODELS
from facellm.images import read_image
from facellm.parallel import map_over_cores


def _analyze_one(job: tuple[str, str, bool, int, bool, str | None]) -> dict:

    path, detector, with_attributes, points, count, maps = job
    try:
        image = read_image(path)
        found = analyze(image, detector=detector, attributes=with_attributes, landmarks=points, count_people=count)
    except FaceLLMError as exc:
        return {"image": path, "error": str(exc)}
    result = {"image": path, **found.as_dict()}
    if maps and found.people is not None:
        target = Path(maps) / f"{Path(path).stem}-density.png"
        density_picture(image, found.people).save(target)
        result["people"]["density_map"] = str(target)
    return result


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
    from dataclasses import asdict

    points = _landmark_points(landmark_points)

    if pairs_file:
        if images or not images_dir:
            raise FaceLLMError("--pairs needs --images DIR and no image arguments", "see facellm verify -h")
        with progress_bar("descriptors", "image") as progress:
            scored = verify_pairs(
                pairs_file, images_dir, jitters=jitters, workers=workers, landmarks=points, progress=progress
            )
        report_skipped([f"{path}: {why}" for path, why in scored.skipped.items()])
        result = {k: v for k, v in asdict(scored).items() if k != "skipped"}
        click.echo(
            json.dumps(result, indent=1)
            if as_json
            else f"accuracy {scored.accuracy}% over {scored.pairs} pairs ({scored.pairs_skipped} skipped); "
            f"per fold {scored.fold_accuracies}; learnt on the other folds: thresholds "
            f"{scored.thresholds}, whitening shrinkage {scored.shrinks} (1.0 = plain distances)"
        )
        return
    if len(images) != 2:
        raise FaceLLMError("verify needs two images (or --pairs FILE --images DIR)", "e.g. facellm verify a.jpg b.jpg")
    found = verify(*images, threshold=threshold, jitters=jitters, landmarks=points)
    for path, count in zip(images, found.faces):
        if count > 1:
            click.echo(f"note: {path} shows {count} faces; its largest face was compared", err=True)
    click.echo(
        json.dumps({**asdict(found), "faces": list(found.faces)})
        if as_json
        else f"{'same person' if found.same_person else 'different people'}: distance {found.distance:.4f} "
        f"(threshold {threshold})"
    )
