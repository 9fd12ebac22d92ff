"""The neutral helpers: StreamCollector / events_of / log_view (louter.convert.collect) and
the token estimate (louter.convert.tokens)."""

from __future__ import annotations

import orjson
import pytest

from louter.convert.collect import StreamCollector, events_of, log_view, stream_view, usage_view
from louter.convert.model import (
    Image,
    Message,
    MessageStart,
    MessageStop,
    Reasoning,
    ReasoningDelta,
    Request,
    Response,
    StreamError,
    StreamEvent,
    Text,
    TextDelta,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolResult,
    Usage,
    UsageUpdate,
)
from louter.convert.tokens import (
    CHARS_PER_TOKEN,
    IMAGE_TOKENS,
    MESSAGE_TOKENS,
    estimate_text,
    estimate_tokens,
)


def collect(events: list[StreamEvent]) -> StreamCollector:
    collector = StreamCollector()
    for event in events:
        collector.feed(event)
    return collector


# --------------------------------------------------------------------------- events_of


RESPONSES = {
    "text": Response("r1", "m", (Text("Hello"),), "stop", Usage(3, 1)),
    "empty": Response("", "", (), "content_filter"),
    "everything": Response(
        "r2",
        "m",
        (
            Reasoning("think", signature="sig-1"),
            Reasoning(redacted="opaque", signature="sig-2"),
            Reasoning("more", signature="sig-3"),
            Text("Calling.", signature="ts"),
            Text("Now."),
            ToolCall("call_a", "a", '{"x":1}', signature="fs"),
            ToolCall("call_b", "b", "{}"),
            Text("Done."),
        ),
        "tool_calls",
        Usage(10, 20, reasoning_tokens=5, cached_tokens=2),
    ),
    "length": Response("r3", "m", (Text("Once upon"),), "length"),
    "error": Response("r4", "m", (Text("par"),), "error"),
}


@pytest.mark.parametrize("name", list(RESPONSES))
def test_events_of_collects_back_to_the_response(name: str) -> None:
    response = RESPONSES[name]
    collector = collect(events_of(response))
    assert collector.result() == response
    assert collector.done


def test_events_of_follows_the_stream_contract() -> None:
    assert events_of(RESPONSES["everything"]) == [
        MessageStart("r2", "m"),
        ReasoningDelta("think", "sig-1"),
        ReasoningDelta("", "sig-2", "opaque"),
        ReasoningDelta("more", "sig-3"),
        TextDelta("Calling.", "ts"),
        TextDelta("Now."),
        ToolCallStart(0, "call_a", "a", "fs"),
        ToolCallDelta(0, '{"x":1}'),
        ToolCallEnd(0),
        ToolCallStart(1, "call_b", "b"),
        ToolCallDelta(1, "{}"),
        ToolCallEnd(1),
        TextDelta("Done."),
        MessageStop("tool_calls", Usage(10, 20, reasoning_tokens=5, cached_tokens=2)),
    ]
    assert events_of(RESPONSES["empty"]) == [MessageStart(), MessageStop("content_filter")]


def test_events_of_leaves_out_images() -> None:
    """No stream event carries an image; an answer's images are not streamed."""
    response = Response("r", "m", (Text("a"), Image(data="AA=="), Text("b")))
    assert collect(events_of(response)).result().parts == (Text("ab"),)


# --------------------------------------------------------------------------- StreamCollector


def test_collector_merges_runs_and_orders_parts_by_start() -> None:
    collector = collect(
        [
            MessageStart("id-1", "model-1"),
            MessageStart("id-2", "model-2"),  # the first one wins
            ReasoningDelta("Let me "),
            ReasoningDelta("think."),
            TextDelta("Hel"),
            TextDelta("lo"),
            ToolCallStart(0, "c0", "f"),
            TextDelta(" there"),
            ToolCallStart(1, "c1", "g"),
            ToolCallDelta(1, '{"b":'),
            ToolCallDelta(0, '{"a":1}'),
            ToolCallDelta(1, "2}"),
            ToolCallDelta(7, "ignored: never started"),
            ToolCallEnd(0),
            ToolCallEnd(1),
            UsageUpdate(Usage(1, 1)),
            MessageStop("tool_calls"),
        ]
    )
    assert collector.result() == Response(
        id="id-1",
        model="model-1",
        parts=(
            Reasoning("Let me think."),
            Text("Hello"),
            ToolCall("c0", "f", '{"a":1}'),
            Text(" there"),
            ToolCall("c1", "g", '{"b":2}'),
        ),
        finish_reason="tool_calls",
        usage=Usage(1, 1),
    )
    assert collector.events == 17


def test_collector_call_without_arguments_is_an_empty_object() -> None:
    result = collect([ToolCallStart(0, "c", "f"), ToolCallEnd(0), MessageStop("tool_calls")])
    assert result.result().parts == (ToolCall("c", "f", "{}"),)


def test_collector_signature_signs_the_run_it_arrives_in() -> None:
    """Anthropic: thinking text, then a `signature_delta` for the block; the next thinking
    block starts fresh. One signed part per block, as the Messages API needs back."""
    collector = collect(
        [
            ReasoningDelta("abc"),
            ReasoningDelta("def"),
            ReasoningDelta(signature="sig-1"),
            ReasoningDelta("second block"),
            ReasoningDelta(signature="sig-2"),
            TextDelta("answer"),
            MessageStop("stop"),
        ]
    )
    assert collector.result().parts == (
        Reasoning("abcdef", signature="sig-1"),
        Reasoning("second block", signature="sig-2"),
        Text("answer"),
    )


def test_collector_signed_text_closes_its_part() -> None:
    """Gemini: a signed part keeps its signature; text after it is another part."""
    collector = collect(
        [
            TextDelta("Hel"),
            TextDelta("lo", signature="s1"),
            TextDelta(" world"),
            TextDelta("", signature="s2"),
            TextDelta("!", signature="s3"),
            MessageStop("stop"),
        ]
    )
    assert collector.result().parts == (
        Text("Hello", signature="s1"),
        Text(" world", signature="s2"),
        Text("!", signature="s3"),
    )


def test_collector_redacted_reasoning_is_its_own_part() -> None:
    collector = collect(
        [
            ReasoningDelta("a"),
            ReasoningDelta(redacted="opaque"),
            ReasoningDelta("b"),
            MessageStop("stop"),
        ]
    )
    assert collector.result().parts == (
        Reasoning("a"),
        Reasoning(redacted="opaque"),
        Reasoning("b"),
    )


def test_collector_usage_last_one_wins() -> None:
    collector = collect([UsageUpdate(Usage(1, 1)), UsageUpdate(Usage(2, 2))])
    assert collector.usage == Usage(2, 2)
    collector.feed(MessageStop("stop", Usage(3, 3)))
    assert collector.result().usage == Usage(3, 3)
    collector = collect([UsageUpdate(Usage(4, 4)), MessageStop("stop")])
    assert collector.result().usage == Usage(4, 4)


def test_collector_unfinished_is_never_a_stop() -> None:
    collector = collect([MessageStart("r", "m"), TextDelta("par")])
    assert not collector.done
    assert collector.result().finish_reason == "error"
    collector.feed(StreamError("cut", 504))
    assert collector.done
    assert collector.error == StreamError("cut", 504)
    assert collector.result() == Response("r", "m", (Text("par"),), "error")


def test_collector_empty() -> None:
    collector = StreamCollector()
    assert collector.result() == Response("", "", (), "error")
    assert (collector.events, collector.done) == (0, False)


def test_collector_ignores_unknown_events() -> None:
    collector = StreamCollector()
    collector.feed("not an event")  # type: ignore[arg-type]
    assert collector.events == 1
    assert collector.result().parts == ()


# --------------------------------------------------------------------------- log_view


def test_log_view_shape() -> None:
    view = log_view(RESPONSES["everything"])
    assert list(view) == [
        "id",
        "model",
        "content",
        "reasoning_content",
        "tool_calls",
        "finish_reason",
        "usage",
    ]
    assert view == {
        "id": "r2",
        "model": "m",
        "content": "Calling.Now.Done.",
        "reasoning_content": "thinkmore",
        "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "a", "arguments": '{"x":1}'}},
            {"id": "call_b", "type": "function", "function": {"name": "b", "arguments": "{}"}},
        ],
        "finish_reason": "tool_calls",
        "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30},
    }
    orjson.dumps(view)  # JSON-ready


def test_log_view_minimal() -> None:
    assert log_view(RESPONSES["empty"]) == {
        "id": None,
        "model": None,
        "content": "",
        "tool_calls": [],
        "finish_reason": "content_filter",
        "usage": None,
    }


def test_log_view_of_an_unfinished_stream() -> None:
    view = log_view(collect([MessageStart("r", "m"), TextDelta("par")]).result())
    assert (view["content"], view["finish_reason"]) == ("par", "error")


def test_usage_view() -> None:
    assert usage_view(None) is None
    assert usage_view(Usage(1, 2, reasoning_tokens=1, cached_tokens=1)) == {
        "prompt_tokens": 1,
        "completion_tokens": 2,
        "total_tokens": 3,
    }


# --------------------------------------------------------------------------- tokens


def test_token_constants_are_the_documented_ones() -> None:
    assert (CHARS_PER_TOKEN, IMAGE_TOKENS, MESSAGE_TOKENS) == (4, 258, 3)


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("a", 1),
        ("abcd", 1),
        ("abcde", 2),
        ("x" * 400, 100),
        ("x" * 401, 101),
        ("héé🌍", 1),
    ],
)
def test_estimate_text_is_chars_over_four_rounded_up(text: str, tokens: int) -> None:
    assert estimate_text(text) == tokens


def request(*messages: Message, tools: tuple[Tool, ...] = ()) -> Request:
    return Request(model="m", messages=messages, tools=tools)


def test_estimate_tokens_empty() -> None:
    assert estimate_tokens(request()) == 0
    assert estimate_tokens(request(Message("user", ()))) == MESSAGE_TOKENS


def test_estimate_tokens_rounds_up_per_text() -> None:
    # 5 chars -> 2, 1 char -> 1: 3 (one 6-char text would be 2), plus 3 for the message.
    assert estimate_tokens(request(Message("user", (Text("abcde"), Text("f"))))) == 3 + 3


def test_estimate_tokens_per_part_kind() -> None:
    messages = (
        Message("system", (Text("x" * 8),)),  # 2
        Message("user", (Text("see"), Image(data="A" * 10_000), Image(url="https://x"))),
        Message("assistant", (Reasoning("hmm."), ToolCall("id-not-counted", "get", '{"a":1}'))),
        Message(
            "tool",
            (ToolResult("id", "get", (Text("sunny"), Image(data="AA==")), is_error=True),),
        ),
        Message("assistant", (Reasoning(redacted="opaque-data-not-counted"),)),
    )
    expected = (
        2
        + (1 + 2 * IMAGE_TOKENS)
        + (1 + 1 + 2)  # "hmm.", "get", '{"a":1}' (7 chars)
        + (1 + 2 + IMAGE_TOKENS)  # "get", "sunny", the image
        + 0
        + len(messages) * MESSAGE_TOKENS
    )
    assert estimate_tokens(request(*messages)) == expected


def test_estimate_tokens_counts_tools_as_their_json() -> None:
    tool = Tool("get_weather", "Get weather", {"type": "object"})
    text = '{"name":"get_weather","description":"Get weather","parameters":{"type":"object"}}'
    assert estimate_tokens(request(tools=(tool,))) == -(-len(text) // 4) == 21
    two = (tool, Tool("f"))
    f_text = '{"name":"f","description":"","parameters":{}}'
    assert estimate_tokens(request(tools=two)) == 21 + -(-len(f_text) // 4)


def test_estimate_tokens_grows_with_input() -> None:
    small = estimate_tokens(request(Message("user", (Text("hi"),))))
    large = estimate_tokens(request(Message("user", (Text("hi " * 100),))))
    assert large > small > 0


def test_stream_view_says_whether_and_how_the_stream_ended() -> None:
    open_stream = StreamCollector()
    open_stream.feed(MessageStart("r", "m"))
    open_stream.feed(TextDelta("half"))
    view = stream_view(open_stream)
    assert (view["content"], view["done"], view["error"]) == ("half", False, None)
    failed = StreamCollector()
    failed.feed(MessageStart("r", "m"))
    failed.feed(StreamError("upstream cut", 502))
    view = stream_view(failed)
    assert (view["done"], view["error"], view["finish_reason"]) == (True, "upstream cut", "error")
