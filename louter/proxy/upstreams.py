"""Runtime backends: each configured `Backend` with its open transport and auth headers.

Protocol → factory is a dict (no if/elif ladder on provider names); a new backend dialect
plugs in by adding an entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from louter.config import Backend, Config
from louter.http.message import HeaderList
from louter.http.upstream import Transport, open_transport
from louter.mock.transport import MockTransport


@dataclass(frozen=True, slots=True)
class Upstream:
    backend: Backend
    transport: Transport
    headers: HeaderList  # sent with every request: content type and credentials


def _openai(backend: Backend, config: Config, clock: Callable[[], float]) -> Upstream:
    headers: HeaderList = [(b"content-type", b"application/json")]
    if backend.api_key:
        headers.append((b"authorization", b"Bearer " + backend.api_key.encode("latin-1")))
    transport = open_transport(
        backend.url, connect_timeout=config.performance.connect_timeout_seconds
    )
    return Upstream(backend, transport, headers)


def _mock(backend: Backend, config: Config, clock: Callable[[], float]) -> Upstream:
    return Upstream(backend, MockTransport(backend, clock=clock), [])


FACTORIES: Mapping[str, Callable[[Backend, Config, Callable[[], float]], Upstream]] = {
    "openai": _openai,
    "mock": _mock,
}


def open_upstreams(config: Config, clock: Callable[[], float]) -> dict[str, Upstream]:
    return {b.name: FACTORIES[b.protocol](b, config, clock) for b in config.backends}
