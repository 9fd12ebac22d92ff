"""Length-prefixed frames over a stream socket: the supervisor-worker control channel.

A frame is a 4-byte big-endian length and that many bytes; control messages are JSON
objects (orjson). Frames are bounded (`MAX_FRAME`): a larger one is an error, never a
buffer that grows without limit.
"""

from __future__ import annotations

import struct
from typing import Any

import orjson
import trio

HEADER = struct.Struct("!I")
MAX_FRAME = 64 * 1024 * 1024


class ChannelClosed(Exception):
    """The other side closed the channel (or sent something that is not a frame)."""


def frame(data: bytes) -> bytes:
    return HEADER.pack(len(data)) + data


class FrameReader:
    """Frames from a trio stream, one at a time."""

    def __init__(self, stream: trio.abc.ReceiveStream, limit: int = MAX_FRAME) -> None:
        self._stream = stream
        self._limit = limit
        self._buffer = bytearray()

    async def _fill(self, size: int) -> None:
        while len(self._buffer) < size:
            data = await self._stream.receive_some(max(65536, size - len(self._buffer)))
            if not data:
                raise ChannelClosed("the other side closed the channel")
            self._buffer += data

    async def receive(self) -> bytes:
        await self._fill(HEADER.size)
        (size,) = HEADER.unpack_from(self._buffer)
        if size > self._limit:
            raise ChannelClosed(f"a frame of {size} bytes is over the {self._limit} limit")
        await self._fill(HEADER.size + size)
        data = bytes(self._buffer[HEADER.size : HEADER.size + size])
        del self._buffer[: HEADER.size + size]
        return data


class Channel:
    """JSON messages both ways over one stream; sends are serialised by a lock (several
    tasks answer on the same channel)."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self._reader = FrameReader(stream)
        self._lock = trio.Lock()

    async def send(self, message: dict[str, Any]) -> None:
        data = frame(orjson.dumps(message))
        async with self._lock:
            try:
                await self.stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise ChannelClosed(str(exc)) from exc

    async def receive(self) -> dict[str, Any]:
        try:
            data = await self._reader.receive()
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ChannelClosed(str(exc)) from exc
        message = orjson.loads(data)
        if not isinstance(message, dict):
            raise ChannelClosed("a control message is not a JSON object")
        return message

    async def aclose(self) -> None:
        await self.stream.aclose()
