"""Which session a request belongs to, and the `x-session-id` every answer carries.

A session is named by the first of these a request carries:

    x-session-id                        any client (the seeds' header)
    x-claude-code-session-id            Claude Code, one per run
    session-id                          Codex CLI, one per thread
    x-gemini-api-privileged-user-id     gemini-cli sends no session id: its installation id

then by the client's louter key (`key:NAME`, with auth on), else it is "default". With
auth on, sessions are kept apart per key: two keys naming the same session id get two
sessions. A malformed `x-session-id` is refused (400); a malformed header of an agent's
own is skipped (it is not the person's mistake).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from louter.errors import ConversionError

if TYPE_CHECKING:
    from louter.http.message import HttpRequest, Responder
    from louter.proxy.exchange import Exchange

EXPLICIT = "x-session-id"
AGENT_HEADERS = ("x-claude-code-session-id", "session-id", "x-gemini-api-privileged-user-id")
DEFAULT = "default"
_ID = re.compile(r"[A-Za-z0-9._:@+-]{1,128}")
HEADER = b"x-session-id: "


def session_id(request: HttpRequest, key_name: str | None) -> str:
    """The request's session id (see the module docstring); `ConversionError` for a
    malformed `x-session-id`."""
    headers = request.headers
    explicit = headers.get(EXPLICIT)
    if explicit is not None:
        if _ID.fullmatch(explicit) is None:
            raise ConversionError(
                f"{EXPLICIT} must be 1-128 letters, digits or . _ : @ + - (got "
                f"{len(explicit)} characters)"
            )
        return explicit
    for name in AGENT_HEADERS:
        value = headers.get(name)
        if value is not None and _ID.fullmatch(value) is not None:
            return value
    return DEFAULT if key_name is None else "key:" + key_name


def store_key(session: str, key_name: str | None) -> str:
    """Where a session lives in the store: scoped by the client's louter key, if any."""
    return f"session:{key_name or ''}:{session}"


def tag(exchange: Exchange, request: HttpRequest, responder: Responder) -> None:
    """Name the request's session (`exchange.session`) and put `x-session-id` on its
    answer. Called before and after client-key auth (a key may name the session); a
    malformed `x-session-id` leaves the header off and fails later, in `SessionStage`."""
    key = exchange.key
    try:
        found = session_id(request, key.name if key is not None else None)
    except ConversionError:
        return
    exchange.session = found
    responder.extra = HEADER + found.encode("ascii") + b"\r\n"
