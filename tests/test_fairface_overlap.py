"""FairFace attribute evaluation and the contamination check, on the real sample faces."""

from __future__ import annotations

import io
import json

import pytest
from click.testing import CliRunner
from PIL import Image, ImageEnhance

from facellm.cli import cli
from facellm.errors import InputError
from facellm.eval.fairface import load_fairface
from facellm.eval.overlap import hash_distance, perceptual_hash
from facellm.labels import normalise
from facellm.samples import SAMPLE_DIR
from facellm.testing.mock_openai import MockOpenAIServer

LABELS = SAMPLE_DIR / "labels.csv"


def test_label_normalisation():
    assert normalise("race", "Latino_Hispanic") == "Latino/Hispanic"
    assert normalise("race", "east asian") == "East Asian"
    assert normalise("age", "more than 70") == "more than 70"
    assert normalise("gender", "woman") == "Female"
    with pytest.raises(InputError, match="unknown FairFace race label 'Martian'"):
        normalise("race", "Martian")


def test_fairface_questions_cover_every_class():
    questions, labels = load_fairface(LABELS, SAMPLE_DIR)
    assert len(labels) == 12 and len(questions) == 36
    age = next(q for q in questions if q.subcategory == "age")
    assert len(age.options) == 9 and age.options[age.letters.index(age.correct)] == labels[age.qid]["age"]
    assert all(path.is_file() for q in questions for path in q.image_paths)


@pytest.mark.slow
def test_fairface_report_arithmetic_with_an_api_that_always_says_a(tmp_path):
    with MockOpenAIServer(responder=lambda messages: "(A)") as server:
        result = CliRunner().invoke(
            cli,
            [
                "eval",
                "fairface",
                "--labels",
                str(LABELS),
                "--images",
                str(SAMPLE_DIR),
                "--out",
                str(tmp_path),
                "--api-base",
                server.base_url,
                "--api-model",
                "always-a",
            ],
        )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "fairface_report.json").read_text())["tasks"]
    # "A" is Male, 0-2 and White: the samples hold 6 men, one baby and two White people among 12 faces.
    assert (report["gender"]["correct"], report["age"]["correct"], report["race"]["correct"]) == (6, 1, 2)
    assert report["race"]["per_race"]["White"] == 100.0 and report["race"]["race_gap"] == 100.0
    assert report["gender"]["per_race"]["White"] == 50.0
    assert sum(map(sum, report["age"]["confusion"])) == 12
    assert all((tmp_path / f"confusion_{task}.png").stat().st_size > 5000 for task in ("age", "gender", "race"))
    assert "largest race gap" in result.output


def test_fairface_with_tiny_model_and_bad_inputs(tiny_checkpoint, tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        cli,
        [
            "eval",
            "fairface",
            "--labels",
            str(LABELS),
            "--images",
            str(SAMPLE_DIR),
            "--out",
            str(tmp_path / "r"),
            "--model",
            str(tiny_checkpoint),
            "--scoring",
            "likelihood",
            "--tasks",
            "gender",
            "--limit",
            "5",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "answered 5/5" in result.output
    bad = tmp_path / "bad.csv"
    bad.write_text("file,age\nx.jpg,20-29\n")
    for args, message in (
        (["--labels", str(bad), "--images", str(SAMPLE_DIR)], "lacks column(s) gender, race"),
        (["--labels", str(tmp_path / "none.csv"), "--images", str(SAMPLE_DIR)], "label file not found"),
        (["--labels", str(LABELS), "--images", str(SAMPLE_DIR), "--tasks", "height"], "unknown FairFace task"),
    ):
        failed = runner.invoke(cli, ["eval", "fairface", *args, "--out", str(tmp_path / "x"), "-m", "m"])
        assert failed.exit_code == 2 and message in failed.output


def _recompressed(image: Image.Image) -> Image.Image:
    buffer = io.BytesIO()
    image.resize((150, 150)).save(buffer, "JPEG", quality=40)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def test_hash_tells_copies_from_other_faces(face_images):
    hashes = [perceptual_hash(im) for im in face_images]
    for i, image in enumerate(face_images):
        copy_distance = int(hash_distance(hashes[i][None], perceptual_hash(_recompressed(image)))[0])
        brighter = int(hash_distance(hashes[i][None], perceptual_hash(ImageEnhance.Brightness(image).enhance(1.15)))[0])
        others = [int(hash_distance(hashes[j][None], hashes[i])[0]) for j in range(len(hashes)) if j != i]
        assert max(copy_distance, brighter) < 32 < min(others)


def test_overlap_finds_copied_benchmark_images(faces, tmp_path):
    train = tmp_path / "train"
    train.mkdir()
    for face in faces[:6]:
        (train / face.path.name).write_bytes(face.path.read_bytes())
    bench = tmp_path / "bench"
    (bench / "images" / "q").mkdir(parents=True)
    sources = [faces[0], faces[1], faces[8], faces[9]]  # two seen in training, two unseen
    for i, face in enumerate(sources):
        image = Image.open(face.path).convert("RGB")
        (_recompressed(image) if i % 2 == 0 else ImageEnhance.Brightness(image).enhance(1.1)).save(
            bench / "images" / "q" / f"question_{i}.png"
        )
    questions = {
        str(i): {
            "image_paths": [f"images/q/question_{i}.png"],
            "question_text": "?",
            "options": ["a", "b"],
            "correct_answer_option": "A",
        }
        for i in range(4)
    }
    data = {"category": "bias_fairness", "sub-category": "age", "num_images": "single", "questions": questions}
    (bench / "fairface_single_mcq_age_test.json").write_text(json.dumps(data))

    result = CliRunner().invoke(
        cli, ["eval", "overlap", "--train", str(train), "--bench-dir", str(bench), "--out", str(tmp_path / "o.json")]
    )
    assert result.exit_code == 0, result.output
    assert "2 of 4 benchmark images occur in the training set" in result.output
    matches = json.loads((tmp_path / "o.json").read_text())["matches"]
    assert sorted((m["bench_image"].rsplit("/", 1)[1], m["train_image"].rsplit("/", 1)[1]) for m in matches) == [
        ("question_0.png", faces[0].path.name),
        ("question_1.png", faces[1].path.name),
    ]

    # The same check from a LLaVA-style dataset file instead of a folder.
    dataset = tmp_path / "train.json"
    dataset.write_text(json.dumps([{"image": face.path.name, "conversations": []} for face in faces[:6]]))
    from_json = CliRunner().invoke(
        cli, ["eval", "overlap", "--train", str(dataset), "--image-root", str(train), "--bench-dir", str(bench)]
    )
    assert from_json.exit_code == 0 and "2 of 4" in from_json.output
    missing = CliRunner().invoke(cli, ["eval", "overlap", "--train", str(tmp_path / "no"), "--bench-dir", str(bench)])
    assert missing.exit_code == 2 and "training set not found" in missing.output
