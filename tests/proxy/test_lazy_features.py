"""A feature that is not configured costs nothing, memory included: its code is not even
imported. A louter built from a bare config (what the `louter` command imports, then its
context) loads none of the gateway stages, the mock, the probes or prometheus-client; the
same build with every one of them configured loads them all, the mock its first request,
prometheus-client the first scrape (so the names checked are real modules, and the check
can fail)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

BACKEND = '[backends.up]\nurl = "http://127.0.0.1:9"\nprotocol = "openai"\n'
FEATURES = """
[limits.default]
rpm = 600
[usage]
db = "{db}"
[cache]
enabled = true
[loop_detection]
[[processors]]
kind = "system_prompt"
text = "Answer briefly."
"""
# feature -> the module only it needs
LAZY = {
    "limits": "louter.proxy.limits",
    "usage": "louter.proxy.accounting.stage",
    "cache": "louter.proxy.cache.stage",
    "loop guards": "louter.proxy.loop_guard",
    "processors": "louter.proxy.processors",
    "processors' config": "louter.processor_config",
}
BUILD = """
import sys
import louter.cli.louter, louter.cli.serve
from louter.config import parse_config
from louter.proxy.app import build_context
config = parse_config(sys.stdin.read(), path="c.toml", env={{}})
ctx = build_context(config, default_backend="up")
{then}
print(" ".join(sys.modules))
"""


def _modules(config: str, then: str = "") -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", BUILD.format(then=then)],
        input=config,
        env={**os.environ},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


def test_a_bare_louter_imports_no_feature_it_does_not_use() -> None:
    loaded = _modules(BACKEND)
    for feature, module in LAZY.items():
        assert module not in loaded, f"{module} is imported without {feature}"
    assert "louter.mock.engine" not in loaded  # the `mock` preset: until its first request
    assert "louter.convert.probe.model" not in loaded  # the probes are the CLIs'
    assert "prometheus_client" not in loaded  # until the first scrape of /metrics


@pytest.mark.parametrize("feature", sorted(LAZY))
def test_a_configured_feature_is_loaded(feature: str, tmp_path: os.PathLike[str]) -> None:
    loaded = _modules(BACKEND + FEATURES.format(db=f"{tmp_path}/usage.db"))
    assert LAZY[feature] in loaded


def test_the_first_scrape_loads_prometheus_client() -> None:
    loaded = _modules(BACKEND, then="assert b'backend_up' in ctx.metrics.render()")
    assert "prometheus_client" in loaded


ASK_THE_MOCK = """
import trio
async def ask():
    transport = ctx.upstreams["mock"].transport
    body = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'
    answer = await transport.request("/v1/chat/completions", [], body, first_byte_timeout=5)
    assert answer.status == 200 and b"choices" in await answer.read()
trio.run(ask)
"""


def test_the_first_request_to_the_mock_loads_it() -> None:
    assert "louter.mock.engine" in _modules(BACKEND, then=ASK_THE_MOCK)
