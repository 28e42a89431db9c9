"""The OpenAI-compatible server on a free loopback port with the tiny checkpoint, driven by the official client."""

from __future__ import annotations

import base64
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI
from PIL import Image

from facellm.backends.local import LocalBackend
from facellm.backends.offline import OfflineBackend
from facellm.backends.openai_client import image_data_url
from facellm.serve.app import create_app
from facellm.serve.engine import Engine
from facellm.serve.requests import Limits
from facellm.testing.mock_openai import MockOpenAIServer
from facellm.testing.server import BackgroundServer

KEY = "serve-test-key-123"


@pytest.fixture(scope="module")
def server(tiny_lm):
    engine = Engine(LocalBackend(tiny_lm), max_batch=8)
    with BackgroundServer(create_app(engine, Limits(max_body_bytes=2_000_000))) as running:
        running.engine = engine
        yield running


@pytest.fixture(scope="module")
def client(server):
    return OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


def _messages(image, text):
    return [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": image_data_url(image)}},
                {"type": "text", "text": text},
            ],
        }
    ]


def test_answers_plain_and_streamed(client, face_images, tiny_lm):
    messages = _messages(face_images[0], "Describe this face.")
    plain = client.chat.completions.create(model="facellm", messages=messages, max_tokens=12)
    assert plain.choices[0].message.content and plain.usage.prompt_tokens > 16
    assert plain.choices[0].finish_reason in ("stop", "length")
    pieces = list(client.chat.completions.create(model="facellm", messages=messages, max_tokens=12, stream=True))
    streamed = "".join(p.choices[0].delta.content or "" for p in pieces)
    assert len(pieces) > 3 and streamed.strip() == plain.choices[0].message.content
    assert pieces[-1].choices[0].finish_reason in ("stop", "length")
    listed = client.models.list().data[0]  # a short id; the full name (path, adapter, merge record) is its root
    assert listed.id == Path(tiny_lm.name).name and listed.root == f"hf:{tiny_lm.name}" and "tiny-model" in tiny_lm.name
    assert plain.model == listed.id and " " not in listed.id


@pytest.mark.slow
def test_32_concurrent_requests_batch_and_match_one_at_a_time(server, client, face_images):
    questions = [(face_images[i % len(face_images)], f"Question {i}: describe the face.") for i in range(32)]

    def ask(item):
        image, text = item
        reply = client.chat.completions.create(model="facellm", messages=_messages(image, text), max_tokens=8)
        return reply.choices[0].message.content

    server.engine.batches.clear()
    with ThreadPoolExecutor(max_workers=32) as pool:
        concurrent = list(pool.map(ask, questions))
    assert len(concurrent) == 32 and all(concurrent)
    assert max(server.engine.batches) > 1  # requests really were generated together
    one_at_a_time = [ask(item) for item in questions[:6]]
    assert concurrent[:6] == one_at_a_time


def test_stop_sequences(client, face_images):
    messages = _messages(face_images[1], "Describe this face.")
    full = client.chat.completions.create(model="facellm", messages=messages, max_tokens=16).choices[0].message.content
    stop = full.strip()[3:5]
    cut = client.chat.completions.create(model="facellm", messages=messages, max_tokens=16, stop=[stop])
    assert stop not in cut.choices[0].message.content and cut.choices[0].finish_reason == "stop"


def _post(server, body, headers=None, raw=None):
    return httpx.post(
        server.url + "/v1/chat/completions", json=None if raw else body, content=raw, headers=headers or {}, timeout=30
    )


def test_refusals_use_openai_error_bodies(server, face_images):
    good = image_data_url(face_images[0])

    def with_image(url: str, *parts: dict) -> dict:
        return {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}, *parts]}]}

    not_png = "data:image/png;base64," + base64.b64encode(b"not a png").decode()
    cases = [
        (with_image("file:///etc/passwd", {"type": "text", "text": "hi"}), 400, "file URLs are not accepted"),
        (with_image("http://127.0.0.1:9/secret.png"), 400, "remote image URLs are disabled"),
        (with_image("data:image/png;base64,@@@notbase64"), 400, "messages[0].content[0]: corrupt base64 image data"),
        (with_image(not_png), 400, "messages[0].content[0]: not an image file"),
        ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 100000}, 400, "max_tokens"),
        ({"messages": []}, 400, "non-empty"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": good}}] * 9}]},
            400,
            "more than 8 images",
        ),
    ]
    for body, status, message in cases:
        response = _post(server, body)
        assert response.status_code == status, (message, response.text)
        assert message in response.json()["error"]["message"]
    malformed = _post(server, None, raw=b"{not json", headers={"content-type": "application/json"})
    assert malformed.status_code == 400 and "not valid JSON" in malformed.json()["error"]["message"]
    too_big = _post(server, None, raw=b"x" * 2_100_000, headers={"content-type": "application/json"})
    assert too_big.status_code == 413


@pytest.mark.slow
def test_faces_endpoint_measures_every_face(server, face_images):
    group = Image.new("RGB", (224 * 3, 260), (128, 128, 128))
    for i in range(3):
        group.paste(face_images[i + 3], (224 * i, 18))
    measured = httpx.post(server.url + "/v1/faces", json={"image": image_data_url(group)}, timeout=60).json()
    assert measured["face_count"] == 3 and sorted(round(f["box"]["left"] / 224) for f in measured["faces"]) == [0, 1, 2]
    face = measured["faces"][0]
    assert face["pose"]["label"] and face["quality"]["face_width"] > 50
    assert set(face["attributes"]) == {"age", "gender", "race", "expression"}
    assert abs(sum(face["attributes"]["race"].values()) - 1) < 0.01
    empty = httpx.post(server.url + "/v1/faces", json={"image": image_data_url(Image.new("RGB", (200, 200)))}).json()
    assert empty["face_count"] == 0 and empty["faces"] == []
    corrupt = httpx.post(server.url + "/v1/faces", json={"image": "data:image/png;base64,@@"})
    assert corrupt.status_code == 400 and corrupt.json()["error"]["message"] == "image: corrupt base64 image data"
    local = httpx.post(server.url + "/v1/faces", json={"image": "file:///etc/passwd"})
    assert local.status_code == 400 and "not accepted" in local.json()["error"]["message"]
    misnamed = httpx.post(server.url + "/v1/faces", json={"img": 1})
    assert misnamed.status_code == 400 and 'needs "image"' in misnamed.json()["error"]["message"]
    assert "its fields: img" in misnamed.json()["error"]["message"]
    text = httpx.post(server.url + "/v1/faces", json={"image": "data:image/png;base64,aGVsbG8="})
    assert text.status_code == 400 and "not an image file: the data URL's content" in text.json()["error"]["message"]


def test_remote_images_never_reach_local_addresses(tiny_lm, face_images):
    """Even with remote images allowed, a loopback URL is refused before anything is fetched."""
    with MockOpenAIServer() as target:
        url = target.base_url.replace("/v1", "/face.png")
        engine = Engine(LocalBackend(tiny_lm))
        with BackgroundServer(create_app(engine, Limits(allow_remote_images=True))) as running:
            body = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]}
            response = _post(running, body)
        assert response.status_code == 400 and "public internet addresses" in response.json()["error"]["message"]
        assert target.requests == []


def test_api_key_is_required_and_never_logged(tiny_lm, face_images, capfd):
    with BackgroundServer(create_app(Engine(LocalBackend(tiny_lm)), api_key=KEY)) as running:
        body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
        assert _post(running, body).status_code == 401
        assert _post(running, body, {"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.post(running.url + "/v1/faces", json={"image": image_data_url(face_images[0])}).status_code == 401
        with pytest.raises(openai.AuthenticationError):
            OpenAI(base_url=running.url + "/v1", api_key="wrong", max_retries=0).models.list()
        assert _post(running, body, {"Authorization": f"Bearer {KEY}"}).status_code == 200
    out, err = capfd.readouterr()
    assert KEY not in out + err


def test_queue_full_gives_429(tiny_lm):
    engine = Engine(LocalBackend(tiny_lm), max_queue=0)
    with BackgroundServer(create_app(engine)) as running:
        response = _post(running, {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})
    assert response.status_code == 429 and response.json()["error"]["type"] == "rate_limit_error"


def test_offline_backend_is_labelled():
    with BackgroundServer(create_app(Engine(OfflineBackend()))) as running:
        client = OpenAI(base_url=running.url + "/v1", api_key="x", max_retries=0)
        reply = client.chat.completions.create(model="any", messages=[{"role": "user", "content": "Age?"}])
        page = httpx.get(running.url + "/").text
        aspects = httpx.get(running.url + "/v1/aspects").json()["aspects"]
    assert reply.choices[0].message.content.startswith("[offline template answer, no model loaded]")
    assert "<title>facellm" in page and len(aspects) == 8


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
REQUIRE_BROWSER = os.environ.get("FACELLM_REQUIRE_BROWSER") == "1"


@pytest.mark.slow
@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER) and not REQUIRE_BROWSER, reason="Debian chromium not installed")
def test_web_page_in_headless_chromium(server, faces, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    options.add_argument("--window-size=1280,900")
    answered_before = len(server.engine.batches) + server.engine.streams
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(server.url + "/")
        WebDriverWait(driver, 20).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#aspects button")) == 8)
        driver.find_element(By.ID, "file").send_keys(str(faces[0].path))
        # The faces are found and boxed, the first is chosen, its crop is what will be sent, its measurements shown.
        WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#faces button.chosen"))
        assert driver.find_element(By.ID, "crop").get_attribute("src").startswith("data:image/jpeg;base64,")
        measured = driver.find_element(By.ID, "measured").text
        assert "pose:" in measured and "quality:" in measured and "estimates: age" in measured
        # A photo with three faces: three boxes; picking the third changes what the model is sent.
        group = Image.new("RGB", (224 * 3, 260), (128, 128, 128))
        for i in range(3):
            group.paste(Image.open(faces[i + 3].path).convert("RGB"), (224 * i, 18))
        group.save(tmp_path / "group.jpg")
        first_crop = driver.find_element(By.ID, "crop").get_attribute("src")
        driver.find_element(By.ID, "file").send_keys(str(tmp_path / "group.jpg"))
        WebDriverWait(driver, 60).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#faces button")) == 3)
        group_crop = driver.find_element(By.ID, "crop").get_attribute("src")
        driver.find_elements(By.CSS_SELECTOR, "#faces button")[2].click()
        assert driver.find_elements(By.CSS_SELECTOR, "#faces button")[2].get_attribute("class") == "chosen"
        third_crop = driver.find_element(By.ID, "crop").get_attribute("src")
        assert len({first_crop, group_crop, third_crop}) == 3
        assert "face 3 of 3" in driver.find_element(By.ID, "measured").text
        driver.find_element(By.ID, "question").send_keys("Describe the facial expression.")
        driver.find_element(By.ID, "send").click()
        answer = WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".answer.done"))
        assert answer[0].text.strip()
        driver.find_elements(By.CSS_SELECTOR, "#aspects button")[5].click()  # a follow-up aspect question
        WebDriverWait(driver, 60).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".answer.done")) == 2)
        assert driver.find_element(By.ID, "status").text == ""
        artifacts = tmp_path / "artifacts"
        artifacts.mkdir()
        driver.save_screenshot(str(artifacts / "web-page.png"))
        assert (artifacts / "web-page.png").stat().st_size > 10_000
        shot_dir = os.environ.get("FACELLM_ARTIFACTS")
        if shot_dir:
            shutil.copy(artifacts / "web-page.png", shot_dir)
    finally:
        driver.quit()
    # the page's two questions went through the same engine (a batch or a stream each)
    assert len(server.engine.batches) + server.engine.streams - answered_before >= 2


@pytest.mark.parametrize("streamed", [False, True])
def test_a_request_is_checked_once_and_rendered_twice(server, client, face_images, monkeypatch, streamed):
    """The server's check counts the prompt (one render); generating renders it once more for the real inputs; the
    conversation is checked once, not again when its batch is prepared."""
    import importlib

    generating, local = (importlib.import_module(f"facellm.{m}") for m in ("model.generate", "backends.local"))
    lm = server.engine.backend.lm
    checks, renders = [], []
    check, render = generating.check_conversation, lm.processor.apply_chat_template
    counted_check = lambda *a, **k: checks.append(1) or check(*a, **k)  # noqa: E731
    monkeypatch.setattr(generating, "check_conversation", counted_check)
    monkeypatch.setattr(local, "check_conversation", counted_check)
    monkeypatch.setattr(lm.processor, "apply_chat_template", lambda *a, **k: renders.append(1) or render(*a, **k))
    reply = client.chat.completions.create(
        model="facellm", messages=_messages(face_images[2], "How old?"), max_tokens=4, stream=streamed
    )
    list(reply) if streamed else reply
    assert (len(checks), len(renders)) == (1, 2)
