"""The mock backend as an in-process upstream transport.

It takes the same (path, headers, body) a network transport would and answers with a
status, headers and body chunks, so the proxy treats it exactly like a real backend (same
passthrough, same journal tap) without opening a socket. The answer comes from the one
generic responder (`louter.mock.responder`); the endpoints are every dialect's
(`Dialect.serve_paths`).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator, Callable

import orjson
import trio

from louter.config import Backend
from louter.errors import ConversionError
from louter.http.message import HeaderList
from louter.mock import responder


class MockResponse:
    """A canned response whose chunks are yielded one by one (with a checkpoint between)."""

    def __init__(self, status: int, headers: HeaderList, chunks: list[bytes]) -> None:
        self.status = status
        self.headers = headers
        self._chunks = chunks

    ready = False  # each chunk stands for one the backend sent later

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        for chunk in self._chunks:
            await trio.lowlevel.checkpoint()
            yield chunk

    async def read(self) -> bytes:
        return b"".join(self._chunks)

    async def aclose(self) -> None:
        self._chunks = []


def _response(reply: responder.MockReply) -> MockResponse:
    return MockResponse(reply.status, reply.headers, reply.chunks)


def _answer(
    endpoint: responder.Endpoint,
    path: str,
    body: bytes,
    response_id: str,
    created: int,
    tool_format: str,
) -> MockResponse:
    """The mock's answer to one request body (parse, answer, or the error reply)."""
    try:
        data = orjson.loads(body)
        if not isinstance(data, dict):
            raise ConversionError("request body must be a JSON object")
        reply = responder.respond(
            endpoint, path, data, response_id=response_id, created=created, tool_format=tool_format
        )
    except orjson.JSONDecodeError as exc:
        reply = responder.error(endpoint, 400, f"request body is not valid JSON: {exc}")
    except ConversionError as exc:
        reply = responder.error(endpoint, exc.status_hint, exc.message)
    return _response(reply)


class MockTransport:
    """Deterministic, instant, in-process backend. Ids come from a counter, time from `clock`."""

    def __init__(
        self, backend: Backend, *, clock: Callable[[], float], offload: int = 1024 * 1024
    ) -> None:
        self.backend = backend
        self._clock = clock
        self._counter = 0
        self._endpoints = responder.endpoints()
        self._offload = offload  # bodies larger than this are answered in a worker thread

    def _next_id(self) -> str:
        self._counter += 1
        return f"chatcmpl-mock{self._counter}"

    async def request(
        self,
        path: str,
        headers: HeaderList,
        body: bytes,
        *,
        first_byte_timeout: float,
        method: str = "POST",
    ) -> MockResponse:
        endpoint = responder.find(self._endpoints, path)
        if endpoint is None:
            return _response(responder.error(None, 404, f"the mock backend has no endpoint {path}"))
        response_id, created = self._next_id(), int(self._clock())
        answer = functools.partial(
            _answer, endpoint, path, body, response_id, created, self.backend.tool_format
        )
        if len(body) <= self._offload:
            await trio.lowlevel.checkpoint()
            return answer()
        # A large prompt: parsing and answering it must not stall every other client.
        return await trio.to_thread.run_sync(answer)

    async def aclose(self) -> None:
        return None
