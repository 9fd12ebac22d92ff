"""The conversion core: pure functions and state objects between wire formats.

Everything under `louter.convert` is sans-io: dicts, bytes and str in, dicts, bytes and
str out. No trio, httpx, sockets, files, clock, randomness or environment; ids and
timestamps are passed in. Streaming stages are objects with `feed()`/`flush()` that give
the same output however their input is split. `tests/test_layers.py` enforces the imports
and pins `__all__`.
"""

from __future__ import annotations

from louter.convert.openai.stream_parser import StreamAssembler
from louter.convert.sse import SSEDecoder, SSEEvent, encode_event

__all__ = ["SSEDecoder", "SSEEvent", "StreamAssembler", "encode_event"]
