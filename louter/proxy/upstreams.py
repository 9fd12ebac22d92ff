"""Runtime backends: each configured `Backend` with its open transport and auth headers,
and how each dialect's requests are addressed (path) and finished (body fields).

Protocol → factory and dialect → path are dicts (no if/elif ladder on provider names); a
new backend dialect plugs in by adding entries.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from louter.config import Backend, Config
from louter.http.deadlines import Deadlines
from louter.http.message import HeaderList
from louter.http.target import header_value, path_segment
from louter.http.upstream import Transport, open_transport
from louter.mock.transport import MockTransport

ANTHROPIC_VERSION = b"2023-06-01"


def _openai_path(model: str, stream: bool) -> str:
    return "/v1/chat/completions"


def _gemini_path(model: str, stream: bool) -> str:
    return gemini_model_path(model, "streamGenerateContent?alt=sse" if stream else None)


def gemini_model_path(model: str, action: str | None) -> str:
    """`/v1beta/models/{model}:{action}`, the model escaped as one path segment."""
    return f"/v1beta/models/{path_segment(model)}:{action or 'generateContent'}"


def _anthropic_path(model: str, stream: bool) -> str:
    return "/v1/messages"


def _responses_path(model: str, stream: bool) -> str:
    return "/v1/responses"


PATHS: Mapping[str, Callable[[str, bool], str]] = {
    "openai": _openai_path,
    "gemini": _gemini_path,
    "anthropic": _anthropic_path,
    "responses": _responses_path,
}


def _openai_auth(key: str) -> HeaderList:
    return [(b"authorization", b"Bearer " + header_value(key, "authorization"))]


def _gemini_auth(key: str) -> HeaderList:
    return [(b"x-goog-api-key", header_value(key, "x-goog-api-key"))]


def _anthropic_auth(key: str) -> HeaderList:
    return [(b"x-api-key", header_value(key, "x-api-key"))]


AUTH: Mapping[str, Callable[[str], HeaderList]] = {
    "openai": _openai_auth,
    "gemini": _gemini_auth,
    "anthropic": _anthropic_auth,
    "responses": _openai_auth,
}
BASE_HEADERS: Mapping[str, HeaderList] = {
    "openai": [(b"content-type", b"application/json")],
    "gemini": [(b"content-type", b"application/json")],
    "anthropic": [
        (b"content-type", b"application/json"),
        (b"anthropic-version", ANTHROPIC_VERSION),
    ],
    "responses": [(b"content-type", b"application/json")],
}


def client_auth_header(dialect: str) -> str:
    """The request header a client of `dialect` sends its key in (forwarded when the
    backend has no key of its own)."""
    return {"openai": "authorization", "gemini": "x-goog-api-key"}.get(dialect, "x-api-key")


@dataclass(frozen=True, slots=True)
class Upstream:
    backend: Backend
    transport: Transport
    headers: HeaderList  # sent with every request: content type and credentials

    def path(self, dialect: str, model: str, stream: bool) -> str:
        return PATHS[dialect](model, stream)

    def prepare(self, dialect: str, body: dict[str, Any]) -> dict[str, Any]:
        """Backend-specific body fields: the OpenAI token-limit field name."""
        if dialect == "openai":
            rename_token_field(body, self.backend.max_tokens_field)
        return body


def rename_token_field(body: dict[str, Any], field: str) -> None:
    """Send the token limit under `field` (`max_tokens` or `max_completion_tokens`)."""
    other = "max_completion_tokens" if field == "max_tokens" else "max_tokens"
    if other in body and field not in body:
        body[field] = body.pop(other)


def _network(
    backend: Backend, config: Config, clock: Callable[[], float], deadlines: Deadlines
) -> Upstream:
    headers = list(BASE_HEADERS[backend.protocol])
    if backend.api_key:
        headers.extend(AUTH[backend.protocol](backend.api_key))
    performance = config.performance
    transport = open_transport(
        backend.url,
        connect_timeout=backend.connect_timeout_seconds or performance.connect_timeout_seconds,
        idle_timeout=performance.stream_idle_timeout_seconds,
        deadlines=deadlines,
        label=backend.name,
        proxies=config.proxies,
    )
    return Upstream(backend, transport, headers)


def _mock(
    backend: Backend, config: Config, clock: Callable[[], float], deadlines: Deadlines
) -> Upstream:
    offload = config.performance.offload_bytes
    return Upstream(backend, MockTransport(backend, clock=clock, offload=offload), [])


Factory = Callable[[Backend, Config, Callable[[], float], Deadlines], Upstream]
FACTORIES: Mapping[str, Factory] = {
    "openai": _network,
    "gemini": _network,
    "anthropic": _network,
    "responses": _network,
    "mock": _mock,
}


def open_upstreams(
    config: Config, clock: Callable[[], float], deadlines: Deadlines
) -> dict[str, Upstream]:
    return {b.name: FACTORIES[b.protocol](b, config, clock, deadlines) for b in config.backends}
