"""How louter reaches its backends (issue 25): per-backend timeouts, the `openrouter`
preset, and the outbound proxy from HTTP_PROXY / HTTPS_PROXY / NO_PROXY.

The proxy tests use a tiny forward proxy on 127.0.0.1 that records what it is asked:
an absolute-form request (`POST http://host/path`) for an http:// backend, which it
answers itself; `CONNECT host:443` for an https:// one, which it refuses.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import httpx
import orjson
import pytest
import trio

from louter.config import Proxies, load_config, parse_config
from louter.errors import ConfigError
from louter.proxy.app import build_context
from tests.conftest import StartLouter
from tests.fakes import FakeUpstream, Hang, JSONReply, chat_completion

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}

# --------------------------------------------------------------------------- timeouts


async def test_backend_timeout_beats_the_performance_one(
    start_louter: StartLouter, nursery: trio.Nursery
) -> None:
    hanging = FakeUpstream(Hang())
    await nursery.start(hanging.serve)
    toml = (
        "[performance]\ntimeout_seconds = 60\n"
        f'[backends.slow]\nurl = "{hanging.url}"\ntimeout_seconds = 0.5\n'
    )
    base = await start_louter(toml)
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        started = time.monotonic()
        reply = await http.post("/v1/chat/completions", json=CHAT)
        took = time.monotonic() - started
    assert reply.status_code == 504, reply.text
    assert "0.5s" in reply.json()["error"]["message"]
    assert took < 3


def test_backend_connect_timeout_reaches_its_transport() -> None:
    toml = (
        "[performance]\nconnect_timeout_seconds = 10\n"
        '[backends.a]\nurl = "http://127.0.0.1:9"\nconnect_timeout_seconds = 0.25\n'
        '[backends.b]\nurl = "http://127.0.0.1:9"\n'
    )
    ctx = build_context(parse_config(toml, path="t.toml", env={}), default_backend="a")
    assert ctx.upstreams["a"].transport.connect_timeout == 0.25  # type: ignore[attr-defined]
    assert ctx.upstreams["b"].transport.connect_timeout == 10  # type: ignore[attr-defined]
    assert ctx.deadlines.interval <= 0.25 / 4  # the watchdog wakes often enough


@pytest.mark.parametrize("key", ["timeout_seconds", "connect_timeout_seconds"])
def test_backend_timeouts_must_be_positive(key: str) -> None:
    with pytest.raises(ConfigError, match=f"key '{key}': must be greater than 0"):
        parse_config(f'[backends.a]\nurl = "http://a"\n{key} = 0\n', path="t.toml", env={})


# --------------------------------------------------------------------------- openrouter


def test_openrouter_preset() -> None:
    config = load_config(None, {"OPENROUTER_API_KEY": "or-key"})
    backend = config.backend("openrouter")
    assert (backend.protocol, backend.url) == ("openai", "https://openrouter.ai/api")
    assert (backend.api_key, backend.key_env) == ("or-key", "OPENROUTER_API_KEY")
    assert load_config(None, {}).backend("openrouter").api_key is None


async def test_openrouter_requests_go_to_api_v1_chat_completions(
    start_louter: StartLouter, nursery: trio.Nursery
) -> None:
    """Same base path as the preset (`…/api`), on a fake: the request lands on
    `/api/v1/chat/completions` with the key from OPENROUTER_API_KEY."""
    fake = FakeUpstream(JSONReply(chat_completion("routed")))
    await nursery.start(fake.serve)
    toml = f'[backends.openrouter]\nurl = "{fake.url}/api"\n'
    base = await start_louter(toml, env={"OPENROUTER_API_KEY": "or-key"})
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        reply = await http.post("/v1/chat/completions", json=CHAT)
    assert reply.status_code == 200, reply.text
    (request,) = fake.requests
    assert request.path == "/api/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer or-key"


# --------------------------------------------------------------------------- proxies


def test_proxies_from_the_environment() -> None:
    env = {
        "HTTP_PROXY": "http://upper:1",
        "http_proxy": "http://lower:2",  # lower case wins (curl's order)
        "ALL_PROXY": "proxy.corp:3128",  # no scheme: http://
        "NO_PROXY": "localhost, .internal.example,10.0.0.1:8000",
    }
    proxies = load_config(None, env).proxies
    assert (proxies.http, proxies.https) == ("http://lower:2", "http://proxy.corp:3128")
    assert proxies.for_url("http://api.example.com/v1") == "http://lower:2"
    assert proxies.for_url("https://api.example.com") == "http://proxy.corp:3128"
    assert proxies.for_url("http://localhost:11212") is None
    assert proxies.for_url("https://llm.internal.example") is None
    assert proxies.for_url("https://internal.example") is None
    assert proxies.for_url("http://10.0.0.1:8000") is None
    assert proxies.for_url("http://10.0.0.1:8001") == "http://lower:2"
    assert Proxies().for_url("http://x") is None
    for local in (
        "http://localhost:1",
        "http://127.0.0.2:1",
        "http://[::1]:1",
        "https://a.localhost",
    ):
        assert proxies.for_url(local) is None
    assert (
        load_config(None, {"NO_PROXY": "*", "HTTPS_PROXY": "http://p:1"}).proxies.for_url(
            "https://api.openai.com"
        )
        is None
    )


def test_a_bad_proxy_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="HTTPS_PROXY: must be an http:// or https:// proxy"):
        load_config(None, {"HTTPS_PROXY": "socks5://127.0.0.1:1080"})


@dataclass
class ForwardProxy:
    """Records each request's first line and headers; answers absolute-form requests
    with a chat completion, refuses CONNECT."""

    seen: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED):
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started(self.port)
        await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, stream: trio.SocketStream) -> None:
        data = b""
        async with stream:
            while b"\r\n\r\n" not in data:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            line, *rest = head.decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in rest)}
            while len(body) < int(headers.get("content-length", 0)):
                body += await stream.receive_some(65536)
            self.seen.append((line, headers, body))
            if line.startswith("CONNECT "):
                await stream.send_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
                return
            answer = orjson.dumps(chat_completion("via the proxy"))
            await stream.send_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n"
                b"content-length: %d\r\n\r\n%b" % (len(answer), answer)
            )


@pytest.fixture
async def forward_proxy(nursery: trio.Nursery) -> ForwardProxy:
    proxy = ForwardProxy()
    await nursery.start(proxy.serve)
    return proxy


async def test_an_http_backend_goes_through_http_proxy(
    start_louter: StartLouter, forward_proxy: ForwardProxy
) -> None:
    toml = '[backends.far]\nurl = "http://llm.far.example:8000/v1"\napi_key = "k"\n'
    base = await start_louter(toml, env={"HTTP_PROXY": forward_proxy.url})
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        reply = await http.post("/v1/chat/completions", json=CHAT)
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["message"]["content"] == "via the proxy"
    ((line, headers, body),) = forward_proxy.seen
    assert line == "POST http://llm.far.example:8000/v1/chat/completions HTTP/1.1"
    assert headers["host"] == "llm.far.example:8000"
    assert headers["authorization"] == "Bearer k"
    assert orjson.loads(body)["model"] == "m"


async def test_this_machine_is_reached_directly(
    start_louter: StartLouter, forward_proxy: ForwardProxy, nursery: trio.Nursery
) -> None:
    """A local llama-server stays direct with a proxy set and no NO_PROXY (a proxy
    elsewhere could not reach it): as before proxies were honoured for http://."""
    direct = FakeUpstream(JSONReply(chat_completion("direct")))
    await nursery.start(direct.serve)
    env = {"HTTP_PROXY": forward_proxy.url}
    base = await start_louter(f'[backends.near]\nurl = "{direct.url}"\n', env=env)
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        reply = await http.post("/v1/chat/completions", json=CHAT)
    assert reply.json()["choices"][0]["message"]["content"] == "direct"
    assert forward_proxy.seen == [] and len(direct.requests) == 1


async def test_an_https_backend_tunnels_through_https_proxy(
    start_louter: StartLouter, forward_proxy: ForwardProxy
) -> None:
    toml = '[backends.cloud]\nurl = "https://api.cloud.example"\napi_key = "k"\n'
    env = {"HTTPS_PROXY": forward_proxy.url, "NO_PROXY": "127.0.0.1"}
    base = await start_louter(toml, env=env)
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        reply = await http.post("/v1/chat/completions", json=CHAT)
    assert reply.status_code == 502  # the proxy refused the tunnel
    ((line, _, _),) = forward_proxy.seen
    assert line == "CONNECT api.cloud.example:443 HTTP/1.1"


async def test_the_ca_bundle_comes_from_the_config_not_httpx() -> None:
    """httpx no longer reads the environment; SSL_CERT_FILE / SSL_CERT_DIR reach it
    through the config instead."""
    import ssl

    import certifi

    from louter.http.tls import HttpxTransport, _verify

    proxies = load_config(None, {"SSL_CERT_FILE": certifi.where()}).proxies
    assert (proxies.ca_file, proxies.ca_dir) == (certifi.where(), None)
    assert isinstance(_verify(proxies.ca_file, proxies.ca_dir), ssl.SSLContext)
    assert _verify(None, None) is True
    with pytest.raises(FileNotFoundError):
        _verify("/nonexistent/ca.pem", None)
    transport = HttpxTransport("https://x.example", connect_timeout=1, proxy="http://p:1")
    try:
        assert transport._client._trust_env is False
    finally:
        await transport.aclose()
