"""Face analysis with the real dlib models on real faces (the shipped samples and ../shared/data)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageFilter, ImageOps

from facellm.cli import cli
from facellm.errors import ModelLoadError
from facellm.faces import analyze_image, detect_faces, image_descriptor
from facellm.faces.descriptor_net import describe_chips, read_weights
from facellm.faces.dlib_models import face_encoder, models_dir
from facellm.faces.embed import (
    _best_threshold,
    aligned_chip,
    chip_descriptors,
    descriptors_of,
    evaluate_pairs,
    read_pairs,
    within_person_whitening,
)
from facellm.faces.geometry import landmarks
from facellm.faces.pose import predict as head_pose
from facellm.faces.quality import face_quality
from facellm.images import read_image
from tests.conftest import SHARED

FAIRFACE_VAL = SHARED / "data" / "fairface" / "fairface_img_margin025" / "val"
LFW = SHARED / "data" / "lfw"


def _pose(image: Image.Image):
    box = detect_faces(image, fallback=True)[0]
    return head_pose(image, box, points=landmarks(np.asarray(image), box))


@pytest.mark.slow
@pytest.mark.skipif(not FAIRFACE_VAL.is_dir(), reason="../shared/data/fairface is not present")
def test_detector_finds_faces_in_fairface_val():
    paths = sorted(FAIRFACE_VAL.glob("*.jpg"), key=lambda p: int(p.stem))[:400]
    found = [bool(detect_faces(Image.open(p).convert("RGB"))) for p in paths]  # no whole-image fallback
    assert sum(found) / len(found) >= 0.97


@pytest.mark.slow
def test_several_faces_and_no_face(face_images):
    canvas = Image.new("RGB", (224 * 3, 260), (128, 128, 128))
    for i in range(3):
        canvas.paste(face_images[i + 3], (224 * i, 18))
    analysis = analyze_image(canvas)
    assert analysis.face_count == 3
    assert sorted(round(f.box.left / 224) for f in analysis.faces) == [0, 1, 2]
    empty = analyze_image(Image.new("RGB", (300, 300), (30, 90, 160)))
    assert empty.face_count == 0 and empty.faces == []


def test_tiny_and_huge_images(face_images):
    tiny = face_images[5].resize((36, 36))
    assert detect_faces(tiny), "a 36 px face is upsampled before detection"
    huge = Image.new("RGB", (3000, 2400), (200, 200, 200))
    huge.paste(face_images[5].resize((448, 448)), (2000, 1500))
    [box] = detect_faces(huge)
    assert 1900 < box.left < 2150 and 1400 < box.top < 1650  # mapped back to full-size coordinates


def test_grayscale_and_rgba_work(face_images):
    assert detect_faces(face_images[5].convert("L"))
    assert detect_faces(face_images[5].convert("RGBA"))


@pytest.mark.parametrize("angle", [15, -15])
def test_roll_follows_rotation(face_images, angle):
    for image in (face_images[2], face_images[3], face_images[5]):
        before = _pose(image).roll
        after = _pose(image.rotate(angle, resample=Image.Resampling.BICUBIC)).roll
        assert abs((after - before) - (-angle)) <= 4  # PIL rotates counter-clockwise; roll grows clockwise


def test_yaw_sign_follows_the_documented_convention(faces):
    # Checked by eye: in val_2379 the child's face turns towards the image's right, in val_293 the woman's towards
    # its left. AFLW2000-3D's convention (checked on its labels, tests/test_face_specialists.py): positive yaw =
    # turned towards the image's left.
    by_name = {f.path.stem: f for f in faces}
    turned_right = analyze_image(Image.open(by_name["val_2379"].path).convert("RGB")).faces[0].pose.yaw
    turned_left = analyze_image(Image.open(by_name["val_293"].path).convert("RGB")).faces[0].pose.yaw
    assert turned_right < -20 and turned_left > 10


@pytest.mark.skipif(not FAIRFACE_VAL.is_dir(), reason="../shared/data/fairface is not present")
def test_pitch_sign_follows_the_documented_convention():
    # Checked by eye: in FairFace val 133 and 87 the head is tipped back (chin up); in 84 and 270 it is bowed.
    def pitch(number: int) -> float:
        return analyze_image(Image.open(FAIRFACE_VAL / f"{number}.jpg").convert("RGB")).faces[0].pose.pitch

    # Signs only: magnitudes are checked against AFLW2000-3D's labels in tests/test_face_specialists.py (the earlier
    # thresholds of 15 degrees suited a solvePnP fit that read about 8 degrees too high).
    assert pitch(133) > 0 and pitch(87) > 0 and pitch(84) < 0 and pitch(270) < 0


@pytest.mark.slow
def test_mirroring_flips_yaw(face_images):
    for image in (face_images[0], face_images[1], face_images[4]):  # visibly turned faces
        yaw, mirrored = _pose(image).yaw, _pose(ImageOps.mirror(image)).yaw
        assert abs(yaw) > 8 and np.sign(yaw) == -np.sign(mirrored)


def test_blur_lowers_sharpness_monotonically(face_images):
    image = face_images[1]
    box = detect_faces(image, fallback=True)[0]
    values = [face_quality(image.filter(ImageFilter.GaussianBlur(r)), box).sharpness for r in (0, 1, 2, 4)]
    assert values == sorted(values, reverse=True) and values[0] > 3 * values[-1]


def test_same_person_is_closer_than_different_people(face_images):
    a = image_descriptor(face_images[0])[0]
    same = image_descriptor(ImageOps.mirror(face_images[0]).rotate(5))[0]
    other = image_descriptor(face_images[1])[0]
    assert np.linalg.norm(a - same) < 0.6 < np.linalg.norm(a - other)


@pytest.mark.slow
def test_torch_descriptor_network_equals_dlibs(face_images):
    # The weights read from dlib's file, run in torch, give dlib's own descriptors on real faces.
    chips = [aligned_chip(image, detect_faces(image, fallback=True)[0]) for image in face_images[:4]]
    ours = describe_chips(chips)
    reference = np.array([face_encoder().compute_face_descriptor(chip, 0) for chip in chips])
    assert ours.shape == (4, 128) and np.abs(ours - reference).max() < 1e-4
    plain, _ = chip_descriptors(chips[0])
    jittered, _ = chip_descriptors(chips[0], jitters=4)  # dlib's random jitters: near the plain one, not equal
    assert 0 < np.linalg.norm(plain - jittered) < 0.2


def test_a_damaged_descriptor_file_is_a_clear_error(tmp_path):
    damaged = tmp_path / "resnet.dat"
    data = (models_dir() / "dlib_face_recognition_resnet_model_v1.dat").read_bytes()
    damaged.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="could not read dlib's face descriptor network"):
        read_weights(damaged)


@pytest.mark.slow
@pytest.mark.skipif(not LFW.is_dir(), reason="../shared/data/lfw is not present")
def test_lfw_pairs_fold_accuracy():
    pairs = [p for p in read_pairs(LFW / "pairs.txt", LFW / "images") if p[0] in (0, 1)][::5]
    paths = sorted({p for _, a, b, _ in pairs for p in (a, b)})
    vectors, skipped = descriptors_of(paths)  # over the CPU cores, as `facellm verify --pairs` computes them
    assert not skipped
    scored = evaluate_pairs(pairs, vectors)
    assert scored.accuracy >= 0.92 and all(0.45 < t < 0.75 for t in scored.thresholds)
    assert scored.shrinks == [1.0, 1.0]  # two folds leave too few to tune a whitening on: plain distances


def test_best_threshold_matches_trying_every_distance():
    generator = np.random.default_rng(0)
    distances = np.round(generator.uniform(0, 1, 300), 2)  # rounded: many ties
    same = generator.uniform(0, 1, 300) > distances
    threshold, accuracy = _best_threshold(distances, same)
    tried = {t: ((distances < t) == same).mean() for t in np.unique(distances)}
    assert accuracy == max(tried.values()) and tried[threshold] == accuracy


def test_within_person_whitening():
    generator = np.random.default_rng(1)
    person = generator.normal(size=(500, 8))
    wander = generator.normal(size=(500, 8)) * np.array([3, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])  # one noisy axis
    a, b = person + wander, person - wander
    rotation = within_person_whitening(a, b, shrink=1.0)
    assert np.allclose(rotation.T @ rotation, np.eye(8))  # shrink 1: distances unchanged
    spread = (a - b) @ within_person_whitening(a, b, shrink=0.0)
    covariance = spread.T @ spread / (2 * len(spread))
    assert np.allclose(covariance, np.trace(covariance) / 8 * np.eye(8), atol=1e-8)  # whitened, same mean scale
    assert np.isclose(np.trace(covariance), np.trace((a - b).T @ (a - b) / (2 * len(a))))


@pytest.mark.slow
@pytest.mark.skipif(not LFW.is_dir(), reason="../shared/data/lfw is not present")
def test_verify_pairs_cli_skips_unreadable_images(tmp_path):
    # Three folds of 5 same + 5 different pairs taken from LFW's own file; one image is replaced by junk.
    lines = (LFW / "pairs.txt").read_text().split("\n")
    per_fold = int(lines[0].split()[1])
    chosen = []
    for fold in range(3):
        start = 1 + 2 * per_fold * fold
        chosen += lines[start : start + 5] + lines[start + per_fold : start + per_fold + 5]
    (tmp_path / "pairs.txt").write_text("3\t5\n" + "\n".join(chosen) + "\n")
    pairs = read_pairs(tmp_path / "pairs.txt", tmp_path / "images")
    for _, *paths, _ in pairs:
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes((LFW / "images" / path.parent.name / path.name).read_bytes())
    broken = pairs[0][1]
    broken.write_bytes(b"not a jpeg")
    result = CliRunner().invoke(
        cli,
        [
            "verify",
            "--pairs",
            str(tmp_path / "pairs.txt"),
            "--images",
            str(tmp_path / "images"),
            "--json",
            "--workers",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    lost = sum(broken in (a, b) for _, a, b, _ in pairs)
    assert data["pairs_skipped"] == lost >= 1 and data["pairs"] == 30 - lost
    assert f"skipped {broken}" in result.stderr and data["accuracy"] >= 80 and len(data["shrinks"]) == 3
    assert "descriptors" in result.stderr  # the progress bar's label
    missing = CliRunner().invoke(cli, ["verify", "--pairs", str(tmp_path / "pairs.txt"), "--images", str(tmp_path)])
    assert missing.exit_code == 2 and "check that --images is the folder" in missing.output


def test_analyze_cli_table_json_and_errors(faces, tmp_path):
    runner = CliRunner()
    single = runner.invoke(cli, ["analyze", str(faces[0].path), "--json"])
    assert single.exit_code == 0, single.output
    data = json.loads(single.stdout)
    face = data["faces"][0]
    assert data["face_count"] == 1 and len(face["landmarks"]) == 68
    assert set(face["pose"]) == {"yaw", "pitch", "roll", "label", "method"} and face["quality"]["face_width"] > 100
    folder = tmp_path / "folder"
    folder.mkdir()
    for f in faces[:3]:
        (folder / f.path.name).write_bytes(f.path.read_bytes())
    (folder / "broken.jpg").write_bytes(b"not an image")
    table = runner.invoke(cli, ["analyze", str(folder), "--workers", "1"])
    assert (
        table.exit_code == 0 and table.stdout.count("1 face(s)") == 3 and "skipped: not an image file" in table.stdout
    )
    missing = runner.invoke(cli, ["analyze", str(tmp_path / "nope.jpg")])
    assert missing.exit_code == 2 and "image not found" in missing.output


@pytest.mark.slow
def test_verify_and_cluster_cli(faces, tmp_path):
    runner = CliRunner()
    same = runner.invoke(cli, ["verify", str(faces[2].path), str(faces[2].path), "--json"])
    assert same.exit_code == 0 and json.loads(same.stdout)["same_person"] is True
    # (The samples also hold two different people closer than 0.6: dlib's descriptor is weaker on children and on
    # some groups; this pair is unambiguous.)
    different = runner.invoke(cli, ["verify", str(faces[0].path), str(faces[1].path), "--json"])
    assert json.loads(different.stdout)["same_person"] is False
    folder = tmp_path / "people"
    folder.mkdir()
    for i, f in enumerate([faces[0], faces[1], faces[10]]):
        Image.open(f.path).save(folder / f"a{i}.png")
        ImageOps.mirror(Image.open(f.path)).save(folder / f"b{i}.png")
    clusters = runner.invoke(cli, ["faces", "cluster", str(folder), "--json"])
    groups = json.loads(clusters.stdout)["clusters"]
    assert sorted(sorted(Path(m).stem[1] for m in group) for group in groups) == [["0", "0"], ["1", "1"], ["2", "2"]]
    bad = runner.invoke(cli, ["verify", str(faces[0].path)])
    assert bad.exit_code == 2 and "two images" in bad.output


@pytest.mark.slow
def test_five_point_path_never_loads_the_68_point_model(face_images, tmp_path, monkeypatch):
    # A models folder without the 68-point file: with FACELLM_LANDMARKS=5 everything but pose and openness works.
    from facellm.faces import attributes, dlib_models
    from facellm.faces.dlib_models import models_dir

    folder = tmp_path / "models"
    folder.mkdir()
    for path in models_dir().iterdir():
        if "68" not in path.name:
            (folder / path.name).symlink_to(path)
    monkeypatch.setattr(dlib_models, "models_dir", lambda: folder)
    monkeypatch.setenv("FACELLM_LANDMARKS", "5")
    dlib_models._shape_predictor.cache_clear()
    try:
        analysis = analyze_image(face_images[0], with_attributes=True)
        [face] = analysis.faces
        assert len(face.landmarks) == 5 and face.pose is None and face.eye_openness is None
        assert abs(sum(face.attributes["gender"].values()) - 1) < 1e-3
        smaller = face_images[0].resize((180, 180))
        same = np.linalg.norm(image_descriptor(face_images[0])[0] - image_descriptor(smaller)[0])
        other = np.linalg.norm(image_descriptor(face_images[0])[0] - image_descriptor(face_images[3])[0])
        assert same < 0.3 < 0.5 < other
        assert attributes.features(face_images[1]).chip.shape == (attributes.CHIP, attributes.CHIP, 3)
        monkeypatch.setenv("FACELLM_LANDMARKS", "68")
        with pytest.raises(RuntimeError):  # dlib cannot open the missing 68-point file: it really was not there
            analyze_image(face_images[0])
    finally:
        dlib_models._shape_predictor.cache_clear()


def test_licenses_and_landmark_option(faces, monkeypatch):
    import os

    monkeypatch.setenv("FACELLM_LANDMARKS", "68")
    licences = CliRunner().invoke(cli, ["analyze", "--licenses"])
    assert licences.exit_code == 0 and "iBUG 300-W" in licences.output and "excludes commercial use" in licences.output
    five = CliRunner().invoke(cli, ["analyze", str(faces[0].path), "--landmarks", "5", "--json"])
    assert five.exit_code == 0, five.output
    assert len(json.loads(five.stdout)["faces"][0]["landmarks"]) == 5
    assert os.environ["FACELLM_LANDMARKS"] == "68"  # a parameter, not a change to the process's environment
    assert len(analyze_image(read_image(faces[0].path), points=5).faces[0].landmarks) == 5
    bad = CliRunner(env={"FACELLM_LANDMARKS": "7"}).invoke(cli, ["analyze", str(faces[0].path)])
    assert bad.exit_code == 2 and "FACELLM_LANDMARKS must be 5 or 68" in bad.output


def test_machine_readable_output_keeps_one_shape(faces, tmp_path):
    """analyze --json is JSON Lines for one image or many, boxes lie inside the image, angles are never -0, and
    verify says when an image shows several faces."""
    from facellm.faces.geometry import Pose

    assert str(Pose(-0.0, 0.0, -0.0, "frontal").roll) == "0.0"
    one = CliRunner().invoke(cli, ["analyze", str(faces[0].path), "--json"])
    two = CliRunner().invoke(cli, ["analyze", str(faces[0].path), str(faces[1].path), "--json"])
    rows = [json.loads(line) for line in two.stdout.splitlines()]
    assert json.loads(one.stdout)["image"] == rows[0]["image"] and len(rows) == 2
    wide = Image.new("RGB", (448, 224))
    by_name = {face.path.name: face.path for face in faces}
    for left, name in ((0, "val_119.jpg"), (224, "val_293.jpg")):
        wide.paste(Image.open(by_name[name]).convert("RGB"), (left, 0))
    wide.save(tmp_path / "two.jpg")
    edge = Image.open(faces[2].path).convert("RGB").crop((40, 40, 224, 224))  # a face cut at the top-left edges
    edge.save(tmp_path / "edge.jpg")
    for row in map(json.loads, CliRunner().invoke(cli, ["analyze", str(tmp_path), "--json"]).stdout.splitlines()):
        for face in row["faces"]:
            box = face["box"]
            assert 0 <= box["left"] < box["right"] <= row["width"] and 0 <= box["top"] < box["bottom"] <= row["height"]
    verified = CliRunner().invoke(cli, ["verify", str(tmp_path / "two.jpg"), str(faces[0].path), "--json"])
    assert json.loads(verified.stdout)["faces"] == [2, 1]
    assert "two.jpg shows 2 faces; its largest face was compared" in verified.stderr
