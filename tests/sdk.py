"""The official client SDKs, pointed at a louter on loopback, closed at the test's end."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import anthropic
import openai
import pytest
import trio
from google import genai
from google.genai import types

T = TypeVar("T")
# A 1x1 PNG, made here rather than read from disk.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
PNG_B64 = base64.b64encode(PNG).decode()


class Clients:
    """SDK clients made by a test; they own connection pools, so all are closed after it."""

    def __init__(self) -> None:
        self.made: list[Any] = []

    def gemini(self, base: str, version: str = "v1beta") -> genai.Client:
        options = types.HttpOptions(base_url=base, api_version=version)
        return self._keep(genai.Client(api_key="test-key", http_options=options))

    def openai(self, base: str) -> openai.OpenAI:
        return self._keep(openai.OpenAI(base_url=base + "/v1", api_key="sk-test", max_retries=0))

    def anthropic(self, base: str) -> anthropic.Anthropic:
        return self._keep(anthropic.Anthropic(base_url=base, api_key="sk-ant", max_retries=0))

    def _keep(self, client: T) -> T:
        self.made.append(client)
        return client


@pytest.fixture
def sdk() -> Iterator[Clients]:
    clients = Clients()
    yield clients
    for client in clients.made:
        client.close()


async def in_thread(fn: Callable[[], T]) -> T:
    """Run a sync SDK call without blocking the trio loop that serves louter."""
    return await trio.to_thread.run_sync(fn)
