"""The head-pose, anti-spoofing, synthetic-face and colour-expression models on real held-out faces from
../shared/data (images the shipped weights never saw), the specialist's answers built on them, and the switch that
turns research-only weights off."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from facellm.faces import analyze_image, splits
from facellm.faces.classifier import TASKS, predict
from facellm.faces.expression import predict as predict_expression
from facellm.faces.pose import WEIGHTS as POSE_WEIGHTS
from facellm.images import read_image
from facellm.specialist import answer

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data is not here")


def _poses(count: int):
    held = json.loads(POSE_WEIGHTS.with_suffix(".json").read_text())["held_out_faces"][:count]
    with open(DATA / "aflw2000" / "labels.csv", newline="") as f:
        truth = {r["file"]: [float(r[a]) for a in ("yaw", "pitch", "roll")] for r in csv.DictReader(f)}
    return [(read_image(DATA / "aflw2000" / name), truth[name]) for name in held]


@pytest.mark.slow
def test_head_pose_is_in_aflw2000_convention_on_unseen_faces():
    faces = _poses(24)
    measured = np.array(
        [[getattr(analyze_image(image).faces[0].pose, a) for a in ("yaw", "pitch", "roll")] for image, _ in faces]
    )
    truth = np.array([angles for _, angles in faces])
    error = np.abs(measured - truth).mean(axis=0)
    assert error.mean() < 12, error
    frontal = np.abs(truth[:, 0]) < 30  # the median checks need faces the model measures well
    for axis in range(3):  # a sign error would make these negative, an offset would show in the median difference
        assert np.corrcoef(measured[:, axis], truth[:, axis])[0, 1] > 0.6
        assert abs(np.median(measured[frontal, axis] - truth[frontal, axis])) < 4


@pytest.mark.slow
def test_profile_faces_get_their_turn_from_the_pixels():
    """Past 60 degrees of yaw dlib's landmarks fold onto the visible half of the face (landmarks alone were 50
    degrees off there); the crops' maps measure the turn."""
    profiles = [(image, truth) for image, truth in _poses(500) if abs(truth[0]) >= 60]
    assert len(profiles) >= 8
    error = [abs(analyze_image(image).faces[0].pose.yaw - truth[0]) for image, truth in profiles]
    assert np.mean(error) < 25, error


@pytest.mark.slow
def test_a_far_turned_face_is_measured_in_the_box_dlib_s_detector_would_give_it(monkeypatch):
    """Held-out profiles that YuNet finds turned far: the pose model (trained on dlib's boxes) measures them from a
    box placed behind the landmarks (`yunet.turned_box`), not from the box centred on them."""
    from facellm.faces import detect, pose

    profiles = [(image, truth) for image, truth in _poses(500) if abs(truth[0]) >= 60]
    boxes = [detect.detect_faces(image, "quick")[0] for image, _ in profiles]
    turned = [(image, truth, box) for (image, truth), box in zip(profiles, boxes) if box.detector == "yunet-turned"]
    assert len(turned) >= 5

    def yaw_error() -> float:
        return float(np.mean([abs(pose.predict(image, box).yaw - truth[0]) for image, truth, box in turned]))

    placed = yaw_error()
    monkeypatch.setattr(pose, "pose_box", lambda image, box: box)
    assert placed < 20 and placed < yaw_error() - 5


@pytest.mark.slow
def test_how_far_a_head_is_turned_either_way():
    """Held-out faces: a turn's size, whichever way the face turns, picks the size option."""
    question = "About how many degrees is the head turned?\nA. 0-15\nB. 15-30\nC. 30-45\nD. more than 45"
    faces = _poses(200)
    frontal = [image for image, truth in faces if abs(truth[0]) < 8][:3]
    far = [image for image, truth in faces if 55 < truth[0] < 85][:2] + [i for i, t in faces if -85 < t[0] < -55][:2]
    assert len(frontal) == 3 and len(far) == 4
    assert all(answer([image], question).startswith("A") for image in frontal)
    assert sum(answer([image], question).startswith("D") for image in far) >= 3


def _turned(count: int = 40):
    """A held-out face turned by 20-50 degrees of yaw (clearly turned, within what landmarks measure well)."""
    return next(face for face in _poses(count) if 20 <= abs(face[1][0]) <= 50)


def test_a_mirrored_face_turns_the_other_way():
    image, (yaw, _, _) = _turned()
    plain = analyze_image(image).faces[0].pose
    flipped = analyze_image(ImageOps.mirror(image)).faces[0].pose
    assert np.sign(plain.yaw) == np.sign(yaw) == -np.sign(flipped.yaw)


def _held_out(split, label: str, count: int):
    return [path for path, y in split.held_out if y == label][:count]


@pytest.mark.parametrize(
    ("task", "split", "folder", "minimum"),
    [("liveness", splits.liveness, "nuaa", 0.75), ("synthetic", splits.synthetic, "synthetic_faces", 0.75)],
)
@pytest.mark.slow
def test_binary_models_on_held_out_images(task, split, folder, minimum):
    held = split(DATA / folder)
    right = 0
    total = 0
    for label in TASKS[task].classes:
        for path in _held_out(held, label, 12):
            probs = predict(read_image(path), task=task)
            right += max(probs, key=probs.get) == label
            total += 1
    assert right / total >= minimum


@pytest.mark.slow
def test_colour_expression_on_held_out_rafdb():
    held = splits.expression(DATA / "rafdb").held_out[::20][:40]
    right = sum(max(p := predict_expression(read_image(path)), key=p.get) == label for path, label in held)
    assert right / len(held) >= 0.65  # the FER2013 model alone scores about 65% on all 1,224 held-out faces


def test_grey_and_colour_pictures_go_to_their_own_expression_model():
    path, _ = splits.expression(DATA / "rafdb").held_out[0]
    colour = read_image(path)
    assert predict_expression(colour) != predict_expression(colour.convert("L").convert("RGB"))


def _two_frames():
    held = splits.liveness(DATA / "nuaa")
    return read_image(_held_out(held, "attack", 1)[0]), read_image(_held_out(held, "bonafide", 1)[0])


@pytest.mark.parametrize(
    ("question", "options", "letter"),
    [
        (
            "Which statement best describes the images?",
            [
                "Both images are bonafide",
                "Image 1 is attack and Image 2 is bonafide",
                "Image 1 is bonafide and Image 2 is attack",
                "Both images are attacks",
            ],
            "B",
        ),
        ("Which photo shows a genuine person?", ["Image 1", "Image 2", "Both Images", "None of the above"], "B"),
        ("Which of these pictures is a presentation attack?", ["Neither", "Image 2", "Image 1", "Both"], "C"),
        ("How many images are bona fide?", ["0", "1", "2"], "B"),
    ],
)
def test_specialist_answers_anti_spoofing_questions(question, options, letter):
    prompt = question + "\n" + "".join(f"({k}) {o}\n" for k, o in zip("ABCD", options))
    assert answer(list(_two_frames()), prompt).startswith(f"{letter}.")


def test_specialist_answers_synthetic_face_questions():
    held = splits.synthetic(DATA / "synthetic_faces")
    fake, real = (read_image(_held_out(held, label, 1)[0]) for label in ("fake", "real"))
    prompt = (
        "Which images are real and which are fake?\n(A) Both are real\n(B) Image 1 is real, Image 2 is fake\n"
        "(C) Image 1 is fake, Image 2 is real\n(D) Both are fake\n"
    )
    assert answer([fake, real], prompt).startswith("C.")
    assert answer([real, fake], prompt).startswith("B.")


def test_head_pose_questions_pick_the_bin_of_the_measured_angle():
    image, (yaw, _, _) = _turned()
    bins = [(b, b + 10) for b in range(-90, 90, 10)]
    truth = next(b for b in bins if b[0] <= yaw < b[1])
    far = [b for b in bins if abs(b[0] - truth[0]) >= 40][:3]
    options = [f"{low} to {high}" for low, high in [*far, truth]]
    prompt = "What is the yaw angle range of headpose orientation for the person in this image?\n" + "".join(
        f"({k}) {o}\n" for k, o in zip("ABCD", options)
    )
    assert answer([image], prompt).startswith("D.")


def test_research_only_weights_can_be_turned_off(monkeypatch):
    attack, bonafide = _two_frames()
    monkeypatch.setenv("FACELLM_RESEARCH_MODELS", "0")
    reply = answer([attack, bonafide], "Which image is an attack?\n(A) Image 1\n(B) Image 2\n")
    assert reply.startswith("cannot measure") and "FACELLM_RESEARCH_MODELS=0" in reply
    image, _ = _poses(1)[0]
    face = analyze_image(image, with_attributes=True).faces[0]
    assert face.pose.method == "pnp"
    assert "expression" not in face.attributes and "gender" in face.attributes
    monkeypatch.setenv("FACELLM_RESEARCH_MODELS", "maybe")
    with pytest.raises(Exception, match="FACELLM_RESEARCH_MODELS must be 0 or 1"):
        predict(Image.new("RGB", (64, 64)), task="liveness")


def _subset(tmp_path: Path, folder: str, rows: list[dict]) -> Path:
    """A copy of a ../shared/data folder's labels.csv with only `rows` (images stay where they are, by link)."""
    target = tmp_path / folder
    target.mkdir()
    (target / "images").symlink_to(DATA / folder / "images")
    with open(target / "labels.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return target


def _rows(folder: str) -> list[dict]:
    with open(DATA / folder / "labels.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_training_commands_write_weights_and_cards(tmp_path):
    from click.testing import CliRunner

    from facellm.cli import cli

    rows = _rows("nuaa")
    nuaa = _subset(tmp_path, "nuaa", [r for r in rows if r["subject"] in ("0001", "0008")][::12])
    out = tmp_path / "liveness.pt"
    result = CliRunner().invoke(
        cli,
        [
            "faces",
            "train-classifier",
            "liveness",
            "--data",
            str(nuaa),
            "--epochs",
            "1",
            "--out",
            str(out),
            "--workers",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["held_out_images"] > 0 and card["training_images"] > 0 and "research use only" in card["licence"]
    aflw = _subset(tmp_path, "aflw2000", _rows("aflw2000")[:15])
    out = tmp_path / "pose.pt"
    result = CliRunner().invoke(cli, ["faces", "train-pose", "--aflw", str(aflw), "--out", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    card = json.loads(out.with_suffix(".json").read_text())
    assert set(card["mae_5fold_degrees"]) == {"yaw", "pitch", "roll"} and card["held_out_faces"]


def test_training_commands_name_what_is_missing(tmp_path):
    from click.testing import CliRunner

    from facellm.cli import cli

    for command, needle in (
        (["faces", "train-pose", "--aflw", str(tmp_path)], "labels.csv not found"),
        (["faces", "train-classifier", "synthetic", "--data", str(tmp_path)], "labels.csv not found"),
        (["faces", "train-expression", "--rafdb", str(tmp_path)], "labels.csv not found"),
        (["faces", "train-expression"], "give one of --fer or --rafdb"),
    ):
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 2 and needle in result.output, (command, result.output)


def test_yunet_finds_the_profiles_hog_misses_and_steps_aside_when_research_weights_are_off(monkeypatch):
    """AFLW2000-3D development faces turned more than 75 degrees: dlib's HOG finds few, YuNet (shipped) finds them, in
    dlib's box geometry (the 68-point landmarks then land on the face); FACELLM_RESEARCH_MODELS=0 leaves it unused."""
    from facellm.faces import detect_faces
    from facellm.faces.geometry import landmarks

    with open(DATA / "aflw2000" / "labels.csv", newline="") as f:
        profiles = [r["file"] for r in csv.DictReader(f) if 75 < abs(float(r["yaw"])) < 90][:8]
    images = [read_image(DATA / "aflw2000" / name) for name in profiles]
    assert sum(bool(detect_faces(image, "hog")) for image in images) <= 2
    found = [detect_faces(image, "yunet") for image in images]
    assert sum(bool(boxes) for boxes in found) >= 7
    cascade = [detect_faces(image, "quick") for image in images]  # where HOG finds nothing, YuNet looks
    assert sum(bool(boxes) and boxes[0].detector.startswith("yunet") for boxes in cascade) >= 6
    image, box = next((image, boxes[0]) for image, boxes in zip(images, found) if boxes)
    points = landmarks(np.asarray(image), box, 68)
    assert box.left - box.width < points[:, 0].mean() < box.right + box.width  # the points stay around the face
    face = read_image(Path(__file__).resolve().parents[1] / "src" / "facellm" / "samples" / "fairface" / "val_119.jpg")
    hog, yunet = detect_faces(face, "hog")[0], detect_faces(face, "yunet")[0]
    assert abs((hog.left + hog.right) - (yunet.left + yunet.right)) / 2 < 0.15 * hog.width  # boxes in dlib's geometry
    assert abs(hog.width - yunet.width) < 0.25 * hog.width
    monkeypatch.setenv("FACELLM_RESEARCH_MODELS", "0")
    assert all(box.detector != "yunet" for image in images for box in detect_faces(image))
