"""The mock backend as an in-process upstream transport.

It takes the same (path, headers, body) a network transport would and answers with a
status, headers and body chunks, so the proxy treats it exactly like a real backend (same
passthrough, same journal tap) without opening a socket. Dialects are a dict keyed by path
suffix; a new dialect plugs in by adding an entry.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any

import orjson
import trio

from louter.config import Backend
from louter.convert import anthropic, gemini, openai, responses
from louter.convert.model import ResponseMeta
from louter.errors import ConversionError
from louter.http.message import HeaderList
from louter.mock import engine, neutral
from louter.mock import openai as mock_openai

_JSON: HeaderList = [(b"content-type", b"application/json")]
_SSE: HeaderList = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


class MockResponse:
    """A canned response whose chunks are yielded one by one (with a checkpoint between)."""

    def __init__(self, status: int, headers: HeaderList, chunks: list[bytes]) -> None:
        self.status = status
        self.headers = headers
        self._chunks = chunks

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        for chunk in self._chunks:
            await trio.lowlevel.checkpoint()
            yield chunk

    async def read(self) -> bytes:
        return b"".join(self._chunks)

    async def aclose(self) -> None:
        self._chunks = []


def _openai(
    path: str, body: Mapping[str, Any], backend: Backend, response_id: str, created: int
) -> MockResponse:
    prompt = mock_openai.parse_prompt(body)
    answer = engine.answer(prompt, response_id=response_id, tool_format=backend.tool_format)
    model = str(body.get("model") or backend.name)
    legacy = openai.legacy_functions(body)
    if body.get("stream"):
        options = body.get("stream_options") or {}
        include_usage = bool(isinstance(options, dict) and options.get("include_usage"))
        events = mock_openai.render_stream(
            answer,
            model=model,
            response_id=response_id,
            created=created,
            include_usage=include_usage,
            legacy=legacy,
        )
        return MockResponse(200, _SSE, events)
    payload = mock_openai.render_response(
        answer, model=model, response_id=response_id, created=created, legacy=legacy
    )
    return MockResponse(200, _JSON, [orjson.dumps(payload)])


def _openai_error(status: int, message: str) -> MockResponse:
    body = {"error": {"message": message, "type": "invalid_request_error", "code": status}}
    return MockResponse(status, _JSON, [orjson.dumps(body)])


def _gemini_target(path: str) -> tuple[str, bool]:
    """`/v1beta/models/{model}:{action}?alt=sse` -> (model, SSE wanted)."""
    base, _, query = path.partition("?")
    model = base.split("/models/", 1)[-1].rpartition(":")[0]
    return model, "alt=sse" in query


def _gemini(
    path: str, body: Mapping[str, Any], backend: Backend, response_id: str, created: int
) -> MockResponse:
    model, sse = _gemini_target(path)
    stream = ":streamGenerateContent" in path
    request = gemini.parse_request(body, model=model, stream=stream)
    answer = engine.answer(
        neutral.prompt_of(request), response_id=response_id, tool_format=backend.tool_format
    )
    meta = ResponseMeta(response_id, model, created, include_usage=True)
    if not stream:
        response = neutral.response_of(answer, response_id=response_id, model=model)
        return MockResponse(200, _JSON, [orjson.dumps(gemini.emit_response(response, meta))])
    emitter = gemini.StreamEmitter(meta, sse=sse)
    events = neutral.stream_of(answer, response_id=response_id, model=model)
    chunks = [emitter.feed(event) for event in events] + [emitter.flush()]
    return MockResponse(200, _SSE if sse else _JSON, [c for c in chunks if c])


def _gemini_count(
    path: str, body: Mapping[str, Any], backend: Backend, response_id: str, created: int
) -> MockResponse:
    model, _ = _gemini_target(path)
    prompt = neutral.prompt_of(gemini.parse_count_request(body, model=model))
    answer = gemini.emit_count_response(prompt.prompt_tokens)
    return MockResponse(200, _JSON, [orjson.dumps(answer)])


def _gemini_error(status: int, message: str) -> MockResponse:
    return MockResponse(status, _JSON, [orjson.dumps(gemini.error_body(status, message))])


def _anthropic(
    path: str, body: Mapping[str, Any], backend: Backend, response_id: str, created: int
) -> MockResponse:
    request = anthropic.parse_request(body)
    answer = engine.answer(
        neutral.prompt_of(request), response_id=response_id, tool_format=backend.tool_format
    )
    message_id = "msg_" + response_id
    meta = ResponseMeta(message_id, request.model, created, input_tokens=answer.prompt_tokens)
    if not request.stream:
        response = neutral.response_of(answer, response_id=message_id, model=request.model)
        return MockResponse(200, _JSON, [orjson.dumps(anthropic.emit_response(response, meta))])
    emitter = anthropic.StreamEmitter(meta)
    events = neutral.stream_of(answer, response_id=message_id, model=request.model)
    chunks = [emitter.feed(event) for event in events] + [emitter.flush()]
    return MockResponse(200, _SSE, [c for c in chunks if c])


def _anthropic_count(
    path: str, body: Mapping[str, Any], backend: Backend, response_id: str, created: int
) -> MockResponse:
    prompt = neutral.prompt_of(anthropic.parse_request({"max_tokens": 1, **body}))
    answer = anthropic.emit_count_response(prompt.prompt_tokens)
    return MockResponse(200, _JSON, [orjson.dumps(answer)])


def _anthropic_error(status: int, message: str) -> MockResponse:
    return MockResponse(status, _JSON, [orjson.dumps(anthropic.error_body(status, message))])


def _responses(
    path: str, body: Mapping[str, Any], backend: Backend, response_id: str, created: int
) -> MockResponse:
    request = responses.parse_request(body)
    kinds = responses.tool_kinds(body)
    answer = engine.answer(
        neutral.prompt_of(request), response_id=response_id, tool_format=backend.tool_format
    )
    answer_id = "resp_" + response_id
    meta = ResponseMeta(answer_id, request.model, created, input_tokens=answer.prompt_tokens)
    if not request.stream:
        response = neutral.response_of(answer, response_id=answer_id, model=request.model)
        payload = responses.emit_response(response, meta, kinds=kinds)
        return MockResponse(200, _JSON, [orjson.dumps(payload)])
    emitter = responses.StreamEmitter(meta, kinds=kinds)
    events = neutral.stream_of(answer, response_id=answer_id, model=request.model)
    chunks = [emitter.feed(event) for event in events] + [emitter.flush()]
    return MockResponse(200, _SSE, [c for c in chunks if c])


def _responses_error(status: int, message: str) -> MockResponse:
    return MockResponse(status, _JSON, [orjson.dumps(responses.error_body(status, message))])


# Path suffix (query excluded) -> (answer, error body). The mock's ids are counters.
Respond = Callable[[str, Mapping[str, Any], Backend, str, int], MockResponse]
Fail = Callable[[int, str], MockResponse]
DIALECTS: Mapping[str, tuple[Respond, Fail]] = {
    "/chat/completions": (_openai, _openai_error),
    ":generateContent": (_gemini, _gemini_error),
    ":streamGenerateContent": (_gemini, _gemini_error),
    ":countTokens": (_gemini_count, _gemini_error),
    "/v1/messages": (_anthropic, _anthropic_error),
    "/v1/messages/count_tokens": (_anthropic_count, _anthropic_error),
    "/v1/responses": (_responses, _responses_error),
}


def _answer(
    respond: Respond,
    fail: Fail,
    path: str,
    body: bytes,
    backend: Backend,
    response_id: str,
    created: int,
) -> MockResponse:
    try:
        data = orjson.loads(body)
        if not isinstance(data, dict):
            raise ConversionError("request body must be a JSON object")
        return respond(path, data, backend, response_id, created)
    except orjson.JSONDecodeError as exc:
        return fail(400, f"request body is not valid JSON: {exc}")
    except ConversionError as exc:
        return fail(exc.status_hint, exc.message)


class MockTransport:
    """Deterministic, instant, in-process backend. Ids come from a counter, time from `clock`."""

    def __init__(
        self, backend: Backend, *, clock: Callable[[], float], offload: int = 1024 * 1024
    ) -> None:
        self.backend = backend
        self._clock = clock
        self._counter = 0
        self._offload = offload  # bodies larger than this are answered in a worker thread

    def _next_id(self) -> str:
        self._counter += 1
        return f"chatcmpl-mock{self._counter}"

    async def request(
        self, path: str, headers: HeaderList, body: bytes, *, first_byte_timeout: float
    ) -> MockResponse:
        base = path.partition("?")[0]
        suffix = next((s for s in DIALECTS if base.endswith(s)), None)
        if suffix is None:
            return _openai_error(404, f"the mock backend has no endpoint {path}")
        respond, fail = DIALECTS[suffix]
        response_id, created = self._next_id(), int(self._clock())
        if len(body) <= self._offload:
            await trio.lowlevel.checkpoint()
            return _answer(respond, fail, path, body, self.backend, response_id, created)
        # A large prompt: parsing and answering it must not stall every other client.
        return await trio.to_thread.run_sync(
            _answer, respond, fail, path, body, self.backend, response_id, created
        )

    async def aclose(self) -> None:
        return None
