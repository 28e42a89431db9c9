"""Crowd counting: density targets, options read by meaning, the shipped model on held-out ShanghaiTech B images it
never saw, people posing counted by their faces, the `analyze --count` and `faces train-crowd` commands."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from facellm.cli import cli
from facellm.faces import crowd, crowd_training, splits
from facellm.faces.detect import count_faces
from facellm.images import read_image
from facellm.specialist import answer
from facellm.specialist.answers import count_bounds, count_chances
from tests.conftest import SHARED

SHANGHAITECH = SHARED / "data" / "shanghaitech_b"
needs_shanghaitech = pytest.mark.skipif(
    not (SHANGHAITECH / "points.csv").is_file(), reason="../shared/data/shanghaitech_b is not present"
)


def test_density_targets_keep_every_head_and_sit_under_it():
    points = [(7.0, 7.0), (100.0, 50.0), (633.0, 473.0), (300.5, 200.5)]
    density = crowd_training.density_target(points, (59, 79))
    assert density.sum() == pytest.approx(4.0, abs=1e-4)  # heads at the border keep their unit mass
    row, column = np.unravel_index(np.argmax(crowd_training.density_target([(303.0, 199.0)], (59, 79))), (59, 79))
    assert (column * crowd.STRIDE + crowd.OFFSET, row * crowd.STRIDE + crowd.OFFSET) == (303, 199)
    assert crowd_training.density_target([], (59, 79)).sum() == 0


def test_count_options_are_read_by_meaning():
    assert count_bounds("22 to 26") == (22, 26)
    assert count_bounds("more than 50") == (51, math.inf) and count_bounds("at least 7") == (7, math.inf)
    assert count_bounds("fewer than 5") == (0, 4) and count_bounds("12") == (12, 12)
    assert count_bounds("None of the above") is None


def test_count_options_get_the_share_of_the_counts_distribution_they_hold():
    ranges = {t: count_bounds(t) for t in ("fewer than 21", "21 to 40", "41 to 60", "more than 60")}
    chances = count_chances(45.0, ranges)
    assert math.isclose(sum(chances.values()), 1.0, abs_tol=1e-9)  # the four ranges cover every count
    assert chances["fewer than 21"] < 0.05 and chances["more than 60"] < 0.1
    assert chances["21 to 40"] > 0.2 and chances["41 to 60"] > 0.2  # 45 may well be 40 or fewer: not all or nothing
    wider = count_chances(45.0, {"44 to 46": (44, 46), "40 to 50": (40, 50)})
    assert wider["44 to 46"] < wider["40 to 50"] < 1


def test_the_crowd_model_s_bias_at_each_count_is_undone():
    """The model over-counts small crowds and under-counts large ones (on its training part): a count of 60 does not
    point to the highest of four ranges below it, and a count of 300 points above itself."""
    below = {t: count_bounds(t) for t in ("40 to 44", "45 to 49", "50 to 54", "55 to 59")}
    chances = count_chances(60.0, below)
    assert max(chances, key=chances.get) != "55 to 59"
    chances = count_chances(300.0, {t: count_bounds(t) for t in ("251 to 300", "301 to 350")})
    assert chances["301 to 350"] > 2 * chances["251 to 300"]


def _held_out(count: int) -> list[tuple[Path, int]]:
    return [(path, int(label)) for path, label in splits.crowd(SHANGHAITECH).held_out[:count]]


@pytest.mark.slow
@needs_shanghaitech
def test_shipped_model_counts_held_out_crowds():
    """ShanghaiTech B images the model never saw (every 4th by path): the count follows the annotated one."""
    held = _held_out(12)
    counted = np.array([crowd.predict(read_image(path)).count for path, _ in held])
    truth = np.array([n for _, n in held], dtype=float)
    error = np.abs(counted - truth)
    card = json.loads(crowd.WEIGHTS.with_suffix(".json").read_text())
    assert error.mean() < 2 * card["held_out_mae"], (counted, truth)
    assert np.corrcoef(counted, truth)[0, 1] > 0.8, (counted, truth)


@needs_shanghaitech
def test_crowd_questions_are_answered_from_the_count_not_refused():
    path, truth = _held_out(4)[1]
    image = read_image(path)
    estimate = crowd.predict(image).count
    # Options far apart, so the pick shows the count was used: the option holding the estimate must win.
    ranges = [
        (max(11, int(estimate) - 400), max(12, int(estimate) - 200)),
        (int(estimate) - 30, int(estimate) + 30),
        (int(estimate) + 200, int(estimate) + 400),
        (int(estimate) + 500, int(estimate) + 700),
    ]
    options = "".join(f"({letter}) {low} to {high}\n" for letter, (low, high) in zip("ABCD", ranges))
    reply = answer([image], "Estimate the count of people present in this image.\n" + options)
    assert reply.startswith("B") and "crowd density model" in reply, reply
    more = answer([image], f"How many people are there?\n(A) fewer than 5\n(B) more than {int(estimate) - 50}\n")
    assert more.startswith("B"), more
    assert "people estimated" in answer([image], "How many people are in this picture?")


@pytest.mark.slow
@needs_shanghaitech
def test_analyze_count_prints_the_count_and_saves_the_density_map(tmp_path):
    path, _ = _held_out(1)[0]
    result = CliRunner().invoke(cli, ["analyze", str(path), "--count", "--density-maps", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    people = json.loads(result.stdout)["people"]
    assert people["count"] > 10 and Path(people["density_map"]).is_file()
    assert read_image(people["density_map"]).size == (640, 480)
    refused = CliRunner().invoke(cli, ["analyze", str(path), "--density-maps", str(tmp_path)])
    assert refused.exit_code == 2 and "--density-maps needs --count" in refused.output


def test_count_is_refused_when_research_weights_are_off(faces, monkeypatch):
    monkeypatch.setenv("FACELLM_RESEARCH_MODELS", "0")
    result = CliRunner().invoke(cli, ["analyze", str(faces[0].path), "--count"])
    assert result.exit_code == 2 and "FACELLM_RESEARCH_MODELS=0" in result.output


@pytest.mark.slow
@needs_shanghaitech
def test_train_crowd_command_writes_weights_and_card(tmp_path):
    data = tmp_path / "shanghaitech"
    with open(SHANGHAITECH / "labels.csv", newline="") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: r["path"])[:8]
    kept = {r["path"] for r in rows}
    for row in rows:
        (data / row["path"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SHANGHAITECH / row["path"], data / row["path"])
    (data / "labels.csv").write_text("path,count\n" + "".join(f"{r['path']},{r['count']}\n" for r in rows))
    with open(SHANGHAITECH / "points.csv", newline="") as f:
        points = [r for r in csv.DictReader(f) if r["path"] in kept]
    (data / "points.csv").write_text("path,x,y\n" + "".join(f"{r['path']},{r['x']},{r['y']}\n" for r in points))
    out = tmp_path / "crowd.pt"
    extra = tmp_path / "more"
    shutil.copytree(data, extra)
    result = CliRunner().invoke(
        cli, ["faces", "train-crowd", "--data", str(data), "--extra", str(extra), "--epochs", "1", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["training_images"] == 6 + 8 and card["held_out_images"] == 2 and "research use" in card["licence"]
    assert "every image of more/" in card["training_data"]
    bad = CliRunner().invoke(cli, ["faces", "train-crowd", "--data", str(data), "--extra", str(tmp_path / "nowhere")])
    assert bad.exit_code == 2 and "has no labels.csv and points.csv" in bad.output, bad.output
    missing = CliRunner().invoke(cli, ["faces", "train-crowd", "--data", str(tmp_path)])
    assert missing.exit_code == 2 and "labels.csv not found" in missing.output


def _posing(faces: list) -> Image.Image:
    """Real faces side by side on a grey wall, as people pose for a photo."""
    photo = Image.new("RGB", (240 * len(faces) + 40, 320), (128, 128, 128))
    for k, face in enumerate(faces):
        photo.paste(read_image(face.path).resize((220, 220)), (30 + 240 * k, 50))
    return photo


@pytest.mark.slow
def test_people_posing_are_counted_by_their_faces_whatever_the_options_claim(faces):
    three = _posing([faces[0], faces[1], faces[2]])
    assert len(count_faces(three)) == 3
    assert answer([three], "How many people are posing here?\nA. 2\nB. 3\nC. 4\nD. 5").startswith("B.")
    # Options reaching past 10 people once sent every count to the crowd model, made for scenes of small heads.
    ranges = "Roughly how many people are in the photo?\nA. fewer than 3\nB. 3 to 5\nC. 6 to 10\nD. more than 10"
    assert answer([three], ranges).startswith("B.")
    assert answer([three], "Is there only one person in this picture?").startswith("No")
    assert answer([three], "Are there exactly three people in this photo?").startswith("Yes")


@pytest.mark.slow
def test_images_are_chosen_by_how_many_people_they_show(faces):
    one, two = _posing([faces[3]]), _posing([faces[4], faces[5]])
    options = "\nA. The first\nB. The second\nC. Both\nD. Neither"
    assert answer([one, two], "Which picture has more than one person?" + options).startswith("B.")
    assert answer([one, two], "Which image shows only one person?" + options).startswith("A.")
    assert answer(
        [two, one, two], "Which photos show exactly two people?\nA. 1 only\nB. 2 only\nC. 1 and 3"
    ).startswith("C.")


@pytest.mark.slow
def test_the_people_of_one_photo_are_asked_about_face_by_face(faces):
    # faces 0, 2: women; face 1: a man (FairFace labels).
    group = _posing([faces[0], faces[1], faces[2]])
    assert answer([group], "How many women are in this photo?").startswith("2 of 3")
    assert answer([group], "How many of them are men?\nA. 0\nB. 1\nC. 2\nD. 3").startswith("B.")
    assert answer([group], "Is this person a woman?").startswith(("Yes", "No"))  # one face asked about: not split
