"""Usage for streams whose client did not ask for it (usage accounting on).

An OpenAI-style backend (Chat Completions, legacy Completions) reports a stream's usage
only with `stream_options.include_usage`. When accounting needs it and the client did
not ask, louter asks (`ask_usage`) and takes the extra final chunk (`choices: []` and a
`usage` object) out of what the client receives (`UsageChunkFilter`), so the client sees
the stream it asked for while the journal tap still reads every byte. Events pass on at
their boundaries: a piece of an event is held only until its end arrives.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

_EVENT = re.compile(rb".*?(?:\r\n\r\n|\n\n)", re.S)


def ask_usage(body: dict[str, Any]) -> bool:
    """Add `stream_options.include_usage` to a streamed request without it; True when
    added (its answer's usage chunk is then the client's to be spared)."""
    if body.get("stream") is not True:
        return False
    options = body.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage") is True:
        return False
    body["stream_options"] = {
        **(options if isinstance(options, dict) else {}),
        "include_usage": True,
    }
    return True


def _boundary(data: bytes) -> int:
    """Where the last complete event in `data` ends (0: none does)."""
    lf, crlf = data.rfind(b"\n\n"), data.rfind(b"\r\n\r\n")
    return max(lf + 2 if lf >= 0 else 0, crlf + 4 if crlf >= 0 else 0)


def usage_only(event: bytes) -> bool:
    """Whether an SSE event is the usage chunk: `choices: []` beside a `usage` object."""
    for line in event.splitlines():
        if line.startswith(b"data:"):
            try:
                data = orjson.loads(line[5:])
            except orjson.JSONDecodeError:
                return False
            return (
                isinstance(data, dict)
                and data.get("choices") == []
                and isinstance(data.get("usage"), dict)
            )
    return False


class UsageChunkFilter:
    """Stream bytes in, the same bytes out without the usage chunk."""

    __slots__ = ("_rest",)

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._rest + chunk if self._rest else chunk
        end = _boundary(data)
        self._rest = data[end:]
        return self._complete(data[:end])

    def flush(self) -> bytes:
        rest, self._rest = self._rest, b""
        return b"" if usage_only(rest) else rest

    @staticmethod
    def _complete(events: bytes) -> bytes:
        if b'"usage"' not in events:
            return events
        return b"".join(e for e in _EVENT.findall(events) if not usage_only(e))
