"""StreamAssembler: recorded llama-server streams and hand-made edge cases."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from louter.bench import bodies
from louter.convert.openai import chunks as typed
from louter.convert.openai.stream_parser import StreamAssembler, bulk_array
from louter.convert.sse import SSEDecoder, encode_event
from louter.errors import ConversionError
from louter.proxy.taps import OpenAITap, OpenAIUsageTap
from louter.proxy.usage import view_text, view_tokens
from tests.paths import SAMPLES  # noqa: E402

MODEL = "smollm2-135m-instruct"


def load_sample(name: str) -> bytes:
    """A recorded stream without the recorder's `# HTTP ...` header lines."""
    lines = (SAMPLES / name).read_bytes().split(b"\n")
    while lines and lines[0].startswith(b"# "):
        lines.pop(0)
    return b"\n".join(lines)


def assemble(raw: bytes, *, byte_by_byte: bool = False) -> dict[str, Any]:
    """Event by event through the SSE decoder; the proxy's tap (whole blocks of events
    parsed at once) must give the same result however the bytes are split."""
    decoder = SSEDecoder()
    assembler = StreamAssembler()
    chunks = [raw[i : i + 1] for i in range(len(raw))] if byte_by_byte else [raw]
    for chunk in chunks:
        for event in decoder.feed(chunk):
            assembler.feed(event)
    for event in decoder.flush():
        assembler.feed(event)
    result = assembler.result()
    for size in (len(raw) or 1, 1, 7, 64):
        assert tap_result(raw, size) == result, size
    return result


def tap_result(raw: bytes, size: int) -> dict[str, Any]:
    tap = OpenAITap()
    for start in range(0, len(raw), size):
        tap.feed(raw[start : start + size])
    return tap.result()


def stream(*chunks: dict[str, Any] | str, done: bool = True) -> bytes:
    parts = [encode_event(c if isinstance(c, str) else orjson.dumps(c)) for c in chunks]
    return b"".join(parts) + (b"data: [DONE]\n\n" if done else b"")


def delta(payload: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> dict:
    choice: dict[str, Any] = {"index": 0, "finish_reason": finish}
    if payload is not None:
        choice["delta"] = payload
    return {
        "id": "c1",
        "model": "m",
        "object": "chat.completion.chunk",
        "choices": [choice],
        **extra,
    }


def tool(index: int, id: str | None = None, name: str | None = None, args: str | None = None):
    function = {k: v for k, v in (("name", name), ("arguments", args)) if v is not None}
    fragment: dict[str, Any] = {"index": index, "function": function}
    if id is not None:
        fragment.update(id=id, type="function")
    return delta({"tool_calls": [fragment]})


def test_recorded_chat_stream() -> None:
    result = assemble(load_sample("04-chat-stream.sse"))
    assert result == {
        "id": "chatcmpl-t7kKiBbvFdBDM5RndCtG7q2yvHkGtNOr",
        "model": MODEL,
        "content": "Hello, welcome to my world!",
        "tool_calls": [],
        "finish_reason": "stop",
        "usage": {
            "completion_tokens": 8,
            "prompt_tokens": 36,
            "total_tokens": 44,
            "prompt_tokens_details": {"cached_tokens": 0},
        },
        "chunks": 10,
        "done": True,
        "error": None,
    }
    assert assemble(load_sample("04-chat-stream.sse"), byte_by_byte=True) == result


def test_recorded_tool_stream() -> None:
    result = assemble(load_sample("07-tools-oneshot-stream.sse"))
    assert result == {
        "id": "chatcmpl-wzAIYlL7vY1nIF10scYZyzIs0qhzpkf3",
        "model": MODEL,
        "content": "",
        "tool_calls": [
            {
                "id": "etWYwCH1ysLlSIBOp528YCx8OSnB8UTG",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            }
        ],
        "finish_reason": "tool_calls",
        "usage": {
            "completion_tokens": 30,
            "prompt_tokens": 448,
            "total_tokens": 478,
            "prompt_tokens_details": {"cached_tokens": 0},
        },
        "chunks": 8,
        "done": True,
        "error": None,
    }


def test_recorded_error_stream() -> None:
    message = (
        "request (5031 tokens) exceeds the available context size (4096 tokens), try increasing it"
    )
    assert assemble(load_sample("24-error-stream-context-exceeded.sse")) == {
        "id": None,
        "model": None,
        "content": "",
        "tool_calls": [],
        "finish_reason": None,
        "usage": None,
        "chunks": 1,
        "done": False,
        "error": {
            "code": 400,
            "message": message,
            "type": "exceed_context_size_error",
            "n_prompt_tokens": 5031,
            "n_ctx": 4096,
        },
    }


def test_parallel_tool_calls_interleaved_with_changing_ids() -> None:
    raw = stream(
        delta({"role": "assistant", "content": None}),
        tool(0, id="call_a", name="get_weather", args=""),
        tool(1, id="call_b", name="get_time", args='{"tz"'),
        tool(0, id="call_a2", args='{"city":'),
        tool(1, id="call_b2", name="get_time", args=':"UTC"}'),
        tool(0, args='"Paris"}'),
        delta({}, "tool_calls"),
    )
    result = assemble(raw)
    assert result["tool_calls"] == [
        {
            "id": "call_a",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
        },
        {
            "id": "call_b",
            "type": "function",
            "function": {"name": "get_time", "arguments": '{"tz":"UTC"}'},
        },
    ]
    assert result["finish_reason"] == "tool_calls"
    assert result["content"] == ""
    assert result["chunks"] == 7


def test_first_non_empty_id_and_name_win() -> None:
    raw = stream(
        tool(1, id="", name="", args="{"),
        tool(1, id="x", name="f", args="}"),
        tool(1, id="y", name="g"),
    )
    assert assemble(raw)["tool_calls"] == [
        {"id": "x", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    ]


def test_usage_from_final_empty_choices_chunk() -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    raw = stream(
        delta({"content": "Hi"}, usage=None),
        delta({"content": "!"}, "stop", usage=None),
        {"id": "c1", "model": "m", "choices": [], "usage": usage, "timings": {"x": 1}},
    )
    result = assemble(raw)
    assert (result["content"], result["usage"], result["chunks"]) == ("Hi!", usage, 3)
    assert result["finish_reason"] == "stop"


def test_reasoning_content() -> None:
    raw = stream(
        delta({"role": "assistant", "content": None, "reasoning_content": "Let me "}),
        delta({"content": None, "reasoning_content": "think."}),
        delta({"content": "42"}, system_fingerprint="fp"),
        delta({}, "stop"),
    )
    result = assemble(raw)
    assert list(result) == [
        "id",
        "model",
        "content",
        "reasoning_content",
        "tool_calls",
        "finish_reason",
        "usage",
        "chunks",
        "done",
        "error",
    ]
    assert result["reasoning_content"] == "Let me think."
    assert result["content"] == "42"


def test_missing_delta_null_content_and_other_choices() -> None:
    other = delta({"content": "ignored"})
    other["choices"][0]["index"] = 1
    raw = stream(
        delta(None),
        delta({"content": None}),
        other,
        delta({"content": "ok"}),
        {"id": "c1", "model": "m"},
        delta(None, "length"),
        done=False,
    )
    result = assemble(raw)
    assert "reasoning_content" not in result
    assert (result["id"], result["model"], result["content"]) == ("c1", "m", "ok")
    assert (result["finish_reason"], result["chunks"], result["done"]) == ("length", 6, False)


def test_error_in_the_middle_of_a_stream() -> None:
    raw = stream(delta({"content": "par"}), done=False) + b'{"error":{"code":500,"message":"x"}}\n'
    result = assemble(raw)
    assert result["content"] == "par"
    assert result["error"] == {"code": 500, "message": "x"}
    assert (result["chunks"], result["done"]) == (2, False)


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b'event: error\ndata: {"message":"boom"}\n\n', {"message": "boom"}),
        (b'data: {"error":"plain string"}\n\n', {"message": "plain string"}),
    ],
)
def test_error_shapes(raw: bytes, error: dict[str, Any]) -> None:
    assert assemble(raw)["error"] == error


@pytest.mark.parametrize("data", ["{not json", "[1, 2]", '"text"', ""])
def test_invalid_chunk_is_a_502(data: str) -> None:
    with pytest.raises(ConversionError) as info:
        assemble(encode_event(data))
    assert info.value.status_hint == 502
    with pytest.raises(ConversionError):  # the tap: before the bad chunk is passed on
        OpenAITap().feed(stream(delta({"content": "ok"}), done=False) + encode_event(data))


def test_tap_takes_the_bulk_path_and_the_decoder_path_alike() -> None:
    plain = stream(delta({"role": "assistant", "content": ""}), delta({"content": "a"}),
                   delta({"content": "b"}), delta({}, "stop"), usage_chunk())  # fmt: skip
    variants = {
        "plain": plain,
        "crlf": plain.replace(b"\n", b"\r\n"),
        "comments": b": keep-alive\n\n" + plain,
        "no space after data:": plain.replace(b"data: ", b"data:"),
        "multi-line data": plain.replace(b'{"id"', b'\ndata: {"id"', 1),
    }
    expected = assemble(plain)
    assert (expected["content"], expected["chunks"], expected["done"]) == ("ab", 5, True)
    for name, raw in variants.items():
        for size in (len(raw), 1, 5, 33):
            assert tap_result(raw, size) == expected, (name, size)


def usage_chunk() -> dict[str, Any]:
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    return {"id": "c1", "model": "m", "object": "chat.completion.chunk", "choices": [],
            "usage": usage}  # fmt: skip


def test_empty_stream() -> None:
    assert assemble(b"") == {
        "id": None,
        "model": None,
        "content": "",
        "tool_calls": [],
        "finish_reason": None,
        "usage": None,
        "chunks": 0,
        "done": False,
        "error": None,
    }


# The tap decodes a block's chunks into typed structs (`chunks.decode`, msgspec) and falls
# back to orjson for shapes they do not describe: any chunk, however odd, must assemble as
# the event-by-event path (orjson per event) assembles it.
_scalars = st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=3)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner, max_size=2)
    ),
    max_leaves=4,
)
_delta = st.fixed_dictionaries(
    {},
    optional={
        "role": _scalars,
        "content": _scalars,
        "refusal": _scalars,
        "reasoning_content": _scalars,
        "reasoning": _scalars,
        "audio": _json,
        "tool_calls": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "index": _scalars,
                    "id": _scalars,
                    "function": _json
                    | st.fixed_dictionaries({}, optional={"name": _scalars, "arguments": _json}),
                },
            ),  # fmt: skip
            max_size=2,
        )
        | _json,
        "function_call": _json,
    },
)
_choice = st.fixed_dictionaries(
    {}, optional={"index": _scalars, "delta": _delta | _json, "finish_reason": _scalars}
)
_chunk = st.fixed_dictionaries(
    {},
    optional={
        "id": _scalars,
        "model": _scalars,
        "object": _json,
        "choices": st.lists(_choice | _json, max_size=2) | _json,
        "usage": _json,
        "error": _json,
    },
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_chunk, max_size=6), st.booleans())
def test_typed_decoding_assembles_any_chunk_as_orjson_does(
    chunks: list[dict[str, Any]], done: bool
) -> None:
    raw = stream(*chunks, done=done)
    assert tap_result(raw, len(raw) or 1) == assemble_by_events(raw)


def assemble_by_events(raw: bytes) -> dict[str, Any]:
    decoder = SSEDecoder()
    assembler = StreamAssembler()
    for event in [*decoder.feed(raw), *decoder.flush()]:
        assembler.feed(event)
    return assembler.result()


def test_the_bench_stream_takes_the_typed_path() -> None:
    raw = bodies.stream_answer()
    assert typed.decode(bulk_array(raw)[0]) is not None  # type: ignore[index]
    assert tap_result(raw, len(raw)) == assemble_by_events(raw)


@pytest.mark.parametrize(
    "bad",
    [b'{"id":"\xff","choices":[]}', b'{"object":"\xed\xa0\x80","choices":[]}', b'{"x":1,}'],
)
def test_a_chunk_orjson_refuses_is_refused_on_the_typed_path_too(bad: bytes) -> None:
    raw = stream(delta({"content": "ok"}), done=False) + b"data: " + bad + b"\n\n"
    with pytest.raises(ConversionError):
        OpenAITap().feed(raw)


def usage_tap_result(raw: bytes, size: int) -> tuple[OpenAIUsageTap, dict[str, Any]]:
    tap = OpenAIUsageTap()
    for start in range(0, len(raw), size):
        tap.feed(raw[start : start + size])
    return tap, tap.result()


def lean_view(result: dict[str, Any]) -> tuple[Any, bool]:
    """What the proxy reads of a tap's result when no body is logged: the usage, or the
    text for an estimate (`passthrough._finish`)."""
    return view_tokens(result) or view_text(result), result["done"]


def test_the_usage_tap_reads_only_the_usage_when_there_is_one() -> None:
    raw = bodies.stream_answer()
    for size in (len(raw), 1000, 7):
        tap, result = usage_tap_result(raw, size)
        assert tap._full is None, size  # never assembled
        assert lean_view(result) == lean_view(assemble_by_events(raw))
        assert view_tokens(result) is not None and result["done"] and tap.complete


@pytest.mark.parametrize(
    "raw",
    [
        stream(delta({"content": "no usage here"}), delta({}, "stop")),  # the estimate
        stream(delta({"content": "a"}), {"choices": [], "usage": {"prompt_tokens": "x"}}),
        stream(delta({"content": "ab"}), done=False) + b'data: {"choices":[]}',  # no \n\n
        stream(delta({"content": "a"}), usage_chunk()).replace(b"\n", b"\r\n"),  # CRLF
        b": keep-alive\n\n" + stream(delta({"content": "a"}), usage_chunk()),
        stream(delta({"content": "x" * 3000}), usage_chunk()) * 100,  # past KEEP_BYTES
        stream(*[delta({"content": "c"})] * 40, done=False),
    ],
)
def test_the_usage_tap_falls_back_to_the_assembler_with_the_same_result(raw: bytes) -> None:
    expected = assemble_by_events(raw)
    for size in (len(raw), 1, 50, 4096):
        _, result = usage_tap_result(raw, size)
        assert lean_view(result) == lean_view(expected), size


@pytest.mark.parametrize("data", ["{not json", "[1, 2]", '"text"', '{"usage": 1,}'])
def test_the_usage_tap_refuses_a_bad_chunk_before_it_is_passed_on(data: str) -> None:
    tap = OpenAIUsageTap()
    tap.feed(stream(delta({"content": "ok"}), done=False))
    with pytest.raises(ConversionError):
        tap.feed(encode_event(data))
