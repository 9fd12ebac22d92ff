"""OpenAI Chat Completions streams -> neutral stream events (`StreamParser`), and the
journal's fast `StreamAssembler` (design §5, §6). The other direction is
`stream_emitter`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from louter.convert.model import (
    IdFactory,
    MessageStart,
    MessageStop,
    ReasoningDelta,
    StreamError,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from louter.convert.openai import chunks as typed
from louter.convert.openai.response import map_finish, parse_usage
from louter.convert.sse import SSEDecoder, SSEEvent
from louter.errors import ConversionError

# ---------------------------------------------------------------------------------------
# Stream assembly (for the JSONL log): SSE events of a Chat Completions stream -> one dict
# ---------------------------------------------------------------------------------------
#
# Only choice 0 is assembled (what the proxy's clients ask for; `n > 1` is not streamed
# by the backends louter targets). Tool-call fragments are keyed by `index`; the first
# non-empty `id` and `name` win because some servers send a new id with every fragment.
# Any chunk carrying an `error` object (llama-server's in-stream errors, surfaced by the
# SSE decoder as `event="error"`) is recorded in `error`. A legacy `delta.function_call`
# is assembled as one more tool call (keyed LEGACY_CALL), a `refusal` as content.

LEGACY_CALL = -1  # the fragment key of a legacy `function_call` delta
_PLAIN_DELTA = frozenset({"role", "content", "refusal"})


@dataclass(slots=True)
class _ToolCallParts:
    """Mutable accumulator for one streamed tool call."""

    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        function = {"name": self.name, "arguments": "".join(self.arguments)}
        return {"id": self.id, "type": "function", "function": function}


class StreamAssembler:
    """Rebuild the complete answer of one OpenAI Chat Completions stream.

    Cheap per chunk: one `orjson.loads` and a few dict lookups. One instance per stream.

    `max_text` bounds the characters kept (content, reasoning, tool-call arguments; for
    the log): text pieces are counted and cut every `_FOLD` pieces, so memory stays
    bounded whatever the stream's length and the per-chunk path does no extra work. The
    result then says `truncated` and the full `text_chars`. None keeps everything.
    """

    __slots__ = (
        "_id", "_model", "_content", "_reasoning", "_tools",
        "_finish_reason", "_usage", "_chunks", "_done", "_error",
        "_max_text", "_kept", "_text_chars", "_folded", "watch",
    )  # fmt: skip

    def __init__(self, max_text: int | None = None) -> None:
        self._id: str | None = None
        self._model: str | None = None
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._tools: dict[int, _ToolCallParts] = {}
        self._finish_reason: str | None = None
        self._usage: dict[str, Any] | None = None
        self._chunks = 0
        self._done = False
        self._error: dict[str, Any] | None = None
        self._max_text = max_text
        self._kept = 0  # characters kept (counted in folds)
        self._text_chars = 0  # characters seen (counted in folds)
        self._folded: tuple[list[str], list[str]] = ([], [])  # kept content, reasoning
        # Told the content pieces of each fed block, whether a tool call has begun and
        # whether the answer has finished (a loop guard reading a passthrough stream);
        # None: nothing to tell
        self.watch: Callable[[list[str], bool, bool], None] | None = None

    @property
    def finished(self) -> bool:
        """A finish reason or the terminator has been seen."""
        return self._done or self._finish_reason is not None

    @property
    def identity(self) -> tuple[str | None, str | None]:
        """The stream's `id` and `model`, as its first chunk gave them."""
        return self._id, self._model

    @property
    def done(self) -> bool:
        """The stream's terminator (`[DONE]`) has been seen."""
        return self._done

    def feed(self, event: SSEEvent) -> None:
        """Take one SSE event of the stream.

        Raises:
            ConversionError: (502) the event's data is not a JSON object (nor `[DONE]`)
                and the event is not an `error` event.
        """
        if event.data == "[DONE]":
            self._done = True
            return
        try:
            chunk = _load_chunk(event.data)
        except ConversionError:
            if event.event != "error":
                raise
            chunk = {"error": {"message": event.data}}
        seen = len(self._content)
        self._absorb(chunk, event.event == "error")
        if self.watch is not None:
            self.watch(self._content[seen:], bool(self._tools), self.finished)
        if self._max_text is not None and len(self._content) + len(self._reasoning) > _FOLD:
            self._fold()

    def feed_block(self, block: bytes) -> None:
        """Take whole SSE events at once (`block` ends at an event boundary, or is the
        stream's end).

        The usual block (only `data: ` lines, one per event, `\\n\\n` between events)
        becomes one JSON array with a single `split`/`join` and is decoded at once into
        the few keys read (`typed.decode`; `orjson.loads` for any other shape of chunk):
        far cheaper than an SSE decoder and a parse per event. Anything
        else (comments, `event:` lines, CRLF, multi-line data, a chunk that is not an
        object) goes through the SSE decoder event by event, with the same result.

        Raises:
            ConversionError: as `feed`.
        """
        bulk = bulk_array(block)
        seen = len(self._content)
        if bulk is not None:
            array, count, done = bulk
            structs = typed.decode(array)  # the keys read, typed: ~3x cheaper than orjson
            if structs is not None and len(structs) == count:
                self.feed_structs(structs, done)
            else:
                parsed = _parse_array(array, count)
                if parsed is None:
                    bulk = None
                else:
                    self.feed_chunks(parsed, done)
        if bulk is not None:
            if self.watch is not None:
                self.watch(self._content[seen:], bool(self._tools), self.finished)
            if self._max_text is not None and len(self._content) + len(self._reasoning) > _FOLD:
                self._fold()
            return
        decoder = SSEDecoder()
        for event in decoder.feed(block):
            self.feed(event)
        for event in decoder.flush():
            self.feed(event)

    def feed_chunks(self, chunks: list[dict[str, Any]], done: bool) -> None:
        """Take a whole stream's chunks, already parsed (see `assemble`). The usual
        chunk (one choice 0, a plain content delta, nothing else to record) only adds
        its text; any other goes through the full `_absorb`."""
        start = 0
        while self._id is None and start < len(chunks):  # the first chunks: id and model
            self._absorb(chunks[start], False)
            start += 1
        append = self._content.append
        plain = 0
        for chunk in chunks[start:] if start else chunks:
            # The plain chunk's shape, read with as few operations as Python allows
            # (about half the cost of a `get`-and-`type` check per level).
            try:
                (choice,) = chunk["choices"]
                delta = choice["delta"]
            except (KeyError, TypeError, ValueError):
                self._absorb(chunk, False)
                continue
            if (
                type(delta) is not dict
                or not delta.keys() <= _PLAIN_DELTA
                or choice.get("finish_reason") is not None
                or choice.get("index", 0) != 0
                or "usage" in chunk
                or "error" in chunk
            ):
                self._absorb(chunk, False)
                continue
            text = delta.get("content") or delta.get("refusal")
            if text and type(text) is str:
                append(text)
            plain += 1
        self._chunks += plain
        self._done = self._done or done

    def feed_structs(self, structs: list[typed.Chunk], done: bool) -> None:
        """As `feed_chunks`, for chunks decoded into their structs (`typed.decode`):
        the same result, read from attributes."""
        start = 0
        while self._id is None and start < len(structs):  # the first chunks: id and model
            self._absorb_struct(structs[start])
            start += 1
        append = self._content.append
        plain = 0
        for chunk in structs[start:] if start else structs:
            choices = chunk.choices
            if (
                choices is None
                or len(choices) != 1
                or chunk.usage is not None
                or chunk.error is not None
            ):
                self._absorb_struct(chunk)
                continue
            choice = choices[0]
            delta = choice.delta
            if (
                delta is None
                or choice.finish_reason is not None
                or choice.index != 0
                or delta.tool_calls is not None
                or delta.reasoning_content is not None
                or delta.reasoning is not None
                or delta.function_call is not None
            ):
                self._absorb_struct(chunk)
                continue
            text = delta.content or delta.refusal
            if text and type(text) is str:
                append(text)
            plain += 1
        self._chunks += plain
        self._done = self._done or done

    def _absorb_struct(self, chunk: typed.Chunk) -> None:
        """`_absorb` for a decoded struct (absent and null keys alike are None)."""
        self._chunks += 1
        if self._id is None:
            self._id = chunk.id or None
        if self._model is None:
            self._model = chunk.model or None
        if chunk.usage is not None:
            self._usage = chunk.usage
        if chunk.error is not None:
            self._error = _error_object(chunk.error)
        for choice in chunk.choices or ():
            if choice.index == 0:
                self._choice_struct(choice)

    def _choice_struct(self, choice: typed.Choice) -> None:
        if choice.finish_reason is not None:
            self._finish_reason = choice.finish_reason
        delta = choice.delta
        if delta is None:
            return
        content = delta.content or delta.refusal
        if content and type(content) is str:
            self._content.append(content)
        reasoning = _string(delta.reasoning_content) or _string(delta.reasoning)
        if reasoning:
            self._reasoning.append(reasoning)
        self._tool_fragments(_list(delta.tool_calls))
        legacy = delta.function_call
        if isinstance(legacy, dict):
            self._tool_fragments([{"index": LEGACY_CALL, "function": legacy}])

    def _absorb(self, chunk: dict[str, Any], error_event: bool) -> None:
        self._chunks += 1
        if self._id is None:
            self._id = chunk.get("id") or None
        if self._model is None:
            self._model = chunk.get("model") or None
        usage = chunk.get("usage")
        if usage is not None:
            self._usage = usage
        error = chunk.get("error")
        if error is not None or error_event:
            self._error = _error_object(chunk if error is None else error)
        choices = chunk.get("choices")
        if type(choices) is list:
            for choice in choices:
                if type(choice) is dict and choice.get("index", 0) == 0:
                    self._choice(choice)

    def _fold(self) -> None:
        """Count the text pieces gathered since the last fold; keep them within the cap."""
        for kept, pieces in zip(self._folded, (self._content, self._reasoning), strict=True):
            text = self._keep("".join(pieces))
            if text:
                kept.append(text)
            pieces.clear()

    def _keep(self, text: str) -> str:
        self._text_chars += len(text)
        assert self._max_text is not None
        room = self._max_text - self._kept
        if len(text) > room:
            text = text[: max(room, 0)]
        self._kept += len(text)
        return text

    @property
    def truncated(self) -> bool:
        return self._text_chars > self._kept

    def result(self) -> dict[str, Any]:
        """The assembled answer: see the section comment above for the keys."""
        if self._max_text is not None:
            self._fold()
        content, reasoning = self._folded
        out: dict[str, Any] = {
            "id": self._id,
            "model": self._model,
            "content": "".join(content or self._content),
        }
        if reasoning or self._reasoning:
            out["reasoning_content"] = "".join(reasoning or self._reasoning)
        out["tool_calls"] = [self._tools[index].as_dict() for index in sorted(self._tools)]
        out["finish_reason"] = self._finish_reason
        out["usage"] = self._usage
        out["chunks"] = self._chunks
        out["done"] = self._done
        out["error"] = self._error
        if self.truncated:
            out["truncated"] = True
            out["text_chars"] = self._text_chars
        return out

    def _choice(self, choice: dict[str, Any]) -> None:
        finish_reason = choice.get("finish_reason")
        if finish_reason is not None:
            self._finish_reason = finish_reason
        delta = choice.get("delta")
        if type(delta) is not dict:
            return
        content = delta.get("content") or delta.get("refusal")
        if content and type(content) is str:
            self._content.append(content)
        if delta.keys() <= _PLAIN_DELTA:
            return  # the usual delta: a role and/or a content (or refusal) fragment
        reasoning = _string(delta.get("reasoning_content")) or _string(delta.get("reasoning"))
        if reasoning:
            self._reasoning.append(reasoning)
        self._tool_fragments(_list(delta.get("tool_calls")))
        legacy = delta.get("function_call")
        if isinstance(legacy, dict):
            self._tool_fragments([{"index": LEGACY_CALL, "function": legacy}])

    def _tool_fragments(self, fragments: list[Any]) -> None:
        for position, fragment in enumerate(fragments):
            if not isinstance(fragment, dict):
                continue
            index = _key(fragment, position)
            parts = self._tools.get(index)
            if parts is None:
                parts = self._tools[index] = _ToolCallParts()
            if not parts.id:
                parts.id = _string(fragment.get("id"))
            function = fragment.get("function")
            if not isinstance(function, dict):
                continue
            if not parts.name:
                parts.name = _string(function.get("name"))
            arguments = _arguments(function.get("arguments"))
            if arguments and self._max_text is not None:
                arguments = self._keep(arguments)
            if arguments:
                parts.arguments.append(arguments)


_FOLD = 256  # text pieces gathered before they are counted against `max_text`
_DATA = b"data: "
_BETWEEN = b"\n\ndata: "


def bulk_array(body: bytes) -> tuple[bytes, int, bool] | None:
    """A block of plain `data: ` events as one JSON array text, its event count and
    whether `[DONE]` ends it; None for any other block."""
    if not body.startswith(_DATA) or b"\r" in body:
        return None
    # One scan of the bytes: the events' data (an event whose data is not one JSON value,
    # or a line that is not `data: `, makes the array invalid or its length differ). The
    # block is split as it is and only its first and last pieces are trimmed: the bytes
    # are copied twice (split, join), not once more per trim.
    events = body.split(_BETWEEN)
    events[-1] = events[-1].rstrip(b"\n")
    count = len(events)
    done = count > 1 and events[-1] == b"[DONE]"
    if done:
        events.pop()
        count -= 1
    elif count == 1 and events[0] == b"data: [DONE]":
        return b"[]", 0, True
    if count == 1:
        events[0] = b"[" + events[0][len(_DATA) :] + b"]"
    else:
        events[0] = b"[" + events[0][len(_DATA) :]
        events[-1] += b"]"
    return b",".join(events), count, done


def _parse_array(array: bytes, count: int) -> list[dict[str, Any]] | None:
    """The chunks of `bulk_array`'s text, when it holds `count` JSON objects."""
    try:
        chunks = orjson.loads(array)
    except orjson.JSONDecodeError:
        return None
    if len(chunks) != count or not all(type(chunk) is dict for chunk in chunks):
        return None
    return chunks


def _load_chunk(data: str) -> dict[str, Any]:
    try:
        chunk = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ConversionError(f"stream chunk is not JSON: {exc}", status_hint=502) from exc
    if not isinstance(chunk, dict):
        raise ConversionError("stream chunk is not a JSON object", status_hint=502)
    return chunk


def _error_object(error: Any) -> dict[str, Any]:
    return error if isinstance(error, dict) else {"message": str(error)}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _string(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _key(fragment: dict[str, Any], position: int) -> int:
    """A tool-call fragment's `index` (its position in the list when absent or bad)."""
    index = fragment.get("index")
    return index if isinstance(index, int) and not isinstance(index, bool) else position


def _arguments(value: Any) -> str:
    """An arguments fragment: JSON text; an object (some servers send one) as JSON."""
    if isinstance(value, str):
        return value
    return "" if value is None else orjson.dumps(value).decode()


# ---------------------------------------------------------------------------------------
# StreamParser: a backend's chunks -> neutral events
# ---------------------------------------------------------------------------------------
#
# Tool-call fragments are keyed by the backend's `index` (a legacy `function_call` delta
# by LEGACY_CALL); the first non-empty id and name win. A call starts (ToolCallStart) once
# its name is known and takes the next neutral index then, so calls are numbered in the
# order they start even when a later call's name arrives first; argument fragments that
# came before the name are replayed after the start. `refusal` text is text.
#
# Calls end and the stream stops at `[DONE]`: the usage chunk of
# `stream_options.include_usage` comes after the finish_reason chunk, so MessageStop
# waits for it. A stream that ends without `[DONE]` but with a finish reason is accepted;
# one without either is a StreamError, as is a tool call whose name never came. An
# `error` chunk (or an `event: error`, or llama-server's bare JSON error line) ends the
# stream with a StreamError carrying the error's `code` when it is an HTTP status.


class _Call:
    __slots__ = ("index", "id", "name", "pending")

    def __init__(self) -> None:
        self.index = -1  # the neutral index, once started
        self.id = ""
        self.name = ""
        self.pending: list[str] = []  # argument fragments that came before the name

    @property
    def started(self) -> bool:
        return self.index >= 0


class StreamParser:
    """OpenAI `chat.completion.chunk` events -> neutral stream events. One per response."""

    def __init__(self, ids: IdFactory) -> None:
        self._ids = ids
        self._started = False
        self._calls: dict[int, _Call] = {}
        self._next_index = 0
        self._finish: str | None = None
        self._usage: Usage | None = None
        self._ended = False

    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        """Take one SSE event; the neutral events it completes.

        Raises:
            ConversionError: (502) the event's data is not a JSON object (nor `[DONE]`).
        """
        if self._ended:
            return []
        if event.data == "[DONE]":
            return self._end()
        try:
            chunk = _load_chunk(event.data)
        except ConversionError:
            if event.event != "error":
                raise
            return self._fail({}, StreamError(event.data or "the backend reported an error"))
        error = chunk.get("error")
        if error is not None or event.event == "error":
            return self._fail(chunk, _stream_error(chunk if error is None else error))
        out = self._start(chunk)
        usage = parse_usage(chunk.get("usage"))
        if usage is not None:
            self._usage = usage
        for choice in _list(chunk.get("choices")):
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                self._choice(choice, out)
        return out

    def flush(self) -> list[StreamEvent]:
        """End of stream: MessageStop if a finish reason came, else a StreamError."""
        if self._ended:
            return []
        if self._finish is None:
            return self._fail({}, StreamError("the backend's stream ended before it finished"))
        return self._end()

    def _start(self, chunk: dict[str, Any]) -> list[StreamEvent]:
        if self._started:
            return []
        self._started = True
        return [MessageStart(_string(chunk.get("id")) or None, _string(chunk.get("model")) or None)]

    def _fail(self, chunk: dict[str, Any], error: StreamError) -> list[StreamEvent]:
        self._ended = True
        return [*self._start(chunk), error]

    def _end(self) -> list[StreamEvent]:
        if any(not call.started for call in self._calls.values()):
            return self._fail({}, StreamError("the backend sent a tool call without a name"))
        self._ended = True
        out = self._start({})
        out.extend(ToolCallEnd(index) for index in sorted(c.index for c in self._calls.values()))
        finish = map_finish(self._finish, bool(self._calls))
        out.append(MessageStop(finish, self._usage))
        return out

    def _choice(self, choice: dict[str, Any], out: list[StreamEvent]) -> None:
        delta = choice.get("delta")
        if isinstance(delta, dict):
            reasoning = _string(delta.get("reasoning_content")) or _string(delta.get("reasoning"))
            if reasoning:
                out.append(ReasoningDelta(reasoning))
            content = _string(delta.get("content")) or _string(delta.get("refusal"))
            if content:
                out.append(TextDelta(content))
            for position, fragment in enumerate(_list(delta.get("tool_calls"))):
                if isinstance(fragment, dict):
                    self._fragment(fragment, _key(fragment, position), out)
            legacy = delta.get("function_call")
            if isinstance(legacy, dict):
                self._fragment({"function": legacy}, LEGACY_CALL, out)
        finish = choice.get("finish_reason")
        if isinstance(finish, str):
            self._finish = finish

    def _fragment(self, fragment: dict[str, Any], key: int, out: list[StreamEvent]) -> None:
        call = self._calls.get(key)
        if call is None:
            call = self._calls[key] = _Call()
        call.id = call.id or _string(fragment.get("id"))
        function = fragment.get("function")
        if isinstance(function, dict):
            call.name = call.name or _string(function.get("name"))
            arguments = _arguments(function.get("arguments"))
            if arguments:
                call.pending.append(arguments)
        if call.name and not call.started:
            call.index = self._next_index
            self._next_index += 1
            out.append(ToolCallStart(call.index, call.id or self._ids(call.index), call.name))
        if call.started and call.pending:
            out.extend(ToolCallDelta(call.index, piece) for piece in call.pending)
            call.pending.clear()


def _stream_error(error: Any) -> StreamError:
    error = _error_object(error)
    code = error.get("code")
    status = code if isinstance(code, int) and 400 <= code <= 599 else 502
    return StreamError(str(error.get("message") or error), status)
