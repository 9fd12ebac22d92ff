"""Journal taps for same-dialect streams: they read the passing bytes (never change them)
and assemble the answer the JSONL log records (design §8), and, once the stream is over,
the same answer in the neutral model for the pipeline's recorders (`answer`: no second
parse of the stream, nothing more per chunk)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from louter.convert.collect import StreamCollector, stream_view
from louter.convert.dialect import DIALECTS, OPENAI
from louter.convert.model import Response
from louter.convert.openai import chunks as typed
from louter.convert.openai.stream_parser import StreamAssembler, bulk_array
from louter.convert.sse import SSEDecoder, SSEEvent
from louter.errors import ConversionError

# A text watcher (a loop guard reading a passthrough stream, `proxy/watch.py`): told the
# content pieces of each block read, whether a tool call has begun and whether the
# answer has finished
Watch = Callable[[list[str], bool, bool], None]


class OpenAITap:
    """An OpenAI SSE stream, checked and assembled a network chunk at a time: the complete
    events in each chunk are parsed together (`StreamAssembler.feed_block`), so a chunk
    that is not valid stream data raises before it is passed on. A CRLF stream goes
    through the SSE decoder instead. `max_text`: see `StreamAssembler`."""

    def __init__(self, *, max_text: int | None = None) -> None:
        self._assembler = StreamAssembler(max_text)
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

    def watch(self, watcher: Watch) -> None:
        """Tell `watcher` the text of each block fed from now on (`Watch`)."""
        self._assembler.watch = watcher

    @property
    def finished(self) -> bool:
        """A finish reason or the terminator has passed."""
        return self._assembler.finished

    @property
    def identity(self) -> tuple[str | None, str | None]:
        """The stream's `id` and `model`, as its first chunk gave them."""
        return self._assembler.identity

    def result(self) -> dict[str, Any]:
        if self._decoder is not None:
            for event in self._decoder.flush():
                self._assembler.feed(event)
        elif self._rest.strip():
            self._assembler.feed_block(self._rest)
        self._rest = b""
        return self._assembler.result()

    def answer(self) -> Response | None:
        """The stream's answer in the neutral model, read from the assembly (as a whole
        `chat.completion` would be); None unless it finished and nothing was cut."""
        view = self.result()
        finish = view["finish_reason"]
        if view["error"] is not None or view.get("truncated") or finish is None:
            return None
        message = {
            "content": view["content"],
            "reasoning_content": view.get("reasoning_content"),
            "tool_calls": view["tool_calls"],
        }
        whole = {
            "id": view["id"],
            "model": view["model"],
            "choices": [{"message": message, "finish_reason": finish}],
            "usage": view["usage"],
        }
        try:
            return OPENAI.parse_response(whole, _no_ids)
        except ConversionError:
            return None


class OpenAIUsageTap:
    """An OpenAI SSE stream whose assembled answer nobody reads (no bodies in the log):
    every block of events is still checked before it is passed on, but only each
    chunk's `usage` is decoded (`chunks.usages`), not the answer.

    The blocks are kept (up to `KEEP_BYTES`) for the one case that needs more: a stream
    that ends without a usable usage, whose text then gives the token estimate (it is
    assembled from them at the end). Past `KEEP_BYTES`, or at a block of any other shape
    (CRLF, comments, `event:` lines), it becomes an `OpenAITap` fed with what it kept:
    the same checks and result, at the assembler's cost.

    Watched (`watch`: a loop guard reads the stream's text), each chunk's choices are
    decoded too, just the keys the watcher needs (`chunks.texts`: the text, a tool call's
    start, the finish), and the text handed on: still no assembly. A block that ends the
    stream (`[DONE]`) is not watched: an answer whose end has arrived is passed on
    whole, so its last text need not be read (the benchmark's 100-event stream arrives
    as one such block: see README, Loop detection)."""

    KEEP_BYTES = 128 * 1024

    def __init__(self, *, max_text: int | None = None) -> None:
        self._max_text = max_text
        self._rest = b""
        self._kept: list[bytes] = []
        self._kept_bytes = 0
        self._usage: Any = None
        self._events = 0
        self._done = False
        self._full: OpenAITap | None = None
        self._watch: Watch | None = None
        self._calling = False  # (watched) a tool call has begun
        self._finished = False  # (watched) a finish reason has passed

    def feed(self, chunk: bytes) -> None:
        if self._full is not None:
            self._full.feed(chunk)
            return
        data = self._rest + chunk if self._rest else chunk
        end = data.rfind(b"\n\n") + 2
        if b"\r" in data or (end == 1 and len(data) + self._kept_bytes > self.KEEP_BYTES):
            self._assemble(data)
            return
        if end == 1:  # no event ends in it yet
            self._rest = data
            return
        block, self._rest = data[:end], data[end:]
        if not self._read(block):
            self._rest = b""
            self._assemble(block + data[end:])

    def _read(self, block: bytes) -> bool:
        """Check `block` and take its usage; False when it needs the assembler."""
        if self._kept_bytes + len(block) > self.KEEP_BYTES:
            return False
        bulk = bulk_array(block)
        if bulk is None:
            return False
        array, count, done = bulk
        watch = self._watch if not done else None  # the answer ends here: nothing to cut
        found = typed.usages(array) if watch is None else typed.texts(array)
        if found is None or len(found) != count:
            return False
        for usage in found:
            if usage.usage is not None:
                self._usage = usage.usage
        self._events += count
        self._done = self._done or done
        self._kept.append(block)
        self._kept_bytes += len(block)
        if watch is not None:
            pieces = self._texts(found)  # type: ignore[arg-type]
            watch(pieces, self._calling, self.finished)
        return True

    def _texts(self, chunks: list[typed.TextChunk]) -> list[str]:
        """The content pieces of choice 0, as the assembler takes them; notes a tool
        call's start and the finish."""
        pieces: list[str] = []
        for chunk in chunks:
            for choice in chunk.choices or ():
                if choice.index != 0:
                    continue
                if choice.finish_reason is not None:
                    self._finished = True
                delta = choice.delta
                if delta is None:
                    continue
                text = delta.content or delta.refusal
                if text and type(text) is str:
                    pieces.append(text)
                if delta.tool_calls is not None or delta.function_call is not None:
                    self._calling = self._calling or _begins_call(delta)
        return pieces

    def _assemble(self, data: bytes) -> None:
        """From here on, the full tap (fed the blocks kept so far, then `data`)."""
        full = self._full = OpenAITap(max_text=self._max_text)
        kept, self._kept, self._kept_bytes = self._kept, [], 0
        for block in kept:
            full.feed(block)
        if self._watch is not None:  # the kept blocks' text was told already
            full.watch(self._watch)
        full.feed(data)

    @property
    def complete(self) -> bool:
        return self._done if self._full is None else self._full.complete

    def watch(self, watcher: Watch) -> None:
        """Tell `watcher` the text of each block fed from now on (`Watch`): each block's
        choices are decoded too (still no assembly)."""
        if self._full is not None:
            self._full.watch(watcher)
        self._watch = watcher

    @property
    def finished(self) -> bool:
        """(Watched) a finish reason or the terminator has passed."""
        if self._full is not None:
            return self._full.finished
        return self._done or self._finished

    @property
    def identity(self) -> tuple[str | None, str | None]:
        """The stream's `id` and `model`: assembled from the blocks kept (the full tap
        from then on; read once, when a watcher ends the stream)."""
        return self.full().identity

    def full(self) -> OpenAITap:
        """From now on the full tap, fed what was kept (a reader needs the text)."""
        if self._full is None:
            rest, self._rest = self._rest, b""
            self._assemble(rest)
        assert self._full is not None
        return self._full

    def answer(self) -> Response | None:
        """The assembled answer (a recorder needs it)."""
        return self.full().answer()

    def result(self) -> dict[str, Any]:
        usage = self._usage
        if self._full is None and not self._rest.strip() and _counts(usage):
            return {"usage": usage, "chunks": self._events, "done": self._done}
        if self._full is None:
            self._assemble(self._rest)
        assert self._full is not None
        return self._full.result()


def _begins_call(delta: typed.TextDelta) -> bool:
    """Whether a delta holds a tool-call fragment (the assembler's test: an object in
    `tool_calls`, or a legacy `function_call` object)."""
    calls = delta.tool_calls
    if isinstance(calls, list) and any(isinstance(call, dict) for call in calls):
        return True
    return isinstance(delta.function_call, dict)


def _counts(usage: Any) -> bool:
    """Whether a usage object gives the tokens (`usage.view_tokens` reads these)."""
    return (
        isinstance(usage, dict)
        and isinstance(usage.get("prompt_tokens"), int)
        and isinstance(usage.get("completion_tokens"), int)
    )


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
        self._ended = False  # the decoder and the parser have been flushed

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
        if self._over_array:
            return {**stream_view(self._collector), "truncated": True, "bytes": self._array_bytes}
        self._end()
        return stream_view(self._collector)

    def answer(self) -> Response | None:
        """The stream's answer in the neutral model (the collector's); None unless it
        finished normally and nothing was cut."""
        collector = self._collector
        if self._over_array:
            return None
        self._end()
        if collector.truncated or collector.error is not None or collector.finish_reason is None:
            return None
        return collector.result()

    @property
    def _over_array(self) -> bool:
        return self._array_cap is not None and self._array_bytes > self._array_cap

    def _end(self) -> None:
        """Flush the decoder (or parse the array) and the parser, once."""
        if self._ended:
            return
        self._ended = True
        if self._decoder is not None:
            for event in self._decoder.flush():
                self._collect(event)
        else:
            for item in _array_items(b"".join(self._array)):
                self._collect(SSEEvent(data=orjson.dumps(item).decode()))
        for neutral in self._parser.flush():
            self._collector.feed(neutral)

    def _collect(self, event: SSEEvent) -> None:
        for neutral in self._parser.feed(event):
            self._collector.feed(neutral)


def _array_items(raw: bytes) -> list[Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return []
    return data if isinstance(data, list) else [data]


def fit_view(view: dict[str, Any], max_text: int) -> dict[str, Any]:
    """A tap's result kept to `max_text` characters of content, reasoning and tool-call
    arguments (in that order) for the log, when the tap kept more for a recorder."""
    calls = view.get("tool_calls") or []
    texts = [view.get("content") or "", view.get("reasoning_content") or ""]
    arguments = [call["function"]["arguments"] for call in calls]
    seen = sum(map(len, texts)) + sum(map(len, arguments))
    if seen <= max_text:
        return view
    room = max_text
    out = dict(view)
    for key, text in zip(("content", "reasoning_content"), texts, strict=True):
        if key in out:
            out[key] = text[: max(room, 0)]
        room -= len(text)
    out["tool_calls"] = []
    for call, text in zip(calls, arguments, strict=True):
        kept = text[: max(room, 0)]
        room -= len(text)
        out["tool_calls"].append({**call, "function": {**call["function"], "arguments": kept}})
    out["truncated"] = True
    out["text_chars"] = view.get("text_chars", seen)
    return out
