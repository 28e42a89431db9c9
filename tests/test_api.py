"""The OpenAI-compatible client against a real HTTP server on 127.0.0.1 (the shipped mock endpoint)."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from facellm.backends.openai_client import (
    ApiError,
    ChatClient,
    EndpointConfig,
    check_reachable,
    image_data_url,
    to_openai_messages,
)
from facellm.errors import InputError
from facellm.model import question
from facellm.testing.mock_openai import MockOpenAIServer


def _config(server, **kwargs):
    defaults = {"backoff_s": 0.01, "backoff_max_s": 0.05, "timeout_s": 10}
    return EndpointConfig(server.base_url, "mock-vlm", **{**defaults, **kwargs})


def test_images_travel_as_data_urls(face_images):
    with MockOpenAIServer() as server:
        messages = to_openai_messages(question(face_images[:2], "Same person?"))
        [reply] = ChatClient(_config(server)).complete_many([messages])
    assert reply.text.startswith("The answer is (") and reply.prompt_tokens > 0 and reply.attempts == 1
    parts = server.requests[0]["messages"][0]["content"]
    assert [p["type"] for p in parts] == ["image_url", "image_url", "text"]
    url = parts[0]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    decoded = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert decoded.tobytes() == face_images[0].convert("RGB").tobytes()  # the very pixels a local model reads


def test_concurrency_is_bounded():
    """The server holds every request until three are in flight (or all twelve have arrived): a client that kept
    fewer in flight would stall until its timeout, one that sent more would show more. No clock decides."""
    import threading

    arrived = threading.Condition()

    def hold_until_three(messages):
        with arrived:
            arrived.notify_all()
            arrived.wait_for(lambda: server.in_flight >= 3 or len(server.requests) == 12, timeout=30)
        return "The answer is (A)."

    with MockOpenAIServer(responder=hold_until_three) as server:
        replies = ChatClient(_config(server, concurrency=3, timeout_s=120)).complete_many(
            [[{"role": "user", "content": f"q{i}"}] for i in range(12)]
        )
    assert all(not isinstance(r, ApiError) for r in replies)
    assert server.max_in_flight == 3


def test_retries_transient_faults_and_honours_retry_after():
    with MockOpenAIServer(faults=[429, 503], retry_after=0) as server:
        [reply] = ChatClient(_config(server)).complete_many([[{"role": "user", "content": "hi"}]])
    assert not isinstance(reply, ApiError)
    assert reply.attempts == 3 and len(server.requests) == 3


def test_gives_up_after_retries_without_failing_the_batch():
    with MockOpenAIServer(faults=[500] * 3) as server:
        replies = ChatClient(_config(server, concurrency=1, max_retries=2)).complete_many(
            [[{"role": "user", "content": "first"}], [{"role": "user", "content": "second"}]]
        )
    assert isinstance(replies[0], ApiError) and "failed after 3 attempts" in str(replies[0])
    assert not isinstance(replies[1], ApiError)


def test_client_errors_fail_at_once_with_a_hint():
    with MockOpenAIServer(api_key="right") as server:
        [reply] = ChatClient(_config(server, api_key="wrong")).complete_many([[{"role": "user", "content": "hi"}]])
        assert isinstance(reply, ApiError) and "HTTP 401" in str(reply) and "FACELLM_API_KEY" in str(reply)
        assert len(server.requests) == 0  # refused before reaching the responder, and not retried
        [ok] = ChatClient(_config(server, api_key="right")).complete_many([[{"role": "user", "content": "hi"}]])
        assert not isinstance(ok, ApiError)


def test_unreachable_endpoint_is_reported():
    config = EndpointConfig("http://127.0.0.1:9/v1", "m", max_retries=1, backoff_s=0.01, timeout_s=2)
    [reply] = ChatClient(config).complete_many([[{"role": "user", "content": "hi"}]])
    assert isinstance(reply, ApiError) and "ConnectError" in str(reply)


def test_key_from_environment_never_shows(monkeypatch):
    monkeypatch.setenv("FACELLM_API_KEY", "sk-secret-123")
    config = EndpointConfig("http://127.0.0.1:1/v1", "m")
    assert config.api_key == "sk-secret-123"
    assert "sk-secret" not in repr(config)


def test_bad_endpoint_settings():
    with pytest.raises(InputError, match="must start with http"):
        EndpointConfig("api.openai.com/v1", "gpt-4o")
    with pytest.raises(InputError, match="no API model"):
        EndpointConfig("http://x/v1", "")


def test_lossy_data_url_is_a_smaller_jpeg_of_other_pixels(face_images):
    """`lossless=False` (Batch API files, capped at 200 MB) trades exact pixels for size."""
    image = face_images[0].convert("RGB")
    jpeg, png = image_data_url(image, lossless=False), image_data_url(image)
    assert jpeg.startswith("data:image/jpeg;base64,/9j/") and len(jpeg) < len(png) / 3
    assert Image.open(io.BytesIO(base64.b64decode(jpeg.split(",", 1)[1]))).tobytes() != image.tobytes()


@pytest.mark.slow
def test_retry_after_header_sets_the_wait():
    import time

    with MockOpenAIServer(faults=[429], retry_after=0.5) as server:
        started = time.monotonic()
        [reply] = ChatClient(_config(server, backoff_s=0.001, backoff_max_s=0.001)).complete_many(
            [[{"role": "user", "content": "hi"}]]
        )
        waited = time.monotonic() - started
    assert reply.attempts == 2
    assert waited >= 0.5  # the server's Retry-After, not the 1 ms backoff, decided the pause


def test_reachability_is_checked_once_before_a_run():
    from facellm.testing.server import free_port

    dead = free_port()  # nothing listens there
    with MockOpenAIServer(api_key="right") as server:
        check_reachable(_config(server, api_key="right"))
        with pytest.raises(InputError, match="refused the API key .HTTP 401.*FACELLM_API_KEY"):
            check_reachable(_config(server, api_key="wrong"))
        assert server.requests == []  # probing asks no question
    with pytest.raises(InputError, match=f"cannot reach http://127.0.0.1:{dead}/v1 .ConnectError"):
        check_reachable(EndpointConfig(f"http://127.0.0.1:{dead}/v1", "m"))
