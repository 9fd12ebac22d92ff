"""A typed, partial decoder of Chat Completions stream chunks (msgspec), for the journal's
`StreamAssembler` and the lean usage tap.

The assembler reads a few keys of each `chat.completion.chunk`; a generic JSON parser
builds every key of every chunk (the id, object, created, model, system fingerprint of
all 100 chunks of a stream) as Python objects only to drop them. msgspec decodes into
structs holding just the keys read, and still checks the whole text is JSON (skipped
values included): measured on the benchmark's 100-event stream, 228 -> 65 us for the
assembler's keys, 25 us for the usage alone.

A block these types cannot describe (a chunk that is not an object, `choices` that is
not a list of objects, a `delta` that is not an object) is not an error here: `decode`
returns None and the caller takes its generic path, which decides. Text that is not
UTF-8, which msgspec lets through in values it skips, is refused here too. One laxity is
kept: a number beyond the float range (`1e400`: valid JSON syntax, read as infinity by
Python's `json`) passes where orjson refused it.
"""

from __future__ import annotations

from typing import Any

import msgspec


class Delta(msgspec.Struct, gc=False):
    """The keys of a choice's `delta` the assembler reads (absent and null alike: None)."""

    content: Any = None
    refusal: Any = None
    reasoning_content: Any = None
    reasoning: Any = None
    tool_calls: Any = None
    function_call: Any = None


class Choice(msgspec.Struct, gc=False):
    index: Any = 0
    delta: Delta | None = None
    finish_reason: Any = None


class Chunk(msgspec.Struct, gc=False):
    id: Any = None
    model: Any = None
    choices: list[Choice] | None = None
    usage: Any = None
    error: Any = None


class UsageOnly(msgspec.Struct, gc=False):
    """A chunk read for its usage alone (every other value is checked, not built)."""

    usage: Any = None


class TextDelta(msgspec.Struct, gc=False):
    """The keys of a `delta` a text watcher reads: the text, and whether a call begins."""

    content: Any = None
    refusal: Any = None
    tool_calls: Any = None
    function_call: Any = None


class TextChoice(msgspec.Struct, gc=False):
    index: Any = 0
    delta: TextDelta | None = None
    finish_reason: Any = None


class TextChunk(msgspec.Struct, gc=False):
    """A chunk read for its usage and its choice's text (the lean tap a loop guard
    watches: no id, model, reasoning or error built)."""

    usage: Any = None
    choices: list[TextChoice] | None = None


_CHUNKS = msgspec.json.Decoder(list[Chunk])
_USAGES = msgspec.json.Decoder(list[UsageOnly])
_TEXTS = msgspec.json.Decoder(list[TextChunk])


def utf8(array: bytes) -> bool:
    """Whether the text is UTF-8 (checked in full only when it is not ASCII, itself a
    test at memory speed)."""
    if array.isascii():
        return True
    try:
        array.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def decode(array: bytes) -> list[Chunk] | None:
    """A JSON array of chunk objects -> their structs; None when the generic path must
    decide (not JSON, not UTF-8, not these shapes)."""
    try:
        chunks = _CHUNKS.decode(array)
    except msgspec.DecodeError:  # ValidationError is a subclass
        return None
    return chunks if utf8(array) else None


def usages(array: bytes) -> list[UsageOnly] | None:
    """As `decode`, reading only each chunk's `usage`."""
    try:
        chunks = _USAGES.decode(array)
    except msgspec.DecodeError:
        return None
    return chunks if utf8(array) else None


def texts(array: bytes) -> list[TextChunk] | None:
    """As `decode`, reading only each chunk's `usage` and its choices' text."""
    try:
        chunks = _TEXTS.decode(array)
    except msgspec.DecodeError:
        return None
    return chunks if utf8(array) else None
