"""Journal taps for same-dialect streams: they read the passing bytes (never change them)
and assemble the answer the JSONL log records (design §8)."""

from __future__ import annotations

from typing import Any

import orjson

from louter.convert.collect import StreamCollector, stream_view
from louter.convert.dialects import DIALECTS
from louter.convert.openai_stream import assemble
from louter.convert.sse import SSEDecoder, SSEEvent


class OpenAITap:
    """An OpenAI SSE stream: the chunks are kept as they pass (nothing per chunk on the
    hot path) and assembled once, at the end (`openai_stream.assemble`)."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def feed(self, chunk: bytes) -> None:
        self._chunks.append(chunk)

    @property
    def complete(self) -> bool:
        """`data: [DONE]` has passed (it ends the stream, so it is in the last bytes)."""
        tail = b"".join(self._chunks[-2:])[-64:].rstrip()
        return tail.endswith(b"[DONE]") and tail[:-6].rstrip().endswith(b"data:")

    def result(self) -> dict[str, Any]:
        return assemble(b"".join(self._chunks)).result()


def _no_ids(n: int) -> str:
    return f"call_{n}"


class DialectTap:
    """Any dialect's stream through its own StreamParser into a neutral collector.

    `sse=False` reads a stream sent as one JSON array (Gemini without `alt=sse`): the
    bytes are kept and parsed at the end."""

    def __init__(self, dialect: str, *, sse: bool = True) -> None:
        self._parser = DIALECTS[dialect].stream_parser(_no_ids)
        self._decoder = SSEDecoder() if sse else None
        self._array: list[bytes] = []
        self._collector = StreamCollector()

    def feed(self, chunk: bytes) -> None:
        if self._decoder is None:
            self._array.append(chunk)
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
