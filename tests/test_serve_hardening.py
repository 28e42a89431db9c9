"""The server against a hostile client: valid requests never fail together, bad ones fail alone with a 400 (or an
SSE error event), streams that are dropped stop generating, remote images only reach checked public addresses.
Real server on a loopback port with the tiny checkpoint."""

from __future__ import annotations

import http.server
import io
import ipaddress
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from PIL import Image

from facellm.backends.local import LocalBackend
from facellm.backends.openai_client import image_data_url
from facellm.serve import requests as serve_requests
from facellm.serve.app import create_app
from facellm.serve.engine import Engine
from facellm.serve.requests import Limits, is_public
from facellm.testing.server import BackgroundServer

BOOM = "PLEASE-FAIL-THIS-ONE"
PANIC = "PLEASE-PANIC-NOW"


class Panic(BaseException):
    """What a Rust panic inside a tokenizer looks like from Python (pyo3's PanicException is a BaseException)."""


class FailsOnMarker(LocalBackend):
    """The tiny model, except that any prompt holding BOOM makes the whole batch raise (as a model error inside a
    batch would)."""

    def answer(self, prompts, settings):
        if any(PANIC in turn.text for p in prompts for turn in p.turns):
            raise Panic("simulated tokenizer panic")
        if any(BOOM in turn.text for p in prompts for turn in p.turns):
            raise RuntimeError("simulated model failure")
        return super().answer(prompts, settings)

    streamed_pieces = 0  # pieces every stream has produced, to see a dropped stream stop

    def stream(self, prompt, settings, cancel=None):
        if any(BOOM in turn.text for turn in prompt.turns):
            raise RuntimeError("simulated model failure")
        for piece in super().stream(prompt, settings, cancel):
            self.streamed_pieces += 1
            yield piece


@pytest.fixture(scope="module")
def server(tiny_lm):
    engine = Engine(FailsOnMarker(tiny_lm), max_batch=16, max_gather_s=0.2)
    with BackgroundServer(create_app(engine, Limits(max_body_bytes=3_000_000))) as running:
        running.engine = engine
        yield running


def _user(*parts) -> dict:
    return {"messages": [{"role": "user", "content": list(parts)}], "max_tokens": 6}


def _image(image) -> dict:
    return {"type": "image_url", "image_url": {"url": image_data_url(image)}}


def _text(text: str) -> dict:
    return {"type": "text", "text": text}


def _post(server, body=None, raw: bytes | None = None, timeout: float = 60) -> httpx.Response:
    if raw is None:
        raw = json.dumps(body).encode()
    return httpx.post(
        server.url + "/v1/chat/completions", content=raw, timeout=timeout, headers={"content-type": "application/json"}
    )


@pytest.mark.slow
def test_concurrent_text_and_image_requests_are_all_answered(server, face_images):
    """50 at once, half with an image, same decoding settings: every one 200, with real batches formed."""
    bodies = [
        _user(_image(face_images[i % 6]), _text(f"Face {i}?")) if i % 2 else _user(_text(f"Hello {i}"))
        for i in range(50)
    ]
    server.engine.batches.clear()
    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(lambda b: _post(server, b), bodies))
    assert [r.status_code for r in responses] == [200] * 50, [r.text for r in responses if r.status_code != 200]
    assert all(r.json()["choices"][0]["message"]["content"] for r in responses)
    assert max(server.engine.batches) > 1


@pytest.mark.slow
def test_a_failing_request_fails_alone(server, face_images):
    """One request that makes its batch raise: it alone gets an error body; the 19 batched with it are answered."""
    bodies = [_user(_image(face_images[i % 6]), _text(f"Face {i}?")) for i in range(19)]
    bodies.insert(7, _user(_image(face_images[0]), _text(f"{BOOM} now")))
    server.engine.batches.clear()
    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(lambda b: _post(server, b), bodies))
    statuses = [r.status_code for r in responses]
    assert statuses == [200] * 7 + [500] + [200] * 12, statuses
    assert "RuntimeError" in responses[7].json()["error"]["message"]
    assert max(server.engine.batches) > 1  # it really was batched with others
    streamed = httpx.post(server.url + "/v1/chat/completions", json={**bodies[7], "stream": True}, timeout=60)
    assert streamed.status_code == 200  # the failure comes after the 200: it must arrive as an error event
    events = [json.loads(line[6:]) for line in streamed.text.splitlines() if line.startswith("data: {")]
    assert events[-1]["error"]["type"] == "server_error" and "RuntimeError" in events[-1]["error"]["message"]


def test_a_panic_below_the_model_fails_one_request_and_the_engine_lives(server):
    panicked = _post(server, _user(_text(f"{PANIC} please")))
    assert panicked.status_code == 500 and "the model failed on this request" in panicked.json()["error"]["message"]
    assert _post(server, _user(_text("Still answering?"))).status_code == 200


def test_image_without_text_is_answered(server, face_images):
    for parts in ([_image(face_images[0])], [_image(face_images[0]), _text("")]):
        plain = _post(server, _user(*parts))
        assert plain.status_code == 200, plain.text
        streamed = httpx.post(server.url + "/v1/chat/completions", json={**_user(*parts), "stream": True}, timeout=60)
        assert streamed.status_code == 200 and streamed.text.rstrip().endswith("data: [DONE]")


BAD_BODIES = {
    "empty text, no image": (_user(_text("   ")), "neither text nor an image"),
    "seed 2**64": ({**_user(_text("hi")), "seed": 2**64}, "seed must be an integer from"),
    "image placeholder in text": (_user(_text("what is <IMG_CONTEXT> this")), "image placeholder <IMG_CONTEXT>"),
    "float seed": ({**_user(_text("hi")), "seed": 1.5}, "seed must be an integer"),
}
BAD_RAW = {
    "lone surrogate": (b'{"messages": [{"role": "user", "content": "hi \\ud800 there"}]}', "lone surrogate"),
    "100,000-deep array": (b'{"messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nests JSON too deeply"),
    "5,000-digit integer": (b'{"messages": [], "seed": ' + b"7" * 5000 + b"}", "not valid JSON"),
}


@pytest.mark.parametrize("stream", [False, True])
def test_bad_requests_get_400_plain_and_streamed(server, stream):
    cases = {name: (json.dumps({**body, "stream": stream}).encode(), why) for name, (body, why) in BAD_BODIES.items()}
    cases.update(BAD_RAW)
    for name, (raw, why) in cases.items():
        if stream and name in BAD_RAW:
            raw = raw.replace(b'{"messages"', b'{"stream": true, "messages"', 1)
        response = _post(server, raw=raw)
        assert response.status_code == 400, (name, response.status_code, response.text[:200])
        assert why in response.json()["error"]["message"], (name, response.text)
    assert httpx.get(server.url + "/health").status_code == 200


def test_bad_requests_among_good_ones_fail_alone(server, face_images):
    good = [_user(_image(face_images[i % 6]), _text(f"Face {i}?")) for i in range(12)]
    bad = [json.dumps(body).encode() for body, _ in BAD_BODIES.values()] + [raw for raw, _ in BAD_RAW.values()]
    mixed = [json.dumps(b).encode() for b in good] + bad
    with ThreadPoolExecutor(max_workers=len(mixed)) as pool:
        statuses = list(pool.map(lambda raw: _post(server, raw=raw).status_code, mixed))
    assert statuses == [200] * len(good) + [400] * len(bad)


def test_prompts_over_the_context_are_refused_before_generating(server, monkeypatch):
    backend = server.engine.backend
    tokenised, count_tokens = [], backend.prompt_tokens
    monkeypatch.setattr(backend, "prompt_tokens", lambda prompt: tokenised.append(prompt) or count_tokens(prompt))
    words = " ".join(f"w{i % 97}" for i in range(backend.context))  # well over the context in tokens
    counted = _post(server, _user(_text(words)))
    assert counted.status_code == 400 and "tokens" in counted.json()["error"]["message"]
    assert len(tokenised) == 1
    huge = _post(server, _user(_text("x" * 2_500_000)))
    assert huge.status_code == 400 and "far longer" in huge.json()["error"]["message"]
    assert len(tokenised) == 1  # refused from its length in characters: 2.5 MB never reached the tokenizer
    leaves_no_room = _post(server, {**_user(_text(" ".join(["face"] * (backend.context - 100)))), "max_tokens": 200})
    assert leaves_no_room.status_code == 400 and "max_tokens 200" in leaves_no_room.json()["error"]["message"]


def test_chunked_body_is_cut_off_at_the_limit(server):
    """A chunked body (no length given) gets its 413 as soon as the 3 MB limit is passed, while the client is
    still sending: the server never buffers the rest."""
    import select

    piece = b" " * 2**18
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as conn:
        conn.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        sent, answer = 0, b""
        while sent < 40 * 2**20 and not answer:
            try:
                conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            except OSError:  # the server closed the connection after answering
                break
            sent += len(piece)
            if select.select([conn], [], [], 0.01)[0]:
                answer = conn.recv(65536)
        answer = answer or conn.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
    assert sent < 8 * 2**20, sent  # refused after about the limit, not after the 40 MB the client had
    assert httpx.get(server.url + "/health").status_code == 200


@pytest.mark.slow
def test_dropped_stream_stops_generating(server, face_images):
    """A client that reads a few pieces of a 2,048-token stream and hangs up: the generation stops (no more pieces
    are produced) and the next request is not held up behind the abandoned one."""
    backend = server.engine.backend
    body = {**_user(_image(face_images[0]), _text("Talk for a long time.")), "max_tokens": 2048, "stream": True}
    before, started = backend.streamed_pieces, time.perf_counter()
    complete = _post(server, body)  # the tiny model never ends early: a full answer is hundreds of pieces
    full_answer, full_time = backend.streamed_pieces - before, time.perf_counter() - started
    assert complete.status_code == 200 and full_answer > 200
    before = backend.streamed_pieces
    with httpx.Client(timeout=60) as client, client.stream("POST", server.url + "/v1/chat/completions", json=body) as r:
        for count, _ in enumerate(r.iter_lines()):
            if count > 4:
                break
    started = time.perf_counter()
    after = _post(server, {**_user(_text("Still there?")), "max_tokens": 1})
    waited = time.perf_counter() - started
    produced = backend.streamed_pieces - before
    time.sleep(0.5)
    assert after.status_code == 200
    assert produced < full_answer / 4 and backend.streamed_pieces - before == produced, (produced, full_answer)
    assert waited < full_time / 4, (waited, full_time)  # not held up behind what remained of the abandoned answer


@pytest.mark.slow
def test_image_sizes_are_bounded_while_decoding(tiny_lm):
    """A 6000 x 6600 JPEG is kept at 2048 px on its longer side; the request is answered."""
    big = Image.new("RGB", (6000, 6600), (150, 110, 90))
    kept = serve_requests.load_image_url(image_data_url(big), "image", Limits())
    assert max(kept.size) == 2048 and kept.size == (1862, 2048)
    over = serve_requests.load_image_url
    with pytest.raises(serve_requests.RequestError, match="above the limit"):
        over(image_data_url(big), "image", Limits(max_pixels=10_000_000))


def test_pixels_in_flight_are_bounded(tiny_lm, face_images):
    engine = Engine(LocalBackend(tiny_lm))
    with BackgroundServer(create_app(engine, Limits(max_pixels_in_flight=100_000))) as running:
        one = _post(running, _user(_image(face_images[0]), _text("hi")))  # 224 x 224 fits
        big = Image.new("RGB", (400, 400), (90, 90, 90))
        refused = _post(running, _user(_image(big), _text("hi")))
        again = _post(running, _user(_image(face_images[1]), _text("hi")))  # the budget was given back
    assert one.status_code == 200 and again.status_code == 200
    assert refused.status_code == 429 and "pixels" in refused.json()["error"]["message"]


@pytest.mark.parametrize(
    "address, public",
    [
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
        ("100.64.0.1", False),
        ("100.100.100.200", False),
        ("169.254.169.254", False),
        ("10.1.2.3", False),
        ("127.0.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("64:ff9b::a9fe:a9fe", False),
        ("2002:7f00:1::", False),
        ("::ffff:8.8.8.8", True),
    ],
)
def test_only_public_addresses_pass(address, public):
    assert is_public(ipaddress.ip_address(address)) is public


def test_carrier_grade_nat_address_is_refused_before_any_fetch(tiny_lm):
    with BackgroundServer(create_app(Engine(LocalBackend(tiny_lm)), Limits(allow_remote_images=True))) as running:
        response = _post(running, _user({"type": "image_url", "image_url": {"url": "http://100.100.100.200/x.png"}}))
    assert response.status_code == 400 and "public internet addresses" in response.json()["error"]["message"]


def test_remote_fetch_connects_to_the_address_it_checked(monkeypatch, face_images):
    """The host is resolved once; the connection goes to that checked address with the original Host header, so a
    DNS answer that changes between the check and the fetch (rebinding) is never used."""
    png = io.BytesIO()
    face_images[0].save(png, "PNG")
    seen = []

    class Images(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            seen.append(self.headers["Host"])
            self.send_response(200)
            self.send_header("Content-Length", str(len(png.getvalue())))
            self.end_headers()
            self.wfile.write(png.getvalue())

    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Images)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    lookups = []
    real_lookup = socket.getaddrinfo

    def rebinding_dns(host, *args, **kwargs):
        if host == "faces.example":
            lookups.append(host)
            if len(lookups) > 1:  # a second lookup would get another answer: it must never happen
                raise socket.gaierror("second lookup")
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 0))]
        return real_lookup(host, *args, **kwargs)

    monkeypatch.setattr(serve_requests.socket, "getaddrinfo", rebinding_dns)
    monkeypatch.setattr(serve_requests, "is_public", lambda ip: True)  # pretend 127.0.0.1 is a public address
    try:
        url = f"http://faces.example:{site.server_port}/face.png"
        image = serve_requests.load_image_url(url, "image", Limits(allow_remote_images=True))
    finally:
        site.shutdown()
    assert image.size == face_images[0].size
    assert lookups == ["faces.example"] and seen == [f"faces.example:{site.server_port}"]
