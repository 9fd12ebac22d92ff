"""The upstream transport for `https://` backends: httpx (TLS, proxies, compression
handled by a kept library). Imported only when such a backend is configured."""

from __future__ import annotations

import ssl
from collections.abc import AsyncGenerator
from contextlib import aclosing

import httpx
import trio

from louter.errors import UpstreamError
from louter.http.message import HeaderList


class _HttpxResponse:
    def __init__(self, response: httpx.Response, label: str, idle_timeout: float) -> None:
        self._response = response
        self._label = label
        self._idle_timeout = idle_timeout
        self.status = response.status_code
        self.headers: HeaderList = [
            (name.lower(), value)
            for name, value in response.headers.raw
            if name.lower() != b"content-encoding"
        ]

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        try:
            async for chunk in self._response.aiter_bytes():
                yield chunk
        except httpx.HTTPError as exc:
            raise UpstreamError(f"{self._label}: {type(exc).__name__}: {exc}") from exc
        finally:
            await self._response.aclose()

    async def read(self) -> bytes:
        """The whole body, waiting at most `idle_timeout` for each piece of it."""
        parts: list[bytes] = []
        async with aclosing(self.chunks()) as chunks:
            while True:
                with trio.move_on_after(self._idle_timeout) as scope:
                    chunk = await anext(chunks, None)
                if scope.cancelled_caught:
                    raise UpstreamError(
                        f"{self._label}: no data for {self._idle_timeout:g}s"
                        " in the middle of the answer",
                        status_hint=504,
                    )
                if chunk is None:
                    return b"".join(parts)
                parts.append(chunk)

    async def aclose(self) -> None:
        await self._response.aclose()


def _verify(ca_file: str | None, ca_dir: str | None) -> ssl.SSLContext | bool:
    """What httpx reads from SSL_CERT_FILE / SSL_CERT_DIR when it trusts the environment."""
    if ca_file or ca_dir:
        return ssl.create_default_context(cafile=ca_file, capath=None if ca_file else ca_dir)
    return True


class HttpxTransport:
    """httpx for TLS and proxied upstreams; the first-byte deadline is ours, reads are unbounded."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float,
        idle_timeout: float = 300.0,
        proxy: str | None = None,
        ca: tuple[str | None, str | None] = (None, None),
    ) -> None:
        self.label = url
        self.idle_timeout = idle_timeout
        self._base = url.rstrip("/")
        timeout = httpx.Timeout(connect=connect_timeout, read=None, write=None, pool=None)
        # The proxy and CA bundle come from the config (read from the environment once, in
        # `load_config`); httpx does not look at the environment itself.
        self._client = httpx.AsyncClient(
            timeout=timeout, proxy=proxy, verify=_verify(*ca), trust_env=False
        )

    async def request(
        self, path: str, headers: HeaderList, body: bytes, *, first_byte_timeout: float
    ) -> _HttpxResponse:
        request = self._client.build_request(
            "POST",
            self._base + path,
            headers=[*headers, (b"accept-encoding", b"identity")],
            content=body,
        )
        try:
            with trio.fail_after(first_byte_timeout):
                response = await self._client.send(request, stream=True)
        except trio.TooSlowError:
            raise UpstreamError(
                f"{self.label}: no response within {first_byte_timeout:g}s", status_hint=504
            ) from None
        except httpx.TimeoutException as exc:
            raise UpstreamError(f"{self.label}: connect timed out", status_hint=504) from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(f"{self.label}: {type(exc).__name__}: {exc}") from exc
        return _HttpxResponse(response, self.label, self.idle_timeout)

    async def aclose(self) -> None:
        await self._client.aclose()
