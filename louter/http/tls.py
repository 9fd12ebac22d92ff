"""The upstream transport for `https://` backends: httpx (TLS, proxies, compression
handled by a kept library). Imported only when such a backend is configured.

Errors name the backend by its `label` (config name); httpx's own messages are passed on
with the URL, its host and port replaced by the label (they reach clients and the log)."""

from __future__ import annotations

import ssl
from collections.abc import AsyncGenerator
from contextlib import aclosing
from urllib.parse import urlsplit

import httpx
import trio

from louter.errors import UpstreamError
from louter.http.message import HeaderList
from louter.http.target import addresses, header_block, host_header, request_target, scrub


class _HttpxResponse:
    def __init__(
        self, response: httpx.Response, transport: HttpxTransport, idle_timeout: float
    ) -> None:
        self._response = response
        self._transport = transport
        self._label = transport.label
        self._idle_timeout = idle_timeout
        self.status = response.status_code
        self.headers: HeaderList = [
            (name.lower(), value)
            for name, value in response.headers.raw
            if name.lower() != b"content-encoding"
        ]

    ready = False  # what httpx has buffered is not known here

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        try:
            async for chunk in self._response.aiter_bytes():
                yield chunk
        except httpx.HTTPError as exc:
            raise self._transport.error(exc) from exc
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
        label: str = "upstream",
    ) -> None:
        self.label = label
        self.idle_timeout = idle_timeout
        parts = urlsplit(url)
        # no user:password@ (httpx would send it as Basic auth): keys go in headers
        self._origin = f"{parts.scheme}://{host_header(parts.hostname or '', parts.port)}"
        self._prefix = parts.path.rstrip("/")
        self._secrets = addresses(url)
        timeout = httpx.Timeout(connect=connect_timeout, read=None, write=None, pool=None)
        # The proxy and CA bundle come from the config (read from the environment once, in
        # `load_config`); httpx does not look at the environment itself.
        self._client = httpx.AsyncClient(
            timeout=timeout, proxy=proxy, verify=_verify(*ca), trust_env=False
        )

    async def request(
        self,
        path: str,
        headers: HeaderList,
        body: bytes,
        *,
        first_byte_timeout: float,
        method: str = "POST",
    ) -> _HttpxResponse:
        header_block(headers, self.label)
        target = request_target(self._prefix, path, self.label).decode("latin-1")
        request = self._client.build_request(
            method,
            self._origin + target,
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
            raise self.error(exc) from exc
        return _HttpxResponse(response, self, self.idle_timeout)

    def error(self, exc: httpx.HTTPError) -> UpstreamError:
        """httpx's failure as an `UpstreamError` naming the backend, not its address."""
        text = scrub(str(exc), self._secrets, self.label)
        return UpstreamError(f"{self.label}: {type(exc).__name__}: {text}")

    async def aclose(self) -> None:
        await self._client.aclose()
