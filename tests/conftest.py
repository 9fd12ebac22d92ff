"""Shared fixtures: start louter in-process on 127.0.0.1:0 inside the test's nursery."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import pytest
import trio

from louter.config import Config, load_config, parse_config
from louter.proxy.app import build_context, serve
from tests.llama import llama_server
from tests.sdk import sdk  # noqa: F401 - a fixture, registered here for every test module

StartLouter = Callable[..., Awaitable[str]]


@pytest.fixture
def start_louter(nursery: trio.Nursery) -> StartLouter:
    """`await start_louter(config_toml=None, *, backend="mock", log_file=None, env={})`
    starts louter and returns its base URL (`http://127.0.0.1:PORT`)."""

    async def start(
        config_toml: str | Config | None = None,
        *,
        backend: str | None = None,
        log_file: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> str:
        env = env or {}
        if isinstance(config_toml, Config):
            config = config_toml
        elif config_toml is None:
            config = load_config(None, env)
        else:
            config = parse_config(config_toml, path="test.toml", env=env)
        default = backend or (config.backends[0].name if config.source else "mock")
        ctx = build_context(config, default_backend=default, log_file=log_file)
        port = await nursery.start(serve, ctx, "127.0.0.1", 0)
        return f"http://127.0.0.1:{port}"

    return start


llama_url = pytest.fixture(scope="session")(llama_server)
