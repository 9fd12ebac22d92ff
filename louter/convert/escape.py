"""Escaping for what a dialect writes into an upstream request line or header (pure).

A model that goes into a URL path is percent-escaped (`path_segment`): a `/` in it never
starts a new path segment. Client values forwarded as header values (keys,
`anthropic-version`, ...) go through `header_value`. The model-name check and the
transports' last checks are in `louter/http/target.py`.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from louter.errors import LouterError

__all__ = ["header_value", "path_segment"]

_PATH_SAFE = re.compile(r"[A-Za-z0-9._:@+/\-]*")
# CTLs except HTAB (allowed in field values), and DEL
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def path_segment(model: str) -> str:
    """`model` escaped for one URL path segment (`/` -> `%2F`; `:`, `@`, `+` kept)."""
    if _PATH_SAFE.fullmatch(model) is not None:  # every checked client name: cheap
        return model.replace("/", "%2F")
    return quote(model, safe=":@+")


def header_value(text: str, name: str) -> bytes:
    """A client's value for header `name`, to forward upstream; 400 if it is not latin-1
    or holds a control character."""
    try:
        value = text.encode("latin-1")
    except UnicodeEncodeError:
        raise LouterError(f"header {name} is not latin-1 text", status_hint=400) from None
    if _BAD_VALUE.search(value) is not None:
        raise LouterError(f"header {name} contains a control character", status_hint=400)
    return value
