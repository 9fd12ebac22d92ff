"""Keeps backend addresses and keys out of what clients, the log and `/health` see.

Transport errors say where they failed (a URL, `host:port`), and an upstream's error text
may repeat the key it was sent. A `Scrubber`, built once from the config, replaces every
backend's address with the backend's config name and every configured key with
`[REDACTED]`. It runs on error paths only: a request that succeeds never pays for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from louter.config import Backend
from louter.proxy.journal import REDACTED

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _addresses(url: str) -> list[str]:
    """The spellings of `url`'s address an error message may use, longest first."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 80)
    bracketed = f"[{host}]" if ":" in host else host
    found = {url, f"{parts.scheme}://{parts.netloc}", parts.netloc, f"{bracketed}:{port}"}
    found.update((bracketed, host))
    return sorted((a for a in found if a), key=len, reverse=True)


class Scrubber:
    """`scrubber(text)`: `text` without backend addresses (replaced by the backend's
    name) or configured keys."""

    __slots__ = ("_keys", "_pattern", "_names")

    def __init__(self, backends: Iterable[Backend] = ()) -> None:
        names: dict[str, str] = {}
        keys: set[str] = set()
        for backend in backends:
            if backend.api_key:
                keys.add(backend.api_key)
            if backend.url:
                for address in _addresses(backend.url):
                    names.setdefault(address, backend.name)
        self._names = names
        self._keys = sorted(keys, key=len, reverse=True)
        ordered = sorted(names, key=len, reverse=True)
        # An address counts only as a whole word: host "api" must not eat "rapid".
        self._pattern = (
            re.compile(r"(?<![\w.-])(?:" + "|".join(map(re.escape, ordered)) + r")(?![\w-]|\.\w)")
            if ordered
            else None
        )

    def __call__(self, text: str) -> str:
        for key in self._keys:
            if key in text:
                text = text.replace(key, REDACTED)
        if self._pattern is not None:
            text = self._pattern.sub(lambda m: self._names[m.group(0)], text)
        return text

    def scrub_bytes(self, data: bytes) -> bytes:
        """`data` without configured keys (an upstream's error body, relayed)."""
        for key in self._keys:
            encoded = key.encode("utf-8", "replace")
            if encoded in data:
                data = data.replace(encoded, REDACTED.encode("ascii"))
        return data
