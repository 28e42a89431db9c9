"""Dataset sources and prompt specs."""

from __future__ import annotations

import json
import shutil

import pytest

from facellm.data.sources import age_group, load_source
from facellm.errors import InputError
from facellm.prompts import DEFAULT_PROMPTS, load_prompts, person_word
from facellm.samples import SAMPLE_DIR
from tests.conftest import SHARED

FAIRFACE = SHARED / "data" / "fairface"


def test_fairface_source_normalises_labels():
    records = load_source("fairface", SAMPLE_DIR, SAMPLE_DIR / "labels.csv")
    assert len(records) == 12 and all(r.path.is_file() for r in records)
    latino = next(r for r in records if r.image == "val_2379.jpg")
    assert latino.known == {"age": "0-2", "gender": "Female", "race": "Latino/Hispanic"}


@pytest.mark.skipif(not FAIRFACE.is_dir(), reason="../shared/data/fairface is not present")
def test_fairface_official_csv():
    records = load_source(
        "fairface", FAIRFACE / "fairface_img_margin025", FAIRFACE / "fairface_label_val.csv", limit=50
    )
    assert len(records) == 50 and records[0].image == "val/1.jpg" and records[0].path.is_file()


def test_utkface_celeba_manifest_and_folder(tmp_path, faces):
    utk = tmp_path / "utk"
    utk.mkdir()
    shutil.copy(faces[0].path, utk / "25_0_2_20170116174525125.jpg")
    shutil.copy(faces[1].path, utk / "72_1_4_20170116174525125.jpg")
    shutil.copy(faces[2].path, utk / "not-a-utk-name.jpg")
    records = load_source("utkface", utk)
    assert [r.known for r in records] == [
        {"age": "20-29", "gender": "Male", "race": "Asian"},
        {"age": "more than 70", "gender": "Female"},
    ]

    attrs = tmp_path / "list_attr_celeba.txt"
    attrs.write_text("2\nEyeglasses Male Smiling No_Beard\n000001.jpg 1 -1 1 1\n000002.jpg -1 1 -1 -1\n")
    celeba = load_source("celeba", tmp_path, attrs)
    assert celeba[0].known == {"gender": "Female", "traits": "eyeglasses, smiling"}
    assert celeba[1].known == {"gender": "Male"}

    manifest = tmp_path / "faces.jsonl"
    manifest.write_text(json.dumps({"image": "a.jpg", "age": 34, "race": "latino_hispanic", "glasses": "yes"}) + "\n")
    assert load_source("manifest", tmp_path, manifest)[0].known == {
        "age": "30-39",
        "race": "Latino/Hispanic",
        "glasses": "yes",
    }
    csv_manifest = tmp_path / "faces.csv"
    csv_manifest.write_text("file,gender,mood\nb.jpg,woman,calm\n")
    assert load_source("manifest", tmp_path, csv_manifest)[0].known == {"gender": "Female", "mood": "calm"}

    folder = load_source("folder", utk)
    assert len(folder) == 3 and all(r.known == {} for r in folder)


def test_source_errors(tmp_path):
    bad = tmp_path / "labels.csv"
    bad.write_text("file,age\nx.jpg,20-29\n")
    with pytest.raises(InputError, match=r"lacks column\(s\) gender, race"):
        load_source("fairface", tmp_path, bad)
    with pytest.raises(InputError, match="needs a label file"):
        load_source("fairface", tmp_path)
    with pytest.raises(InputError, match="image folder not found"):
        load_source("folder", tmp_path / "nope")
    with pytest.raises(InputError, match="no images"):
        load_source("folder", tmp_path)
    with pytest.raises(InputError, match="no UTKFace-named images"):
        load_source("utkface", tmp_path)


def test_age_groups():
    assert [age_group(a) for a in (0, 2, 3, 9, 10, 29, 30, 69, 70, 95)] == [
        "0-2",
        "0-2",
        "3-9",
        "3-9",
        "10-19",
        "20-29",
        "30-39",
        "60-69",
        "more than 70",
        "more than 70",
    ]


def test_prompts_are_attribute_aware_but_questions_are_label_free():
    spec = load_prompts()
    assert spec.version == "fairfacegpt-v1" and len(spec.aspects) == 8
    known = {"age": "3-9", "gender": "Female", "race": "Southeast Asian"}
    prompt = spec.user_prompt("pose", known)
    assert "girl" in prompt and "Southeast Asian" in prompt and "3-9" in prompt and "face pose" in prompt
    for aspect in spec.aspects.values():
        for label in ("girl", "Female", "Southeast", "3-9"):
            assert label not in aspect.stored_question
    assert spec.aspects["detail"].stored_question == "Describe this image."
    assert spec.aspects["skin_texture"].stored_question == (
        "Describe the skin texture of the image based on the visual information."
    )
    assert "seven FairFace groups" in spec.system
    assert spec.user_prompt("pose", {}).startswith("Using this")  # no labels: no known-facts sentence
    per_image = spec.per_image_prompt(known, {"pose_label": "frontal", "yaw": 3.0})
    assert '"demographics"' in per_image and "head pose frontal (yaw 3°)" in per_image


def test_person_words():
    assert person_word({"gender": "Male", "age": "0-2"}) == "boy"
    assert person_word({"gender": "Female", "age": "10-19"}) == "woman"
    assert person_word({"gender": "Male", "age": "30-39"}) == "man"
    assert person_word({}) == "person"


def test_custom_prompt_file(tmp_path):
    custom = tmp_path / "mine.yaml"
    custom.write_text(DEFAULT_PROMPTS.read_text().replace("version: fairfacegpt-v1", "version: mine-2"))
    assert load_prompts(custom).version == "mine-2"
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: x\nsystem: hi\n")
    with pytest.raises(InputError, match="malformed prompt file"):
        load_prompts(broken)
    with pytest.raises(InputError, match="prompt file not found"):
        load_prompts(tmp_path / "none.yaml")
