"""Requests a hostile or careless client sends a chat-completions server, for the load test and the benchmark:
valid text, image and image-only requests interleaved with bad ones (each with the status it must get), an
8-image request of 40-megapixel photos, and a chunked body far over any size limit."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator

from PIL import Image

from facellm.backends.openai_client import image_data_url


def chat_body(*parts: dict, **extra: object) -> bytes:
    """A one-message chat-completions body (max_tokens 8 unless given) as JSON bytes."""
    return json.dumps({"messages": [{"role": "user", "content": list(parts)}], "max_tokens": 8, **extra}).encode()


def _text(text: str) -> dict:
    return {"type": "text", "text": text}


def _image(url: str) -> dict:
    return {"type": "image_url", "image_url": {"url": url}}


def mixed_requests(images: list[Image.Image], count: int) -> list[tuple[bytes, int]]:
    """`count` (body, expected status) pairs cycling through three valid kinds (text only, image + text, image
    alone) and four bad ones (empty text, the image placeholder token, a lone surrogate, a seed over 64 bits)."""
    urls = [image_data_url(image) for image in images]
    kinds = [
        (lambda i: chat_body(_text(f"Hello number {i}")), 200),
        (lambda i: chat_body(_image(urls[i % len(urls)]), _text(f"Describe face {i}.")), 200),
        (lambda i: chat_body(_image(urls[i % len(urls)])), 200),
        (lambda i: chat_body(_text("")), 400),
        (lambda i: chat_body(_text("<IMG_CONTEXT> hi")), 400),
        (lambda i: b'{"messages": [{"role": "user", "content": "\\ud800"}]}', 400),
        (lambda i: chat_body(_text("hi"), seed=2**64), 400),
    ]
    return [(kinds[i % len(kinds)][0](i), kinds[i % len(kinds)][1]) for i in range(count)]


def huge_images_request(count: int = 8, size: tuple[int, int] = (6000, 6600), kind: str = "PNG") -> bytes:
    """`count` copies of a flat image of `size` pixels (40 MP by default) and a question. A flat PNG is the worst
    case for the server: about 130 KB on the wire, and PNG has no reduced-scale decoding, unlike JPEG."""
    photo = io.BytesIO()
    Image.new("RGB", size, (140, 100, 80)).save(photo, kind)
    url = f"data:image/{kind.lower()};base64," + base64.b64encode(photo.getvalue()).decode()
    return chat_body(*[_image(url)] * count, _text("Which image shows a face?"), max_tokens=2)


def chunked_body(megabytes: int) -> Iterator[bytes]:
    """A body of `megabytes` MB sent in 1 MB chunks (so without a content-length)."""
    for _ in range(megabytes):
        yield b" " * 2**20
