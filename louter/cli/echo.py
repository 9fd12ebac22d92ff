"""What `louter --log-level` prints per exchange on stderr.

- `info` (`-v`, `--verbose`): one line per journal entry (direction, backend, model,
  status, latency).
- `debug` (`-vv`): those lines, and after each the body it carries, in the seed's words:
  `[DEBUG] Request body: …` (the client's), `[DEBUG] OpenAI request: …` (sent upstream,
  named by the backend's dialect), `[DEBUG] OpenAI response: …` (the upstream's answer),
  `[DEBUG] Response body: …` (what the client got). Secrets are redacted and a long body
  is cut with a marker saying how long it was.
- `warning`, `error`: only the `error` entries.

Without `--log-level` / `-v` nothing is echoed and the journal does no work for it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any

import orjson

from louter.cli.screen import Part, Screen
from louter.convert.dialect import DIALECTS
from louter.proxy.journal import REDACTED, Entry


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


VERBOSITY = {1: "info", 2: "debug"}  # -v, -vv
BODY_LIMIT = 4000  # characters of a body printed before the cut marker

DIRECTION_STYLE = {
    "client_request": "cyan",
    "backend_request": "blue",
    "backend_response": "green",
    "client_response": "bold green",
    "error": "bold red",
}
# each dialect's name in reports (its `title`: "OpenAI", ...), and the mock's
DIALECT_NAMES = {name: d.title for name, d in DIALECTS.items()} | {"mock": "Mock"}
_LABELS: Mapping[str, Callable[[str], str]] = {
    "client_request": lambda dialect: "Request body",
    "backend_request": lambda dialect: f"{DIALECT_NAMES.get(dialect, dialect)} request",
    "backend_response": lambda dialect: f"{DIALECT_NAMES.get(dialect, dialect)} response",
    "client_response": lambda dialect: "Response body",
}

# JSON string members whose value is a credential, and credential-shaped tokens anywhere.
_SECRET_MEMBER = re.compile(
    r'("(?:api[_-]?key|apikey|x-api-key|x-goog-api-key|authorization|password|secret|'
    r'client_secret|access_token|refresh_token)"\s*:\s*)"(?:[^"\\]|\\.)*"',
    re.IGNORECASE,
)
_SECRET_TOKEN = re.compile(r"\b(Bearer\s+)[A-Za-z0-9._~+/=-]+|\bsk-[A-Za-z0-9_-]{8,}")


def level_of(log_level: str | None, verbose: int) -> str | None:
    """`--log-level` wins; else `-v` / `-vv`; None: echo nothing."""
    if log_level is not None:
        return log_level
    return VERBOSITY.get(min(verbose, 2))


def redact(text: str) -> str:
    text = _SECRET_MEMBER.sub(lambda m: f'{m.group(1)}"{REDACTED}"', text)
    return _SECRET_TOKEN.sub(lambda m: (m.group(1) or "") + REDACTED, text)


def body_text(payload: Any, limit: int = BODY_LIMIT) -> str:
    """A payload as one line of text: redacted, cut after `limit` characters."""
    if isinstance(payload, bytes | bytearray | memoryview):
        raw = bytes(payload)
    elif isinstance(payload, str):
        raw = payload.encode("utf-8", "replace")
    else:
        raw = orjson.dumps(payload)
    # Redact a generous head only (a multi-megabyte body stays cheap), then cut.
    head = raw[: limit * 4].decode("utf-8", "replace")
    text = redact(head.replace("\n", " ").replace("\r", " "))
    if len(text) > limit or len(raw) > limit * 4:
        return f"{text[:limit]}… [cut, {len(raw)} bytes]"
    return text


def summary_line(entry: Entry) -> list[Part]:
    """An entry's line, in parts: its direction coloured on a terminal."""
    direction = entry["direction"]
    latency = entry.get("latency_ms")
    return [
        (f"{entry['timestamp'][11:23]} {entry['request_id']} ", ""),
        (f"{direction:<16}", DIRECTION_STYLE.get(direction, "")),
        (
            f" {entry['format']:<7} {entry.get('backend') or '-'} {entry.get('model') or '-'} "
            f"{entry.get('status') or ''} {'' if latency is None else f'{latency:.1f}ms'}"
            f"{' ' + str(entry['error']) if entry.get('error') else ''}",
            "",
        ),
    ]


def echo_to(screen: Screen, level: str) -> Callable[[Entry], None]:
    """The journal's echo for `level` (a LogLevel value)."""
    errors_only = level in ("warning", "error")

    def echo(entry: Entry) -> None:
        if errors_only and entry["direction"] != "error":
            return
        screen.line(summary_line(entry))
        label = _LABELS.get(entry["direction"])
        payload = entry.get("payload")
        if label is not None and payload is not None:
            screen.line([(f"[DEBUG] {label(entry['format'])}: {body_text(payload)}", "")])

    return echo
