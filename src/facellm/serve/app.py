"""The HTTP server: OpenAI-compatible chat completions (plain and streamed), model list, health, and the web page.

`POST /v1/faces` measures the faces of one image for the page (boxes, pose, quality, predicted attributes).
Errors use OpenAI's error body: 400 bad request, 401 missing or wrong key, 413 body too large, 429 queue full,
503 no model loaded. The API key (when set) is compared in constant time and never logged.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
import uuid
from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from facellm.serve.engine import Engine, QueueFull
from facellm.serve.requests import Limits, RequestError, load_image_url, parse_chat_request


def create_app(engine: Engine, limits: Limits | None = None, api_key: str | None = None) -> FastAPI:
    limits = limits or Limits()
    app = FastAPI(title="facellm", docs_url=None, redoc_url=None)

    @app.on_event("startup")
    async def _start() -> None:
        engine.start()

    @app.on_event("shutdown")
    async def _stop() -> None:
        await engine.stop()

    def error(exc: RequestError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    def authorised(request: Request) -> bool:
        if not api_key:
            return True
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {api_key}".encode())

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "model": engine.backend.name}

    @app.get("/v1/models")
    async def models(request: Request):
        if not authorised(request):
            return error(RequestError(401, "missing or wrong API key", kind="authentication_error"))
        return {"object": "list", "data": [{"id": engine.backend.name, "object": "model", "owned_by": "facellm"}]}

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        return files("facellm.serve").joinpath("static/index.html").read_text(encoding="utf-8")

    @app.get("/v1/aspects")
    async def aspects() -> dict:
        from facellm.data.prompts import load_prompts

        return {"aspects": [{"key": a.key, "question": a.stored_question} for a in load_prompts().aspects.values()]}

    async def json_body(request: Request):
        """The request's JSON body after the key and size checks (a RequestError otherwise)."""
        if not authorised(request):
            raise RequestError(401, "missing or wrong API key", kind="authentication_error")
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limits.max_body_bytes:
            raise RequestError(413, f"request body over {limits.max_body_bytes} bytes")
        raw = await request.body()
        if len(raw) > limits.max_body_bytes:
            raise RequestError(413, f"request body over {limits.max_body_bytes} bytes")
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RequestError(400, "the request body is not valid JSON") from None

    @app.post("/v1/faces")
    async def faces(request: Request):
        """Faces in one image (`{"image": DATA_URL}`): boxes, pose, quality and predicted attributes per face."""
        try:
            body = await json_body(request)
            if not isinstance(body, dict):
                raise RequestError(400, "the request body must be a JSON object")
            image = load_image_url(body.get("image"), "image", limits)
        except RequestError as exc:
            return error(exc)
        from facellm.faces import analyze_image

        analysis = await asyncio.get_running_loop().run_in_executor(None, analyze_image, image, "auto", True)
        result = analysis.as_dict()
        for face in result["faces"]:
            del face["landmarks"]  # the page has no use for them; `facellm analyze --json` gives them
        return {"object": "face.analysis", **result}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        try:
            parsed = parse_chat_request(await json_body(request), limits)
        except RequestError as exc:
            return error(exc)
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        model = engine.backend.name
        if parsed.stream:
            return StreamingResponse(
                _sse(engine, parsed, completion_id, created, model), media_type="text/event-stream"
            )
        try:
            answer = engine.submit(parsed.conversation, parsed.settings)
        except QueueFull:
            return error(RequestError(429, "too many requests are waiting; retry shortly", kind="rate_limit_error"))
        text, stopped = cut_at_stop(await answer, parsed.stop)
        prompt_tokens = engine.backend.prompt_tokens(parsed.conversation)
        completion_tokens = min(engine.backend.count_tokens(text), parsed.settings.max_new_tokens)
        finish = "stop" if stopped or completion_tokens < parsed.settings.max_new_tokens else "length"
        body = {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }  # fmt: skip
        return Response(json.dumps(body), media_type="application/json")

    return app


def cut_at_stop(text: str, stops: list[str]) -> tuple[str, bool]:
    """The text up to the first stop string, and whether one was found."""
    cuts = [text.index(s) for s in stops if s in text]
    return (text[: min(cuts)], True) if cuts else (text, False)


async def _sse(engine: Engine, parsed, completion_id: str, created: int, model: str):
    def chunk(delta: dict, finish: str | None = None) -> str:
        payload = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip
        return f"data: {json.dumps(payload)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    held, emitted, stopped = "", "", False
    longest_stop = max((len(s) for s in parsed.stop), default=0)
    try:
        async for piece in engine.stream(parsed.conversation, parsed.settings):
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
        yield f"data: {json.dumps(RequestError(429, 'too many requests are waiting').body())}\n\n"
        return
    if held:
        yield chunk({"content": held})
        emitted += held
    finish = "stop" if stopped or engine.backend.count_tokens(emitted) < parsed.settings.max_new_tokens else "length"
    yield chunk({}, finish)
    yield "data: [DONE]\n\n"
