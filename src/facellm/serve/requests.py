"""Parse and check OpenAI chat-completions requests: messages with text and image parts, sampling options, limits.

Images arrive as base64 `data:` URLs. Remote `http(s)` URLs are refused unless the server allows them, and even
then only to globally routable addresses: the host is resolved once, every address it resolves to is checked, and
the connection goes to the checked address (no second lookup that DNS rebinding could answer differently).
`file:` and every other scheme are always refused, so a request can never make the server read its own disk or
probe its network. Large images are shrunk while decoding (`Limits.max_side`), so the server keeps a few megapixels
per image whatever size was sent. Parsing decodes images: run it off the event loop.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from facellm.backends.base import Prompt
from facellm.conversation import GenerationSettings, Turn
from facellm.errors import ImageError, InputError
from facellm.images import read_image

if TYPE_CHECKING:
    from PIL import Image


@dataclass
class Limits:
    max_body_bytes: int = 20 * 2**20
    max_images: int = 8
    max_pixels: int = 40_000_000  # per image, as declared in its header (refused before decoding)
    max_side: int = 2048  # longer side an image is shrunk to while decoding (InternVL3 tiles up to 1792 px)
    max_pixels_in_flight: int = 160_000_000  # decoded pixels all requests being answered may hold together
    decode_workers: int = 2  # threads decoding request images (bounds the full-size decodes at any moment)
    max_tokens: int = 2048
    allow_remote_images: bool = False
    remote_max_bytes: int = 10 * 2**20
    remote_timeout_s: float = 10.0


class RequestError(Exception):
    """A request the server refuses; rendered as an OpenAI error body with this status."""

    def __init__(self, status: int, message: str, param: str | None = None, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.kind = status, message, param, kind

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": None}}


@dataclass
class ChatRequest:
    conversation: list[Turn]
    settings: GenerationSettings
    stream: bool
    stop: list[str]
    prompt: Prompt | None = None  # the conversation as the backend's `prepare` made it
    prompt_tokens: int = 0  # counted by the backend's check

    @property
    def pixels(self) -> int:
        """Decoded pixels this request holds (what it counts against `Limits.max_pixels_in_flight`)."""
        return sum(image.width * image.height for turn in self.conversation for image in turn.images)


def parse_json(raw: bytes) -> object:
    """A request body's JSON; a 400 for what is not JSON, not UTF-8, nested too deeply or holds a huge integer."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise RequestError(400, "the request body nests JSON too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, or an integer of over 4,300 digits
        raise RequestError(400, f"the request body is not valid JSON ({str(exc).split(':')[0]})") from None


def parse_chat_request(body: object, limits: Limits) -> ChatRequest:
    if not isinstance(body, dict):
        raise RequestError(400, "the request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError(400, "'messages' must be a non-empty list", "messages")
    conversation: list[Turn] = []
    image_count = 0
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant"):
            raise RequestError(400, f"messages[{i}] needs a role of system, user or assistant", f"messages[{i}]")
        texts, images = [], []
        content = message.get("content")
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(parts, list):
            raise RequestError(400, f"messages[{i}].content must be a string or a list of parts", f"messages[{i}]")
        for j, part in enumerate(parts):
            where = f"messages[{i}].content[{j}]"
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text" and isinstance(part.get("text"), str):
                texts.append(_valid_text(part["text"], where if isinstance(content, list) else f"messages[{i}]"))
            elif kind == "image_url":
                image_count += 1
                if image_count > limits.max_images:
                    raise RequestError(400, f"more than {limits.max_images} images in one request", where)
                url = part.get("image_url")
                url = url.get("url") if isinstance(url, dict) else url
                images.append(load_image_url(url, where, limits))
            else:
                raise RequestError(400, f"{where} must be a text or image_url part", where)
        conversation.append(Turn(message["role"], "\n".join(texts), images))
    if conversation[-1].role != "user":
        raise RequestError(400, "the last message must come from the user", "messages")
    if not conversation[-1].text.strip() and not conversation[-1].images:
        raise RequestError(400, "the last user message has neither text nor an image", "messages")
    return ChatRequest(
        conversation=conversation,
        settings=_settings(body, limits),
        stream=bool(body.get("stream", False)),
        stop=_stop(body.get("stop")),
    )


def _settings(body: dict, limits: Limits) -> GenerationSettings:
    if body.get("n", 1) != 1:
        raise RequestError(400, "only n=1 is supported", "n")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens", 256))
    if not isinstance(max_tokens, int) or not 1 <= max_tokens <= limits.max_tokens:
        raise RequestError(400, f"max_tokens must be an integer from 1 to {limits.max_tokens}", "max_tokens")
    temperature = body.get("temperature", 0.0)
    top_p = body.get("top_p", 1.0)
    if not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2:
        raise RequestError(400, "temperature must be between 0 and 2", "temperature")
    if not isinstance(top_p, (int, float)) or not 0 < top_p <= 1:
        raise RequestError(400, "top_p must be in (0, 1]", "top_p")
    seed = body.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise RequestError(400, "seed must be an integer", "seed")
    try:
        return GenerationSettings(max_tokens, temperature > 0, float(temperature) or 0.7, float(top_p), seed)
    except InputError as exc:  # the checks above leave only the seed's range to GenerationSettings
        raise RequestError(400, exc.message, "seed") from None


def _valid_text(text: str, where: str) -> str:
    """The text, or a 400 when it cannot be encoded (a lone surrogate such as "\\ud800" from a JSON escape)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise RequestError(400, f"{where}: the text is not valid Unicode (it holds a lone surrogate)", where) from None
    return text


def _stop(value) -> list[str]:
    if value is None:
        return []
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops) or len(stops) > 4:
        raise RequestError(400, "stop must be a string or up to 4 strings", "stop")
    return stops


def load_image_url(url: object, where: str, limits: Limits) -> Image.Image:
    if not isinstance(url, str) or not url:
        raise RequestError(400, f"{where}: image_url.url is missing", where)
    scheme = urlparse(url).scheme.lower()
    if scheme == "data":
        header, _, payload = url.partition(",")
        if ";base64" not in header:
            raise RequestError(400, f"{where}: data URLs must be base64-encoded", where)
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError(400, f"{where}: corrupt base64 image data", where) from None
    elif scheme in ("http", "https"):
        if not limits.allow_remote_images:
            raise RequestError(
                400,
                f"{where}: remote image URLs are disabled; send the image as a base64 data URL "
                "(or start the server with --allow-remote-images)",
                where,
            )
        data = _fetch(url, where, limits)
    else:
        raise RequestError(400, f"{where}: {scheme or 'this'} URLs are not accepted; send a base64 data URL", where)
    try:
        what = "the data URL's content" if scheme == "data" else f"the content of {url[:80]}"
        return read_image(data, max_pixels=limits.max_pixels, max_side=limits.max_side, name=what)
    except ImageError as exc:
        raise RequestError(400, f"{where}: {exc.message}", where) from None


def is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether an address is globally routable unicast, also for the IPv4 address inside an IPv6 one (mapped,
    6to4, Teredo, NAT64): no private, shared (carrier-grade NAT, 100.64/10), loopback, link-local, reserved or
    multicast address passes."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if inner is None and ip in NAT64:
            inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if inner is not None and not is_public(inner):
            return False
    return ip.is_global and not ip.is_multicast


NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _checked_address(host: str, where: str) -> str:
    """Resolve `host` once and return an address to connect to, after checking every address it resolves to."""
    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
    except (socket.gaierror, UnicodeError):
        raise RequestError(400, f"{where}: cannot resolve host {host!r}", where) from None
    for address in addresses:
        if not is_public(ipaddress.ip_address(address.split("%")[0])):
            raise RequestError(400, f"{where}: image URLs may only point at public internet addresses", where)
    return addresses[0]


def _fetch(url: str, where: str, limits: Limits) -> bytes:
    """Download a remote image from the address checked by `_checked_address`, within a size and a time limit."""
    import time

    import httpx

    parts = urlparse(url)
    host = parts.hostname or ""
    address = _checked_address(host, where)
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        raise RequestError(400, f"{where}: the image URL has an invalid port", where) from None
    literal = f"[{address}]" if ":" in address else address
    pinned = parts._replace(netloc=f"{literal}:{port}").geturl()
    headers = {"Host": parts.netloc.rpartition("@")[2]}
    deadline = time.monotonic() + limits.remote_timeout_s
    try:  # trust_env=False: no proxy from the environment may stand between us and the checked address
        with httpx.Client(timeout=limits.remote_timeout_s, follow_redirects=False, trust_env=False) as client:
            request = client.build_request("GET", pinned, headers=headers, extensions={"sni_hostname": host})
            response = client.send(request, stream=True)
            try:
                if response.status_code != 200:
                    raise RequestError(400, f"{where}: fetching the image gave HTTP {response.status_code}", where)
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > limits.remote_max_bytes:
                        raise RequestError(413, f"{where}: remote image over {limits.remote_max_bytes} bytes", where)
                    if time.monotonic() > deadline:
                        raise RequestError(400, f"{where}: fetching took over {limits.remote_timeout_s:g} s", where)
                    chunks.append(chunk)
                return b"".join(chunks)
            finally:
                response.close()
    except httpx.HTTPError as exc:
        raise RequestError(400, f"{where}: cannot fetch the image ({type(exc).__name__})", where) from None
