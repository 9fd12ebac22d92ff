"""Runtime backends: each configured `Backend` with its open transport and auth headers,
and how each dialect's requests are addressed (path) and finished (body fields).

Paths, base headers and auth headers are the `Dialect` record's (`convert/dialect.py`);
protocol → factory is derived from `DIALECTS` (every dialect is a network backend) plus
the mock, so a new backend dialect plugs in by its record alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from louter.config import Backend, Config
from louter.convert.dialect import DIALECTS
from louter.convert.record import Dialect
from louter.http.deadlines import Deadlines
from louter.http.message import HeaderList
from louter.http.upstream import OnFirstUse, Transport, open_transport


class KeyPool:
    """A backend's upstream keys (`api_keys`): each request starts at the next key
    (round-robin, per process); a key the upstream refused hands over to the following
    one (`louter.proxy.attempts`). Logs name a key by its index, never show it."""

    __slots__ = ("auth", "_names", "_next")

    def __init__(self, dialect: Dialect, keys: tuple[str, ...]) -> None:
        self.auth = tuple(dialect.auth_headers(key) for key in keys)
        self._names = frozenset(name for name, _ in self.auth[0])
        self._next = 0

    def order(self) -> list[int]:
        """The key indices one request tries, in order."""
        size = len(self.auth)
        start = self._next
        self._next = (start + 1) % size
        return [(start + i) % size for i in range(size)]

    def headers(self, headers: HeaderList, index: int) -> HeaderList:
        """`headers` with key `index`'s credentials instead of the first key's."""
        return [*(h for h in headers if h[0] not in self._names), *self.auth[index]]


@dataclass(frozen=True, slots=True)
class Upstream:
    backend: Backend
    transport: Transport
    headers: HeaderList  # sent with every request: content type and credentials
    keys: KeyPool | None = None  # a pool of two keys or more

    def path(self, dialect: str, model: str, stream: bool) -> str:
        return DIALECTS[dialect].upstream_path(model, stream)

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
    dialect = DIALECTS[backend.protocol]
    headers = list(dialect.upstream_headers)
    if backend.api_key:
        headers.extend(dialect.auth_headers(backend.api_key))
    performance = config.performance
    transport = open_transport(
        backend.url,
        connect_timeout=backend.connect_timeout_seconds or performance.connect_timeout_seconds,
        idle_timeout=performance.stream_idle_timeout_seconds,
        deadlines=deadlines,
        label=backend.name,
        proxies=config.proxies,
    )
    pool = KeyPool(dialect, backend.api_keys) if len(backend.api_keys) > 1 else None
    return Upstream(backend, transport, headers, pool)


def _mock(
    backend: Backend, config: Config, clock: Callable[[], float], deadlines: Deadlines
) -> Upstream:
    """The built-in mock: its engine is loaded by its first request (`OnFirstUse`: the
    `mock` preset is configured on every louter, used by few)."""
    offload = config.performance.offload_bytes
    return Upstream(backend, OnFirstUse(partial(_mock_transport, backend, clock, offload)), [])


def _mock_transport(backend: Backend, clock: Callable[[], float], offload: int) -> Transport:
    from louter.mock.transport import MockTransport  # noqa: PLC0415 - see `_mock`

    return MockTransport(backend, clock=clock, offload=offload)


Factory = Callable[[Backend, Config, Callable[[], float], Deadlines], Upstream]
FACTORIES: Mapping[str, Factory] = {**dict.fromkeys(DIALECTS, _network), "mock": _mock}


def open_upstreams(
    config: Config, clock: Callable[[], float], deadlines: Deadlines
) -> dict[str, Upstream]:
    return {b.name: FACTORIES[b.protocol](b, config, clock, deadlines) for b in config.backends}
