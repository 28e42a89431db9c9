"""The shipped FairFace attribute predictors, on faces they were not trained on."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from facellm.cli import cli
from facellm.faces import attributes, attributes_training
from facellm.images import read_image
from facellm.labels import FAIRFACE_VOCAB, normalise
from tests.conftest import SHARED

FAIRFACE = SHARED / "data" / "fairface"


@pytest.mark.slow
def test_predictions_are_probabilities_over_fairface_classes(face_images):
    prediction = attributes.predict(face_images[0])
    for name, probs in vars(prediction).items():
        assert list(probs) == list(FAIRFACE_VOCAB[name])
        assert abs(sum(probs.values()) - 1) < 1e-3 and all(0 <= p <= 1 for p in probs.values())


@pytest.mark.slow
@pytest.mark.skipif(not FAIRFACE.is_dir(), reason="../shared/data/fairface is not present")
def test_held_out_accuracy_well_above_chance():
    # FairFace val 2001-2300: the weights never saw a val image (they are trained on the train split).
    with open(FAIRFACE / "fairface_label_val.csv", newline="") as f:
        rows = list(csv.DictReader(f))[2000:2300]
    inputs, kept = attributes_training.extract(
        [FAIRFACE / "fairface_img_margin025" / r["file"] for r in rows], workers=2
    )
    assert len(kept) == len(rows)
    probs = attributes.probabilities(attributes.shipped_model(), inputs)
    for name, chance, floor in (("gender", 0.5, 0.86), ("race", 1 / 7, 0.58), ("age", 1 / 9, 0.48)):
        truth = [FAIRFACE_VOCAB[name].index(normalise(name, r[name])) for r in rows]
        accuracy = float(np.mean(probs[name].argmax(axis=1) == np.array(truth)))
        assert accuracy >= floor > chance, (name, accuracy)


@pytest.mark.slow
@pytest.mark.skipif(not FAIRFACE.is_dir(), reason="../shared/data/fairface is not present")
def test_train_attributes_command_writes_weights_and_card(tmp_path):
    out = tmp_path / "attributes.pt"
    command = [
        "faces",
        "train-attributes",
        "--fairface",
        str(FAIRFACE),
        "--train-limit",
        "48",
        "--val-limit",
        "16",
        "--epochs",
        "1",
        "--out",
        str(out),
        "--workers",
        "1",
    ]
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 0, result.output
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["accuracy"]["race"]["n"] == 16 and "48 readable images" in card["training_data"]
    face = attributes.features(read_image(FAIRFACE / "fairface_img_margin025" / "val" / "1.jpg"))
    probs = attributes.probabilities(attributes.load_model(out), face)
    assert probs["age"].shape == (1, 9)
    missing = CliRunner().invoke(cli, ["faces", "train-attributes", "--fairface", str(tmp_path)])
    assert missing.exit_code == 2 and "fairface_label_train.csv not found" in missing.output


def test_network_starts_as_dlibs_descriptor_split_at_the_frozen_levels(face_images):
    # Before fine-tuning, the frozen trunk followed by the network's own copy of the later levels is dlib's network:
    # pooled and mapped by dlib's final matrix, it gives the face descriptor. The shipped file holds only those later
    # levels and the heads.
    import torch

    from facellm.faces.descriptor_net import describe_chips, descriptor_network

    face = attributes.features(face_images[0])
    net = attributes.build_network()
    with torch.inference_mode():
        rebuilt = (net.pooled(attributes.trunk(face)) @ descriptor_network().fc).double().numpy()[0]
    assert np.abs(rebuilt - describe_chips([face.chip])[0]).max() < 2e-3
    shipped = torch.load(attributes.WEIGHTS, weights_only=True)
    assert {k.split(".")[0] for k in shipped} == {"levels", "heads"}
    assert len({k.split(".")[1] for k in shipped if k.startswith("levels")}) == len(net.levels)


def test_model_card_is_shipped():
    card = json.loads(attributes.WEIGHTS.with_suffix(".json").read_text())
    assert card["accuracy"]["gender"]["accuracy"] > 80 and "per_race" in card["accuracy"]["race"]
    assert "licence" in card and "intended_use" in card and "known_biases" in card


def test_analyze_with_attributes(faces):
    result = CliRunner().invoke(cli, ["analyze", str(faces[1].path), "--attributes", "--json"])
    assert result.exit_code == 0, result.output
    face = json.loads(result.stdout)["faces"][0]
    assert set(face["attributes"]) == {"age", "gender", "race", "expression"}
    table = CliRunner().invoke(cli, ["analyze", str(faces[1].path), "--attributes"])
    assert "attributes: age" in table.stdout


def test_analysis_with_attributes_predicts_landmarks_once_and_runs_the_trunk_once_per_face(face_images, monkeypatch):
    """The landmarks measured for pose also align the attribute chip, and a face and its mirror image go through
    dlib's trunk in one pass; the probabilities equal those of the stand-alone predictor on the same box."""
    import facellm.faces.embed
    import facellm.faces.geometry
    from facellm.faces import analyze_image, face_attributes

    group = face_images[0]
    alone = [face_attributes(group, face.box) for face in analyze_image(group).faces]
    predicted, trunks = [], []
    predictor, trunk = facellm.faces.geometry.landmark_predictor, attributes.trunk

    def counted_predictor(points=None):
        predicted.append(points)
        return predictor(points)

    monkeypatch.setattr(facellm.faces.geometry, "landmark_predictor", counted_predictor)
    monkeypatch.setattr(facellm.faces.embed, "landmark_predictor", counted_predictor)
    monkeypatch.setattr(attributes, "trunk", lambda *a, **k: trunks.append(a) or trunk(*a, **k))
    analysis = analyze_image(group, with_attributes=True)
    assert analysis.face_count >= 1
    assert len(predicted) == analysis.face_count and len(trunks) == analysis.face_count
    for face, expected in zip(analysis.faces, alone):
        for name in ("age", "gender", "race"):
            assert face.attributes[name] == pytest.approx(expected[name], abs=2e-4)


FER = SHARED / "data" / "fer2013"


def test_expression_probabilities(face_images):
    from facellm.faces.expression import EXPRESSIONS
    from facellm.faces.expression import predict as predict_expression

    probs = predict_expression(face_images[0])
    assert list(probs) == list(EXPRESSIONS) and abs(sum(probs.values()) - 1) < 1e-3


@pytest.mark.slow
@pytest.mark.skipif(not FER.is_dir(), reason="../shared/data/fer2013 is not present")
def test_expression_accuracy_on_fer_public_test_subset():
    from facellm.faces.expression import EXPRESSIONS
    from facellm.faces.expression import predict as predict_expression

    with open(FER / "labels.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["usage"] == "PublicTest"][::12]  # ~300 images, all classes
    right = sum(max((p := predict_expression(read_image(FER / r["path"]))), key=p.get) == r["expression"] for r in rows)
    assert right / len(rows) >= 0.5 > 1 / len(EXPRESSIONS)
    card = json.loads(
        Path(__file__).resolve().parents[1].joinpath("src/facellm/faces/weights/fer2013-expression-v1.json").read_text()
    )
    assert card["public_test_accuracy"] > 50


@pytest.mark.slow
def test_a_question_s_faces_read_in_one_pass_match_each_face_read_alone(face_images):
    from facellm.specialist import measure

    images = [face_images[0], face_images[1].transpose(0), face_images[2]]  # the middle one mirrored
    together = measure.attributes_of(images)
    for image, batched in zip(images, together, strict=True):
        alone = measure.attributes(image)
        for name in ("age", "gender", "race"):
            assert batched[name] == pytest.approx(alone[name], abs=2e-4)
    assert together[0]["race"] != together[2]["race"]
