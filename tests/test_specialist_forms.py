"""The specialist on several images at once: FaceXBench's multi-image age and gender forms on labelled FairFace
faces (truth written here from the labels, not by the reader), and free questions through `ask` and the server."""

from __future__ import annotations

import csv
import json
import random

import pytest
from click.testing import CliRunner

from facellm.cli import cli
from facellm.images import read_image
from facellm.labels import FAIRFACE_AGES
from facellm.specialist import answer
from tests.conftest import SHARED

FAIRFACE = SHARED / "data" / "fairface"
BENCHMARK = SHARED / "facexbench" / "benchmark"


def _val_faces() -> list[dict]:
    with open(FAIRFACE / "fairface_label_val.csv", newline="") as f:
        return list(csv.DictReader(f))[2300:2500]  # val images: the attribute model trained on train only


def _prompt(question: str, options: list[str]) -> str:
    return question + "\n" + "".join(f"({k}) {o}\n" for k, o in zip("ABCD", options))


def _image_set(numbers: list[int]) -> str:
    return ", ".join(f"Image {k}" for k in numbers)


@pytest.mark.slow
@pytest.mark.skipif(not FAIRFACE.is_dir(), reason="../shared/data/fairface is not present")
def test_multi_image_gender_and_age_forms_are_answered_well_above_chance():
    rng = random.Random(0)
    rows = _val_faces()
    right = refused = total = 0
    for number in range(36):
        form = number % 3
        if form == 2:  # "Who among these two appears to be older?" on two faces of different age groups
            a, b = rng.sample(rows, 2)
            while a["age"] == b["age"]:
                b = rng.choice(rows)
            drawn = [a, b]
            options = ["Image 1", "Image 2", "Both are of the same age group", "None of the above"]
            older = 1 if FAIRFACE_AGES.index(a["age"]) > FAIRFACE_AGES.index(b["age"]) else 2
            question, key = "Who among these two appears to be older?", f"Image {older}"
        else:
            drawn = rng.sample(rows, 3)
            female = [k for k, r in enumerate(drawn, 1) if r["gender"] == "Female"]
            if form == 0:
                question, key = "How many images show female individuals?", str(len(female))
                options = ["0", "1", "2", "3"]
            else:
                question = "Which images depict female individuals?"
                key = _image_set(female) if female else "None of the above"
                others = [_image_set(s) for s in ([1], [2], [3], [1, 2], [2, 3], [1, 3], [1, 2, 3]) if s != female]
                options = [key, *rng.sample(others, 3)]
                rng.shuffle(options)
        reply = answer(
            [read_image(FAIRFACE / "fairface_img_margin025" / r["file"]) for r in drawn], _prompt(question, options)
        )
        total += 1
        refused += reply.startswith("cannot measure")
        right += reply.startswith("ABCD"[options.index(key)] + ".")
    assert refused == 0
    assert right / total >= 0.6, right  # chance: about 30%


@pytest.mark.skipif(not FAIRFACE.is_dir(), reason="../shared/data/fairface is not present")
def test_free_multi_image_questions_through_ask_and_the_server(tmp_path):
    from openai import OpenAI

    from facellm.backends.openai_client import image_data_url
    from facellm.backends.specialist import SpecialistBackend
    from facellm.serve.app import create_app
    from facellm.serve.engine import Engine
    from facellm.testing.server import BackgroundServer

    rows = _val_faces()
    child = next(r for r in rows if r["age"] == "3-9")
    elder = next(r for r in rows if r["age"] in ("60-69", "more than 70"))
    paths = [FAIRFACE / "fairface_img_margin025" / r["file"] for r in (child, elder)]
    asked = CliRunner().invoke(
        cli,
        ["ask", *map(str, paths), "-m", "specialist", "-q", "Is the person in the second photo older than the first?"],
    )
    assert asked.exit_code == 0, asked.output
    assert asked.stdout.strip().startswith("Yes"), asked.stdout
    same = CliRunner().invoke(cli, ["ask", str(paths[0]), str(paths[0]), "-m", "specialist", "-q", "Same individual?"])
    assert same.exit_code == 0 and "Same person" in same.stdout, same.output
    with BackgroundServer(create_app(Engine(SpecialistBackend()))) as running:
        client = OpenAI(base_url=running.url + "/v1", api_key="x", max_retries=0)
        content = [
            *({"type": "image_url", "image_url": {"url": image_data_url(read_image(p))}} for p in paths),
            {"type": "text", "text": "Is the person in the first picture older than the second one?"},
        ]
        reply = client.chat.completions.create(model="specialist", messages=[{"role": "user", "content": content}])
        assert reply.choices[0].message.content.startswith("No"), reply.choices[0].message.content


@pytest.mark.slow
@pytest.mark.skipif(not BENCHMARK.is_dir(), reason="needs ../shared/facexbench")
def test_no_real_multi_image_attribute_question_is_refused_as_not_understood(face_images):
    """Every multi-image age, gender and race form of the real files, on three real faces: an answer, not a refusal."""
    forms = {}
    for path in sorted(BENCHMARK.glob("*_multiple_mcq_*_test.json")):
        for q in json.loads(path.read_text(encoding="utf-8"))["questions"].values():
            forms.setdefault((q["question_text"], len(q["image_paths"])), [str(o) for o in q["options"]])
    for (question, n), options in list(forms.items())[::4]:
        reply = answer(face_images[:n], _prompt(question, options))
        assert reply[:2] in ("A.", "B.", "C.", "D."), (question, reply)
        chosen = options["ABCD".index(reply[0])]
        assert _deepest_parenthesis(reply.removeprefix(f"{reply[0]}. {chosen}")) <= 1, reply  # never "(a (b))"


def _deepest_parenthesis(text: str) -> int:
    depth = deepest = 0
    for character in text:
        depth += {"(": 1, ")": -1}.get(character, 0)
        deepest = max(deepest, depth)
    return deepest


@pytest.mark.slow
def test_the_fairfacegpt_aspect_questions_get_measured_descriptions(face_images):
    """The web page's 8 aspect buttons ask FairFaceGPT's stored questions: each is answered from measurements (and
    says what the models do not measure), never "cannot measure" for a face they can see."""
    from facellm.prompts import load_prompts

    expected = {
        "demographics": "gender",
        "facial_structure": "px",
        "skin_texture": "not measured",
        "expression": "expression",
        "lighting_quality": "brightness",
        "pose": "yaw",
        "forensic": "face(s) found",
        "detail": "Apparent age",
    }
    for key, aspect in load_prompts().aspects.items():
        reply = answer([face_images[0]], aspect.stored_question)
        assert reply.endswith("(specialist measurement: face-analysis models, not a language model)"), reply
        assert expected[key] in reply, (key, reply)
