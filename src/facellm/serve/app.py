"""The HTTP server: OpenAI-compatible chat completions (plain and streamed), model list, health, and the web page.

`POST /v1/faces` measures the faces of one image for the page (boxes, pose, quality, predicted attributes).
Errors use OpenAI's error body: 400 bad request, 401 missing or wrong key, 413 body too large, 429 queue full or
too many image pixels in flight, 500 the model failed on this one request, 502/503 an upstream engine
(`--upstream`) answered badly or cannot be reached. A streamed request that fails after
the 200 ends with an error event. The API key (when set) is compared in constant time and never logged.

Nothing slow runs on the event loop: bodies are read with the size limit enforced while reading, images are
decoded (and shrunk) by a small thread pool, prompts are checked and counted there too, and the model has its own
thread. So `/health` answers while large requests are being decoded.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import replace
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from facellm.backends.base import Prompt
from facellm.backends.upstream import UpstreamError
from facellm.errors import FaceLLMError
from facellm.faces import analyze_image
from facellm.prompts import load_prompts
from facellm.serve.engine import Engine, QueueFull
from facellm.serve.requests import ChatRequest, Limits, RequestError, load_image_url, parse_chat_request, parse_json


def model_id(name: str) -> str:
    """The id clients see for a backend's full name: a hub id as it is, a local folder by its folder name, an adapter
    by its folder name after a "+" (the full name, paths and merge record included, is the model's `root`)."""
    grounded = name.endswith("+grounded")
    core = name.removesuffix("+grounded").removeprefix("hf:").split(" (merged from ")[0]
    model, _, adapter = core.partition(" + adapter ")
    short = Path(model).name if model.startswith(("/", ".", "~")) else model
    return short + (f"+{Path(adapter).name}" if adapter else "") + ("+grounded" if grounded else "")


def create_app(engine: Engine, limits: Limits | None = None, api_key: str | None = None) -> FastAPI:
    limits = limits or Limits()
    decoders = ThreadPoolExecutor(max_workers=limits.decode_workers, thread_name_prefix="facellm-decode")
    budget = PixelBudget(limits.max_pixels_in_flight)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """The engine's thread runs while the server does; the image decoders stop with it."""
        engine.start()
        try:
            yield
        finally:
            await engine.stop()
            decoders.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="facellm", docs_url=None, redoc_url=None, lifespan=lifespan)

    def error(exc: RequestError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    def authorised(request: Request) -> bool:
        if not api_key:
            return True
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {api_key}".encode())

    served = model_id(engine.backend.name)

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "model": served}

    @app.get("/v1/models")
    async def models(request: Request):
        if not authorised(request):
            return error(RequestError(401, "missing or wrong API key", kind="authentication_error"))
        listed = {"id": served, "object": "model", "owned_by": "facellm", "root": engine.backend.name}
        return {"object": "list", "data": [listed]}

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        return files("facellm.serve").joinpath("static/index.html").read_text(encoding="utf-8")

    @app.get("/v1/aspects")
    async def aspects() -> dict:
        return {"aspects": [{"key": a.key, "question": a.stored_question} for a in load_prompts().aspects.values()]}

    async def body_bytes(request: Request) -> bytes:
        """The request's body after the key and size checks (a RequestError otherwise); the size limit holds
        while reading, so a chunked body without a length is cut off at the limit, not buffered whole."""
        if not authorised(request):
            raise RequestError(401, "missing or wrong API key", kind="authentication_error")
        too_big = RequestError(413, f"request body over {limits.max_body_bytes} bytes")
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limits.max_body_bytes:
            raise too_big
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limits.max_body_bytes:
                raise too_big
            chunks.append(chunk)
        return b"".join(chunks)

    async def off_loop(function, *args):
        """Run a parsing, decoding or checking step in the decoder pool; user errors become 400s (see `failure`)."""
        try:
            return await asyncio.get_running_loop().run_in_executor(decoders, function, *args)
        except FaceLLMError as exc:
            raise failure(exc) from None

    def checked_request(raw: bytes) -> ChatRequest:
        parsed = parse_chat_request(parse_json(raw), limits)
        parsed.prompt = engine.backend.prepare(Prompt(parsed.conversation))  # e.g. faces measured, once per request
        parsed.prompt_tokens = engine.backend.check(parsed.prompt, parsed.settings)
        parsed.prompt = replace(parsed.prompt, checked_tokens=parsed.prompt_tokens)  # checked and counted once
        return parsed

    def face_image(raw: bytes):
        body = parse_json(raw)
        if not isinstance(body, dict):
            raise RequestError(400, "the request body must be a JSON object")
        if not isinstance(body.get("image"), str):
            fields = ", ".join(map(str, body)) or "none"
            raise RequestError(
                400, f'the body needs "image": a base64 data URL of the picture (its fields: {fields})', "image"
            )
        return load_image_url(body["image"], "image", limits)

    @app.post("/v1/faces")
    async def faces(request: Request):
        """Faces in one image (`{"image": DATA_URL}`): boxes, pose, quality and predicted attributes per face."""
        try:
            image = await off_loop(face_image, await body_bytes(request))
        except RequestError as exc:
            return error(exc)
        analysis = await asyncio.get_running_loop().run_in_executor(None, analyze_image, image, "auto", True)
        result = analysis.as_dict()
        for face in result["faces"]:
            del face["landmarks"]  # the page has no use for them; `facellm analyze --json` gives them
        return {"object": "face.analysis", **result}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        try:
            parsed = await off_loop(checked_request, await body_bytes(request))
        except RequestError as exc:
            return error(exc)
        if not budget.reserve(parsed.pixels):
            return error(
                RequestError(429, "too many image pixels are being processed; retry shortly", kind="rate_limit_error")
            )
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        model = served
        if parsed.stream:
            events = _sse(engine, parsed, completion_id, created, model, lambda: budget.release(parsed.pixels))
            return StreamingResponse(events, media_type="text/event-stream")
        try:
            text, stopped = cut_at_stop(await engine.submit(parsed.prompt, parsed.settings), parsed.stop)
        except QueueFull:
            return error(RequestError(429, "too many requests are waiting; retry shortly", kind="rate_limit_error"))
        except Exception as exc:  # this request alone failed; the server and the other requests carry on
            return error(failure(exc))
        finally:
            budget.release(parsed.pixels)
        prompt_tokens = parsed.prompt_tokens
        completion_tokens = min(engine.backend.count_tokens(text), parsed.settings.max_new_tokens)
        finish = "stop" if stopped or completion_tokens < parsed.settings.max_new_tokens else "length"
        body = {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        return Response(json.dumps(body), media_type="application/json")

    return app


class PixelBudget:
    """Decoded image pixels held by the requests being answered; a request that would pass the limit is refused.
    Used from the event loop only, so it needs no lock."""

    def __init__(self, limit: int) -> None:
        self.limit, self.held = limit, 0

    def reserve(self, pixels: int) -> bool:
        if pixels and self.held + pixels > self.limit:
            return False
        self.held += pixels
        return True

    def release(self, pixels: int) -> None:
        self.held -= pixels


def failure(exc: Exception) -> RequestError:
    """The error a failed request gets: the upstream's status (502/503/4xx) when an upstream engine failed it, 400
    for what the user can fix, 500 naming the cause otherwise."""

    if isinstance(exc, UpstreamError):
        return RequestError(exc.status, str(exc), kind="upstream_error")
    if isinstance(exc, FaceLLMError):
        return RequestError(400, exc.message)
    return RequestError(500, f"the model failed on this request ({type(exc).__name__})", kind="server_error")


def cut_at_stop(text: str, stops: list[str]) -> tuple[str, bool]:
    """The text up to the first stop string, and whether one was found."""
    cuts = [text.index(s) for s in stops if s in text]
    return (text[: min(cuts)], True) if cuts else (text, False)


async def _sse(engine: Engine, parsed, completion_id: str, created: int, model: str, finished):
    """The streamed answer as server-sent events; a failure after the 200 is sent as an error event, and
    `finished()` runs however the stream ends (also when the client goes away)."""

    def chunk(delta: dict, finish: str | None = None) -> str:
        payload = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(payload)}\n\n"

    def error_event(exc: RequestError) -> str:
        return f"data: {json.dumps(exc.body())}\n\n"

    try:
        yield chunk({"role": "assistant", "content": ""})
        held, emitted, stopped = "", "", False
        longest_stop = max((len(s) for s in parsed.stop), default=0)
        try:
            async for piece in engine.stream(parsed.prompt, parsed.settings):
                held += piece
                text, stopped = cut_at_stop(held, parsed.stop)
                if stopped:
                    held = text
                    break
                # Keep back what could be the start of a stop string split across pieces.
                safe = held[: len(held) - longest_stop + 1] if longest_stop else held
                if safe:
                    yield chunk({"content": safe})
                    emitted += safe
                    held = held[len(safe) :]
        except QueueFull:
            yield error_event(RequestError(429, "too many requests are waiting", kind="rate_limit_error"))
            return
        except Exception as exc:  # after the 200: tell the client in the stream, then end it cleanly
            yield error_event(failure(exc))
            return
        if held:
            yield chunk({"content": held})
            emitted += held
        tokens = engine.backend.count_tokens(emitted)
        yield chunk({}, "stop" if stopped or tokens < parsed.settings.max_new_tokens else "length")
        yield "data: [DONE]\n\n"
    finally:
        finished()
