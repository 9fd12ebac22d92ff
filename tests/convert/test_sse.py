"""The SSE decoder and encoder: spec table, deviations, re-chunking invariance."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from louter.convert.sse import SSEDecoder, SSEEvent, encode_event
from louter.errors import ConversionError
from tests.paths import SAMPLES  # noqa: E402

E = SSEEvent
JSON_ERROR = b'{"error":{"code":500,"message":"boom"}}'
JE = E(JSON_ERROR.decode(), "error")


def decode(chunks: list[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    return events + decoder.flush()


def outcome(chunks: list[bytes]) -> list[SSEEvent] | str:
    try:
        return decode(chunks)
    except ConversionError:
        return "error"


CASES: list[tuple[str, bytes, list[SSEEvent]]] = [
    ("empty stream", b"", []),
    ("simple", b"data: hello\n\n", [E("hello")]),
    ("no space after colon", b"data:hello\n\n", [E("hello")]),
    ("only one space stripped", b"data:  hello\n\n", [E(" hello")]),
    ("tab is not stripped", b"data:\tx\n\n", [E("\tx")]),
    ("colon in value", b"data: a:b\n\n", [E("a:b")]),
    ("multi-line data", b"data: a\ndata: b\ndata:\n\n", [E("a\nb\n")]),
    ("empty data line dispatches", b"data:\n\n", [E("")]),
    ("data without colon", b"data\n\n", [E("")]),
    ("two events", b"data: a\n\ndata: b\n\n", [E("a"), E("b")]),
    ("extra blank lines", b"\n\ndata: a\n\n\n\n", [E("a")]),
    ("data-less event not dispatched", b"event: x\nid: 7\n\n", []),
    ("data-less event resets type", b"event: x\n\ndata: y\n\n", [E("y", id=None)]),
    ("comment", b": ping\n\ndata: x\n\n", [E("x")]),
    ("comment inside event", b"data: a\n: c\ndata: b\n\n", [E("a\nb")]),
    ("bare colon comment", b":\ndata: x\n\n", [E("x")]),
    ("event field", b"event: delta\ndata: x\n\n", [E("x", event="delta")]),
    ("event type is per event", b"event: a\ndata: 1\n\ndata: 2\n\n", [E("1", "a"), E("2")]),
    ("empty event type", b"event:\ndata: x\n\n", [E("x")]),
    ("id persists", b"id: 1\ndata: a\n\ndata: b\n\n", [E("a", id="1"), E("b", id="1")]),
    ("empty id resets", b"id: 1\ndata: a\n\nid\ndata: b\n\n", [E("a", id="1"), E("b", id="")]),
    ("id with NUL ignored", b"id: 1\nid: a\0b\ndata: x\n\n", [E("x", id="1")]),
    ("retry", b"retry: 3000\ndata: x\n\n", [E("x", retry=3000)]),
    ("retry not digits", b"retry: 3s\ndata: x\n\nretry: -1\ndata: y\n\n", [E("x"), E("y")]),
    ("retry only block", b"retry: 5\n\ndata: x\n\ndata: y\n\n", [E("x", retry=5), E("y")]),
    ("unknown field", b"foo: bar\ndata: x\n\n", [E("x")]),
    ("space before colon", b"data : x\ndata: y\n\n", [E("y")]),
    ("line without colon", b"hello\ndata: x\n\n", [E("x")]),
    ("CRLF", b"data: a\r\ndata: b\r\n\r\ndata: c\r\n\r\n", [E("a\nb"), E("c")]),
    ("CR", b"data: a\rdata: b\r\rdata: c\r\r", [E("a\nb"), E("c")]),
    ("mixed endings", b"data: a\r\n\rdata: b\n\r\n", [E("a"), E("b")]),
    ("BOM stripped", b"\xef\xbb\xbfdata: x\n\n", [E("x")]),
    ("only one BOM stripped", b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\ndata: y\n\n", [E("y")]),
    ("BOM later is content", b"data: a\n\n\xef\xbb\xbfdata: b\n\n", [E("a")]),
    ("UTF-8", "data: héllo ✓ 😀\n\n".encode(), [E("héllo ✓ 😀")]),
    ("DONE", b"data: [DONE]\n\n", [E("[DONE]")]),
    ("no final blank line", b"data: a\n\ndata: x", [E("a"), E("x")]),
    ("no final blank line, LF", b"data: x\ndata: y\n", [E("x\ny")]),
    ("no final blank line, CR", b"event: e\rdata: x\r", [E("x", "e")]),
    ("JSON error line", b"data: a\n\n" + JSON_ERROR + b"\n", [E("a"), JE]),
    ("JSON error, no newline", JSON_ERROR, [JE]),
    ("JSON error mid-event", b"data: a\n" + JSON_ERROR + b"\n\n", [JE, E("a")]),
]


@pytest.mark.parametrize(("raw", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_decode_table(raw: bytes, expected: list[SSEEvent]) -> None:
    assert decode([raw]) == expected


def test_events_are_dispatched_by_feed_not_held_for_flush() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\n") == []
    assert decoder.feed(b"\n") == [E("x")]
    assert decoder.feed(b"data: y\n\nda") == [E("y")]
    assert decoder.feed(b"ta: z") == []
    assert decoder.flush() == [E("z")]


def test_cr_at_chunk_end_then_lf_is_one_line_ending() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"data: b\r") == []
    assert decoder.feed(b"") == []
    assert decoder.feed(b"\n\r") == [E("a\nb")]
    assert decoder.feed(b"\ndata: c\r\r") == [E("c")]


def test_multibyte_split_across_chunks() -> None:
    raw = "data: é😀\n\n".encode()
    decoder = SSEDecoder()
    events = [event for byte in range(len(raw)) for event in decoder.feed(raw[byte : byte + 1])]
    assert events == [E("é😀")]


@pytest.mark.parametrize("raw", [b"data: \xc3", b"data: ok\n\ndata: \xf0\x9f\x98"])
def test_flush_rejects_truncated_utf8(raw: bytes) -> None:
    decoder = SSEDecoder()
    decoder.feed(raw)
    with pytest.raises(ConversionError) as info:
        decoder.flush()
    assert info.value.status_hint == 502


def test_feed_rejects_invalid_utf8() -> None:
    with pytest.raises(ConversionError) as info:
        SSEDecoder().feed(b"data: \xff\n\n")
    assert info.value.status_hint == 502


# --- encoder -----------------------------------------------------------------------------

ENCODE_CASES = [
    (("x",), b"data: x\n\n"),
    (("x", "delta"), b"event: delta\ndata: x\n\n"),
    ((b'{"a":1}', "message_start"), b'event: message_start\ndata: {"a":1}\n\n'),
    (("",), b"data: \n\n"),
    (("a\nb",), b"data: a\ndata: b\n\n"),
    ((b"a\r\nb\rc\n",), b"data: a\ndata: b\ndata: c\ndata: \n\n"),
    (("é",), "data: é\n\n".encode()),
]


@pytest.mark.parametrize(("args", "expected"), ENCODE_CASES)
def test_encode_event(args: tuple[str | bytes, ...], expected: bytes) -> None:
    assert encode_event(*args) == expected  # type: ignore[arg-type]


def test_encode_event_rejects_line_break_in_type() -> None:
    with pytest.raises(ConversionError) as info:
        encode_event("x", "a\nb")
    assert info.value.status_hint == 500


@given(
    st.text(),
    st.none() | st.text(min_size=1).filter(lambda s: "\n" not in s and "\r" not in s),
)
def test_encode_decode_round_trip(data: str, event: str | None) -> None:
    expected = E(data.replace("\r\n", "\n").replace("\r", "\n"), event or None)
    assert decode([encode_event(data, event)]) == [expected]


# --- re-chunking invariance --------------------------------------------------------------


def _fixtures() -> dict[str, bytes]:
    fixtures = {path.name: path.read_bytes() for path in sorted(SAMPLES.glob("*.sse"))}
    assert len(fixtures) >= 4
    chat = fixtures["04-chat-stream.sse"]
    fixtures["04-crlf"] = chat.replace(b"\n", b"\r\n")
    fixtures["04-cr"] = chat.replace(b"\n", b"\r")
    fixtures["04-bom-no-final-blank"] = b"\xef\xbb\xbf" + chat.rstrip(b"\n")
    fixtures["table"] = b"\n\n".join(raw for _, raw, _ in CASES[1:-3] if b"\xef" not in raw)
    fixtures["utf8-crlf"] = "event: é\r\ndata: ✓😀\r\n: c\r\n\r\n".encode() * 3
    return fixtures


FIXTURES = _fixtures()


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_rechunking_invariance(name: str) -> None:
    raw = FIXTURES[name]
    whole = decode([raw])
    assert whole, "fixture should produce events"
    assert decode([raw[i : i + 1] for i in range(len(raw))]) == whole
    for cut in range(len(raw) + 1):
        assert decode([raw[:cut], raw[cut:]]) == whole, cut


def _split(raw: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(c % (len(raw) + 1) for c in cuts), len(raw)]
    return [raw[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


@given(st.sampled_from(sorted(FIXTURES)), st.lists(st.integers(min_value=0), max_size=40))
def test_rechunking_invariance_random_splits(name: str, cuts: list[int]) -> None:
    raw = FIXTURES[name]
    assert decode(_split(raw, cuts)) == decode([raw])


TOKENS = [
    b"data",
    b"event",
    b"id",
    b"retry",
    b":",
    b" ",
    b"x",
    b"7",
    b"{",
    b"\n",
    b"\r",
    b"\r\n",
    b"\0",
    "é".encode(),
    b"\xef\xbb\xbf",
    b"\xc3",
    b"\xff",
]


@given(st.lists(st.sampled_from(TOKENS), max_size=60), st.lists(st.integers(0), max_size=20))
def test_rechunking_invariance_random_streams(tokens: list[bytes], cuts: list[int]) -> None:
    raw = b"".join(tokens)
    assert outcome(_split(raw, cuts)) == outcome([raw])
