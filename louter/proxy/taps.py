"""Journal taps for same-dialect streams: they read the passing bytes (never change them)
and assemble the answer the JSONL log records (design §8)."""

from __future__ import annotations

from typing import Any

import orjson

from louter.convert.collect import StreamCollector, stream_view
from louter.convert.dialect import DIALECTS
from louter.convert.openai.stream_parser import StreamAssembler
from louter.convert.sse import SSEDecoder, SSEEvent


class OpenAITap:
    """An OpenAI SSE stream, checked and assembled a network chunk at a time: the complete
    events in each chunk are parsed together (`StreamAssembler.feed_block`), so a chunk
    that is not valid stream data raises before it is passed on. A CRLF stream goes
    through the SSE decoder instead. `max_text`: see `StreamAssembler`."""

    def __init__(self, *, max_text: int | None = None) -> None:
        self._assembler = StreamAssembler(max_text)
        self.assembler = self._assembler  # read by a loop guard's watch (`proxy/watch.py`)
        self._rest = b""  # the start of an event whose end has not arrived
        self._decoder: SSEDecoder | None = None  # CRLF line ends: decode event by event

    def feed(self, chunk: bytes) -> None:
        if self._decoder is None and b"\r" in chunk:
            self._decoder = SSEDecoder()
            chunk, self._rest = self._rest + chunk, b""
        if self._decoder is not None:
            for event in self._decoder.feed(chunk):
                self._assembler.feed(event)
            return
        data = self._rest + chunk if self._rest else chunk
        end = data.rfind(b"\n\n") + 2
        if end == 1:  # no event ends in it yet
            self._rest = data
            return
        self._rest = data[end:]
        self._assembler.feed_block(data[:end])

    @property
    def complete(self) -> bool:
        return self._assembler.done

    def result(self) -> dict[str, Any]:
        if self._decoder is not None:
            for event in self._decoder.flush():
                self._assembler.feed(event)
        elif self._rest.strip():
            self._assembler.feed_block(self._rest)
            self._rest = b""
        return self._assembler.result()


_ARRAY_PER_CHAR = 4  # a JSON array stream's bytes kept per character of the log's text cap


def _no_ids(n: int) -> str:
    return f"call_{n}"


class DialectTap:
    """Any dialect's stream through its own StreamParser into a neutral collector.

    `sse=False` reads a stream sent as one JSON array (Gemini without `alt=sse`): the
    bytes are kept and parsed at the end, up to `_ARRAY_PER_CHAR` bytes per character of
    `max_text`; past that they are only counted and the result says `truncated`."""

    def __init__(self, dialect: str, *, sse: bool = True, max_text: int | None = None) -> None:
        self._parser = DIALECTS[dialect].stream_parser(_no_ids)
        self._decoder = SSEDecoder() if sse else None
        self._array: list[bytes] = []
        self._array_bytes = 0
        self._array_cap = None if max_text is None else max_text * _ARRAY_PER_CHAR
        self._collector = StreamCollector(max_text)

    def feed(self, chunk: bytes) -> None:
        if self._decoder is None:
            self._array_bytes += len(chunk)
            if self._array_cap is None or self._array_bytes <= self._array_cap:
                self._array.append(chunk)
            elif self._array:
                self._array = []  # too long to keep for the log
            return
        for event in self._decoder.feed(chunk):
            self._collect(event)

    @property
    def complete(self) -> bool:
        return self._collector.done

    def result(self) -> dict[str, Any]:
        if self._decoder is not None:
            for event in self._decoder.flush():
                self._collect(event)
        elif self._array_cap is not None and self._array_bytes > self._array_cap:
            return {**stream_view(self._collector), "truncated": True, "bytes": self._array_bytes}
        else:
            for item in _array_items(b"".join(self._array)):
                self._collect(SSEEvent(data=orjson.dumps(item).decode()))
        for neutral in self._parser.flush():
            self._collector.feed(neutral)
        return stream_view(self._collector)

    def _collect(self, event: SSEEvent) -> None:
        for neutral in self._parser.feed(event):
            self._collector.feed(neutral)


def _array_items(raw: bytes) -> list[Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return []
    return data if isinstance(data, list) else [data]
