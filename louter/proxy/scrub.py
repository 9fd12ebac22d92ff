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
_SHORTEST_KEY = 4  # shorter "keys" ("-", "no") are placeholders: replacing them mangles text


def _addresses(url: str) -> list[str]:
    """The spellings of `url`'s address an error message may use, longest first."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 80)
    bracketed = f"[{host}]" if ":" in host else host
    found = {url, f"{parts.scheme}://{parts.netloc}", parts.netloc, f"{bracketed}:{port}"}
    found.update((bracketed, host))
    return sorted((a for a in found if a), key=len, reverse=True)


def _pattern(addresses: Iterable[str]) -> re.Pattern[str]:
    """Any of `addresses` as a whole word: host "api" must not eat "rapid"."""
    ordered = sorted(set(addresses), key=len, reverse=True)
    either = "|".join(map(re.escape, ordered)) or r"(?!)"  # none: matches nothing
    return re.compile(r"(?<![\w.-])(?:" + either + r")(?![\w-]|\.\w)")


class Scrubber:
    """`scrubber(text, backend)`: `text` without configured keys, and without backend
    addresses: each replaced by its backend's name. `backend` (the one that failed)
    names its own address first, for backends sharing one."""

    __slots__ = ("_keys", "_all", "_names", "_own")

    def __init__(self, backends: Iterable[Backend] = ()) -> None:
        names: dict[str, str] = {}
        own: dict[str, re.Pattern[str]] = {}
        keys: set[str] = set()
        for backend in backends:
            for key in (backend.api_key, *backend.api_keys):
                if key and len(key) >= _SHORTEST_KEY:
                    keys.add(key)
            if backend.url:
                addresses = _addresses(backend.url)
                for address in addresses:
                    names.setdefault(address, backend.name)
                own[backend.name] = _pattern(addresses)
        self._keys = sorted(keys, key=len, reverse=True)
        self._names = names
        self._own = own
        self._all = _pattern(names)

    def __call__(self, text: str, backend: str | None = None) -> str:
        for key in self._keys:
            if key in text:
                text = text.replace(key, REDACTED)
        if backend is not None and backend in self._own:
            text = self._own[backend].sub(lambda _: backend, text)
        if self._names:
            text = self._all.sub(lambda m: self._names[m.group(0)], text)
        return text

    @property
    def has_keys(self) -> bool:
        return bool(self._keys)

    def keys_out(self, data: bytes) -> bytes:
        """`data` without configured keys (an upstream's error answer, relayed)."""
        for key in self._keys:
            encoded = key.encode("utf-8")
            if encoded in data:
                data = data.replace(encoded, REDACTED.encode("ascii"))
        return data
