"""`facellm serve --upstream`: our server (page, /v1/faces, --ground, key, limits) in front of an OpenAI-compatible
engine, here the shipped mock engine on a loopback port; and what users see when that engine is down or broken."""

from __future__ import annotations

import base64
import json

import httpx
import numpy as np
import pytest
from openai import OpenAI

from facellm.backends.grounded import Grounded
from facellm.backends.openai_client import image_data_url
from facellm.backends.upstream import UpstreamBackend
from facellm.images import read_image
from facellm.serve.app import create_app
from facellm.serve.engine import Engine
from facellm.testing.mock_openai import MockOpenAIServer, describing_responder
from facellm.testing.server import BackgroundServer, ServerProcess, free_port

KEY = "front-door-key"


def _question(image, text="Describe this face."):
    return [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": image_data_url(image)}},
                {"type": "text", "text": text},
            ],
        }
    ]


@pytest.mark.slow
def test_answers_plain_and_streamed_through_the_upstream(face_images):
    with MockOpenAIServer(responder=describing_responder) as engine:
        backend = UpstreamBackend(engine.base_url)
        with BackgroundServer(create_app(Engine(backend), api_key=KEY)) as front:
            client = OpenAI(base_url=front.url + "/v1", api_key=KEY, max_retries=0)
            assert client.models.list().data[0].id == "mock-vlm"  # resolved from the upstream's /models
            plain = client.chat.completions.create(model="x", messages=_question(face_images[0]), max_tokens=40)
            pieces = list(
                client.chat.completions.create(
                    model="x", messages=_question(face_images[0]), max_tokens=40, stream=True
                )
            )
            faces = httpx.post(
                front.url + "/v1/faces",
                json={"image": image_data_url(face_images[0])},
                headers={"Authorization": f"Bearer {KEY}"},
                timeout=60,
            ).json()
            unauthorised = httpx.post(front.url + "/v1/chat/completions", json={"messages": _question(face_images[0])})
        sent = engine.requests
    answer = plain.choices[0].message.content
    assert answer and answer == describing_responder(sent[0]["messages"])
    assert "".join(p.choices[0].delta.content or "" for p in pieces) == answer and len(pieces) > 3
    assert sent[0]["model"] == "mock-vlm" and sent[0]["max_tokens"] == 40 and sent[1]["stream"] is True
    forwarded = sent[0]["messages"][0]["content"][0]["image_url"]["url"]  # the very pixels the client sent
    assert np.array_equal(
        np.asarray(read_image(base64.b64decode(forwarded.split(",", 1)[1]))), np.asarray(face_images[0])
    )
    assert faces["face_count"] == 1  # measured here, not by the upstream
    assert unauthorised.status_code == 401 and len(sent) == 2  # the key is checked before anything goes upstream


@pytest.mark.slow
def test_grounding_reaches_the_upstream_measured_once_per_request(face_images, monkeypatch):
    import facellm.specialist

    analysed, analyze = [], facellm.specialist.analyze_image
    monkeypatch.setattr(facellm.specialist, "analyze_image", lambda *a, **k: analysed.append(a) or analyze(*a, **k))
    with MockOpenAIServer(responder=describing_responder) as engine:
        backend = Grounded(UpstreamBackend(engine.base_url, "named-model"))
        with BackgroundServer(create_app(Engine(backend))) as front:
            reply = httpx.post(
                front.url + "/v1/chat/completions", json={"messages": _question(face_images[0])}, timeout=60
            )
            after_plain = len(analysed)
            streamed = httpx.post(
                front.url + "/v1/chat/completions",
                timeout=60,
                json={"messages": _question(face_images[1]), "stream": True},
            )
        sent = engine.requests
    assert reply.status_code == 200 and streamed.status_code == 200 and sent[0]["model"] == "named-model"
    text = sent[0]["messages"][0]["content"][1]["text"]
    assert text.startswith("[measured facts from face-analysis models]") and text.endswith("Describe this face.")
    assert sent[1]["messages"][0]["content"][1]["text"].startswith("[measured facts from face-analysis models]")
    # One analysis per request: the facts counted in the prompt's tokens are the facts the model is sent.
    assert after_plain == 1 and len(analysed) == 2


@pytest.mark.parametrize(
    "fault, status, message",
    [
        (500, 502, "the upstream answered HTTP 500"),
        ("garbage", 502, "did not answer JSON"),
        (400, 400, "the upstream refused the request: injected fault 400"),
    ],
)
def test_a_broken_upstream_fails_the_request_alone(face_images, fault, status, message):
    with MockOpenAIServer(responder=describing_responder, faults=[fault]) as engine:
        with BackgroundServer(create_app(Engine(UpstreamBackend(engine.base_url, "m")))) as front:
            first = httpx.post(
                front.url + "/v1/chat/completions", json={"messages": _question(face_images[0])}, timeout=60
            )
            second = httpx.post(
                front.url + "/v1/chat/completions", json={"messages": _question(face_images[1])}, timeout=60
            )
            health = httpx.get(front.url + "/health")
    assert first.status_code == status and message in first.json()["error"]["message"]
    assert first.json()["error"]["type"] == "upstream_error"
    assert second.status_code == 200 and health.status_code == 200


def test_upstream_down_answers_503_and_the_server_stays_up(face_images):
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    with BackgroundServer(create_app(Engine(UpstreamBackend(dead)))) as front:
        plain = httpx.post(front.url + "/v1/chat/completions", json={"messages": _question(face_images[0])}, timeout=60)
        streamed = httpx.post(
            front.url + "/v1/chat/completions", timeout=60, json={"messages": _question(face_images[0]), "stream": True}
        )
        page = httpx.get(front.url + "/")
        faces = httpx.post(front.url + "/v1/faces", json={"image": image_data_url(face_images[0])}, timeout=60)
        health = httpx.get(front.url + "/health")
    assert plain.status_code == 503 and "cannot be reached" in plain.json()["error"]["message"]
    events = [json.loads(line[6:]) for line in streamed.text.splitlines() if line.startswith("data: {")]
    assert events[-1]["error"]["code"] is None and "cannot be reached" in events[-1]["error"]["message"]
    assert page.status_code == 200 and faces.status_code == 200 and health.status_code == 200


@pytest.mark.slow
def test_serve_upstream_through_the_cli(face_images):
    with MockOpenAIServer(responder=describing_responder) as engine:
        with ServerProcess("--upstream", engine.base_url, "--upstream-model", "mock-vlm") as front:
            reply = httpx.post(
                front.url + "/v1/chat/completions", json={"messages": _question(face_images[0])}, timeout=60
            )
            models = httpx.get(front.url + "/v1/models").json()
    assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"]
    assert models["data"][0]["id"] == "mock-vlm"
