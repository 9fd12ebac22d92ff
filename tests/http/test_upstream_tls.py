"""The https:// upstream transport (httpx), opened by a backend's first request."""

from __future__ import annotations

import pytest

from louter.errors import UpstreamError
from louter.http.deadlines import Deadlines
from louter.http.upstream import open_transport
from tests.proxy.test_faults import closed_port


async def test_https_backend_transport_opens_on_first_use_and_maps_errors() -> None:
    port = closed_port()
    url = f"https://user:secret@127.0.0.1:{port}"
    transport = open_transport(url, connect_timeout=2, deadlines=Deadlines(10), label="cloud")
    try:
        with pytest.raises(UpstreamError) as info:
            await transport.request("/v1/chat/completions", [], b"{}", first_byte_timeout=5)
        assert info.value.status_hint == 502
        message = info.value.message
        assert message.startswith("cloud: ")  # the backend's config name, never its address
        for secret in ("127.0.0.1", str(port), "secret", "https://"):
            assert secret not in message
    finally:
        await transport.aclose()


async def test_https_transport_of_an_unused_backend_closes_cleanly() -> None:
    transport = open_transport(
        "https://example.invalid", connect_timeout=2, deadlines=Deadlines(10)
    )
    await transport.aclose()  # never opened: nothing to close, no network
