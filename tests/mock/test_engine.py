"""The deterministic mock backend: engine rules, through the one responder in the OpenAI
dialect (every dialect: tests/mock/test_responder.py, tests/proxy/test_smoke.py, door tests)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

import louter.mock
from louter.config import load_config
from louter.errors import ConfigError, ConversionError
from louter.mock import engine
from louter.mock.engine import MockAnswer, MockPrompt, MockTool, MockToolCall
from louter.mock.neutral import prompt_of
from louter.mock.responder import Endpoint, endpoints, find
from louter.mock.responder import respond as mock_respond
from louter.mock.transport import MockTransport

RID = "chatcmpl-mock1"
CREATED = 1_700_000_000
MODEL = "mock-model"
IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}

WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
            "required": ["city"],
        },
    },
}
SEARCH: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "Search",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
    },
}


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


CHAT = "/v1/chat/completions"


def chat_endpoint() -> Endpoint:
    endpoint = find(endpoints(), CHAT)
    assert endpoint is not None and endpoint.dialect.name == "openai"
    return endpoint


def parse_prompt(body: dict[str, Any]) -> MockPrompt:
    """The mock's view of an OpenAI request: the dialect's own parser, then `prompt_of`."""
    served = chat_endpoint().dialect.serve(CHAT, {"model": MODEL, **body})
    return prompt_of(served.request)


def run(body: dict[str, Any], tool_format: str = "json") -> MockAnswer:
    return engine.answer(parse_prompt(body), response_id=RID, tool_format=tool_format)


def reply(body: dict[str, Any], tool_format: str = "json") -> list[bytes]:
    out = mock_respond(
        chat_endpoint(),
        CHAT,
        {"model": MODEL, **body},
        response_id=RID,
        created=CREATED,
        tool_format=tool_format,
    )
    assert out.status == 200
    return out.chunks


def respond(body: dict[str, Any], tool_format: str = "json") -> dict[str, Any]:
    (chunk,) = reply(body, tool_format)
    return orjson.loads(chunk)


def stream(body: dict[str, Any], include_usage: bool = False) -> list[bytes]:
    options = {"stream_options": {"include_usage": True}} if include_usage else {}
    return reply({**body, "stream": True, **options})


def decode_events(events: list[bytes]) -> list[dict[str, Any]]:
    assert events[-1] == b"data: [DONE]\n\n"
    chunks = []
    for event in events[:-1]:
        assert event.startswith(b"data: ") and event.endswith(b"\n\n")
        chunks.append(orjson.loads(event[len(b"data: ") : -2]))
    return chunks


def reassemble(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """Fold stream chunks into a message the way an OpenAI client does."""
    content = ""
    calls: dict[int, dict[str, Any]] = {}
    finish = None
    for chunk in chunks:
        for choice in chunk["choices"]:
            delta = choice["delta"]
            content += delta.get("content") or ""
            for fragment in delta.get("tool_calls", []):
                call = calls.setdefault(fragment["index"], {"arguments": ""})
                call.update({k: fragment[k] for k in ("id", "type") if k in fragment})
                function = fragment.get("function", {})
                call.setdefault("name", function.get("name"))
                call["arguments"] += function.get("arguments", "")
            finish = choice["finish_reason"] or finish
    return {"content": content, "calls": [calls[i] for i in sorted(calls)], "finish": finish}


# --- plain answers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([user("Hello there")], 'Mock answer to: "Hello there" (images: 0)'),
        (
            [user([{"type": "text", "text": "What is"}, IMAGE, {"type": "text", "text": "this?"}])],
            'Mock answer to: "What is this?" (images: 1)',
        ),
        (
            [
                user([IMAGE, {"type": "text", "text": "first"}]),
                user([IMAGE, {"type": "text", "text": "compare"}]),
            ],
            'Mock answer to: "compare" (images: 2)',
        ),
        (
            [
                {"role": "system", "content": "Be brief."},
                user("one"),
                {"role": "assistant", "content": None, "tool_calls": []},
                user("two"),
            ],
            'Mock answer to: "two" (images: 0)',
        ),
        ([{"role": "system", "content": "only system"}], 'Mock answer to: "" (images: 0)'),
        (
            [user("earlier question"), {"role": "assistant", "content": "previous reply"}],
            'Mock answer to: "earlier question" (images: 0)',
        ),
        ([user("")], 'Mock answer to: "" (images: 0)'),
        ([user([IMAGE, IMAGE])], 'Mock answer to: "" (images: 2)'),
    ],
    ids=[
        "string",
        "parts",
        "two-images",
        "last-user",
        "no-user",
        "ends-assistant",
        "empty",
        "images-only",
    ],
)
def test_plain_answer_quotes_last_user_text_and_counts_images(
    messages: list[dict[str, Any]], expected: str
) -> None:
    result = run({"messages": messages})
    assert result.text == expected
    assert result.tool_calls == ()
    assert result.finish_reason == "stop"
    assert result.completion_tokens == len(expected.split())


def test_tool_choice_none_gives_plain_answer() -> None:
    body = {"messages": [user("weather in Paris")], "tools": [WEATHER], "tool_choice": "none"}
    assert run(body).text == 'Mock answer to: "weather in Paris" (images: 0)'


def test_legacy_function_call_none_gives_plain_answer() -> None:
    body = {
        "messages": [user("hi")],
        "functions": [WEATHER["function"]],
        "function_call": "none",
    }
    assert run(body).finish_reason == "stop"


# --- tool selection ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tools", "choice", "expected"),
    [
        ("hello", [WEATHER, SEARCH], None, "get_weather"),
        ("please SEARCH the web", [WEATHER, SEARCH], None, "Search"),
        ("use get_weather or search", [SEARCH, WEATHER], None, "Search"),
        ("please search", [WEATHER, SEARCH], "auto", "Search"),
        ("please search", [WEATHER, SEARCH], "required", "Search"),
        (
            "please search",
            [WEATHER, SEARCH],
            {"type": "function", "function": {"name": "get_weather"}},
            "get_weather",
        ),
        (
            "hello",
            [WEATHER, SEARCH],
            {"type": "function", "function": {"name": "Search"}},
            "Search",
        ),
    ],
    ids=["first", "named", "first-named-wins", "auto", "required", "forced", "forced-2"],
)
def test_tool_selection(text: str, tools: list[Any], choice: Any, expected: str) -> None:
    body: dict[str, Any] = {"messages": [user(text)], "tools": tools}
    if choice is not None:
        body["tool_choice"] = choice
    result = run(body)
    assert [call.name for call in result.tool_calls] == [expected]
    assert result.finish_reason == "tool_calls"
    assert result.text == ""
    assert result.tool_calls[0].id == f"call_{RID}_0"


def test_legacy_functions_are_tools() -> None:
    body = {
        "messages": [user("hi")],
        "functions": [SEARCH["function"], WEATHER["function"]],
        "function_call": {"name": "get_weather"},
    }
    call = run(body).tool_calls[0]
    assert call.name == "get_weather"
    assert orjson.loads(call.arguments) == {"city": "mock-city", "unit": "c"}


def test_forced_unknown_tool_is_a_400() -> None:
    body = {
        "messages": [user("hi")],
        "tools": [WEATHER],
        "tool_choice": {"type": "function", "function": {"name": "nope"}},
    }
    with pytest.raises(ConversionError, match="'nope'") as info:
        run(body)
    assert info.value.status_hint == 400


def test_tools_with_assistant_last_give_plain_answer() -> None:
    body = {
        "messages": [user("weather?"), {"role": "assistant", "content": "ok"}],
        "tools": [WEATHER],
    }
    assert run(body).text == 'Mock answer to: "weather?" (images: 0)'


# --- schema-generated arguments ------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "string"}, "mock-p"),
        ({"type": "string", "enum": ["red", "green"]}, "red"),
        ({"enum": [3, 4]}, 3),
        ({"type": "string", "default": "dflt"}, "dflt"),
        ({"type": "integer", "default": 7}, 7),
        ({"const": "fixed"}, "fixed"),
        ({"type": "integer"}, 1),
        ({"type": "integer", "minimum": 5}, 5),
        ({"type": "integer", "maximum": 0}, 0),
        ({"type": "number"}, 1),  # an integer: clients like Codex parse some numbers as usize
        ({"type": "number", "minimum": 2}, 2),
        ({"type": "boolean"}, True),
        ({"type": "null"}, None),
        ({"type": ["string", "null"]}, "mock-p"),
        ({"type": ["null", "integer"]}, 1),
        ({"type": ["null"]}, None),
        ({"type": "STRING"}, "mock-p"),
        ({"type": "array", "items": {"type": "integer"}}, [1]),
        ({"type": "array"}, ["mock-p"]),
        ({"items": {"type": "boolean"}}, [True]),
        ({"type": "array", "items": [{"type": "number"}]}, [1]),
        (
            {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "string"}}},
            {"x": 1, "y": "mock-y"},
        ),
        ({"properties": {"deep": {"properties": {"n": {"type": "integer"}}}}}, {"deep": {"n": 1}}),
        ({"type": "object"}, {}),
        ({"anyOf": [{"type": "null"}, {"type": "boolean"}]}, True),
        ({"oneOf": [{"type": "integer"}]}, 1),
        ({}, "mock-p"),
        (True, "mock-p"),
    ],
)
def test_value_for_schema(schema: Any, expected: Any) -> None:
    value = engine.value_for(schema, "p")
    assert value == expected
    assert type(value) is type(expected)


def test_arguments_cover_properties_in_order_and_required_keys() -> None:
    schema = {
        "type": "object",
        "properties": {
            "path": {"type": "string"},
            "limit": {"type": "integer", "minimum": 10},
            "opts": {
                "type": "object",
                "properties": {"tags": {"type": "array", "items": {"enum": ["a", "b"]}}},
                "required": ["tags", "verbose"],
            },
        },
        "required": ["path", "mode"],
    }
    arguments = engine.arguments_for(schema)
    assert arguments == {
        "path": "mock-path",
        "limit": 10,
        "opts": {"tags": ["a"], "verbose": "mock-verbose"},
        "mode": "mock-mode",
    }
    assert list(arguments) == ["path", "limit", "opts", "mode"]


def test_tool_call_arguments_are_exact_json() -> None:
    body = {"messages": [user("weather")], "tools": [WEATHER]}
    call = run(body).tool_calls[0]
    assert call == MockToolCall(
        id=f"call_{RID}_0", name="get_weather", arguments='{"city":"mock-city","unit":"c"}'
    )


def test_tool_without_parameters_gets_empty_arguments() -> None:
    body = {"messages": [user("x")], "tools": [{"type": "function", "function": {"name": "ping"}}]}
    assert run(body).tool_calls[0].arguments == "{}"


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"properties": ["a"]}, "'properties' must be an object"),
        ({"properties": {}, "required": "a"}, "'required' must be a list"),
        ({"properties": {"a": {"type": "any"}}}, "'a' has unsupported type 'any'"),
    ],
)
def test_bad_schemas(schema: dict[str, Any], message: str) -> None:
    with pytest.raises(ConversionError, match=message):
        engine.arguments_for(schema)


# --- tool results --------------------------------------------------------------------------


def tool_turns(*results: Any) -> list[dict[str, Any]]:
    call = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    messages: list[dict[str, Any]] = [user("weather?"), {"role": "assistant", "tool_calls": [call]}]
    messages += [{"role": "tool", "tool_call_id": "c1", "content": r} for r in results]
    return messages


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        (["sunny, 21C"], 'Mock answer to tool result: "sunny, 21C"'),
        (
            [[{"type": "text", "text": "part one"}, {"type": "text", "text": "two"}]],
            'Mock answer to tool result: "part one\ntwo"',  # a result's texts: lines
        ),
        (["a", "b"], 'Mock answer to tool result: "a | b"'),
        ([None], 'Mock answer to tool result: ""'),
    ],
)
def test_tool_result_is_quoted(results: list[Any], expected: str) -> None:
    body = {"messages": tool_turns(*results), "tools": [WEATHER]}
    result = run(body)
    assert result.text == expected
    assert result.finish_reason == "stop"
    assert result.tool_calls == ()


def test_only_trailing_tool_results_are_quoted() -> None:
    call = {"id": "c2", "type": "function", "function": {"name": "get_weather"}}
    messages = tool_turns("old") + [user("again"), {"role": "assistant", "tool_calls": [call]}]
    messages += [{"role": "tool", "tool_call_id": "c2", "content": "new"}]
    assert run({"messages": messages}).text == 'Mock answer to tool result: "new"'


def test_legacy_function_role_is_a_tool_result() -> None:
    messages = [
        user("q"),
        {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": "{}"}},
        {"role": "function", "name": "f", "content": "42"},
    ]
    assert run({"messages": messages}).text == 'Mock answer to tool result: "42"'


# --- truncation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "limit", "text", "finish"),
    [
        ("max_tokens", 3, "Mock answer to:", "length"),
        ("max_completion_tokens", 4, 'Mock answer to: "one', "length"),
        ("max_tokens", 1, "Mock", "length"),
        ("max_tokens", 6, 'Mock answer to: "one two" (images:', "length"),
        ("max_tokens", 7, 'Mock answer to: "one two" (images: 0)', "stop"),
        ("max_tokens", 100, 'Mock answer to: "one two" (images: 0)', "stop"),
    ],
)
def test_truncation(field: str, limit: int, text: str, finish: str) -> None:
    result = run({"messages": [user("one two")], field: limit})
    assert (result.text, result.finish_reason) == (text, finish)
    assert result.completion_tokens == len(text.split())


def test_max_completion_tokens_wins_over_max_tokens() -> None:
    body = {"messages": [user("one two")], "max_tokens": 100, "max_completion_tokens": 2}
    assert run(body).text == "Mock answer"


def test_truncation_keeps_original_spacing() -> None:
    assert engine.truncate_words("a\n\nb  c d", 3) == ("a\n\nb  c", True)
    assert engine.truncate_words("a b", None) == ("a b", False)


def test_tool_call_is_never_truncated() -> None:
    body = {"messages": [user("weather")], "tools": [WEATHER], "max_tokens": 1}
    result = run(body)
    assert result.finish_reason == "tool_calls"
    assert result.tool_calls[0].arguments == '{"city":"mock-city","unit":"c"}'


def test_tool_result_answer_truncates() -> None:
    body = {"messages": tool_turns("long result text"), "max_tokens": 6}
    result = run(body)
    assert (result.text, result.finish_reason) == ('Mock answer to tool result: "long', "length")


# --- xml tool format -----------------------------------------------------------------------


def test_xml_tool_format_exact_text() -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "write_file",
            "parameters": {
                "type": "object",
                "properties": {
                    "path": {"type": "string"},
                    "count": {"type": "integer"},
                    "force": {"type": "boolean"},
                    "lines": {"type": "array", "items": {"type": "string"}},
                    "meta": {"type": "object", "properties": {"x": {"type": "number"}}},
                },
            },
        },
    }
    result = run({"messages": [user("go")], "tools": [tool]}, tool_format="xml")
    assert result.text == (
        "<tool_call>\n<function=write_file>\n"
        "<parameter=path>\nmock-path\n</parameter>\n"
        "<parameter=count>\n1\n</parameter>\n"
        "<parameter=force>\ntrue\n</parameter>\n"
        '<parameter=lines>\n["mock-lines"]\n</parameter>\n'
        '<parameter=meta>\n{"x":1}\n</parameter>\n'
        "</function>\n</tool_call>"
    )
    assert result.tool_calls == ()
    assert result.finish_reason == "stop"
    assert result.completion_tokens == len(result.text.split())


def test_xml_tool_format_without_arguments() -> None:
    assert (
        engine.render_xml_call("ping", {})
        == "<tool_call>\n<function=ping>\n</function>\n</tool_call>"
    )


def test_xml_format_leaves_plain_answers_alone() -> None:
    assert (
        run({"messages": [user("hi")]}, tool_format="xml").text
        == 'Mock answer to: "hi" (images: 0)'
    )


def test_unknown_tool_format_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'yaml'"):
        run({"messages": [user("hi")]}, tool_format="yaml")


# --- usage ---------------------------------------------------------------------------------


CALL_C = {"id": "c", "type": "function", "function": {"name": "f", "arguments": '{"a": "b c"}'}}


def test_usage_counts_words_of_all_message_text() -> None:
    messages = [
        {"role": "system", "content": "You are terse."},  # 3
        user([{"type": "text", "text": "look at"}, IMAGE, {"type": "text", "text": "this"}]),  # 3
        {"role": "assistant", "content": None, "tool_calls": [CALL_C]},  # 0 (arguments: not text)
        {"role": "tool", "tool_call_id": "c", "content": "result with four words"},  # 4
    ]
    response = respond({"messages": messages})
    text = response["choices"][0]["message"]["content"]
    assert text == 'Mock answer to tool result: "result with four words"'
    assert response["usage"] == {"prompt_tokens": 10, "completion_tokens": 9, "total_tokens": 19}


@pytest.mark.parametrize(
    ("properties", "completion"),
    [
        ({"a": {"type": "string"}}, 1),
        ({}, 1),
        ({"a": {"type": "string", "default": "two words"}}, 2),
    ],
)
def test_tool_call_completion_tokens(properties: dict[str, Any], completion: int) -> None:
    tool = {"type": "function", "function": {"name": "t", "parameters": {"properties": properties}}}
    assert run({"messages": [user("hi there")], "tools": [tool]}).completion_tokens == completion


# --- render_response -----------------------------------------------------------------------


def test_render_text_response_shape() -> None:
    assert respond({"messages": [user("Hi")]}) == {
        "id": RID,
        "object": "chat.completion",
        "created": CREATED,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": 'Mock answer to: "Hi" (images: 0)'},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 6, "total_tokens": 7},
    }


def test_render_tool_call_response_shape() -> None:
    response = respond({"messages": [user("weather please")], "tools": [WEATHER]})
    assert response["choices"] == [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": f"call_{RID}_0",
                        "type": "function",
                        "function": {
                            "name": "get_weather",
                            "arguments": '{"city":"mock-city","unit":"c"}',
                        },
                    }
                ],
            },
            "finish_reason": "tool_calls",
            "logprobs": None,
        }
    ]
    assert response["usage"] == {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3}


# --- render_stream -------------------------------------------------------------------------

STREAM_CASES = [
    {"messages": [user("Hello there, how are you today?")]},
    {"messages": [user([IMAGE, {"type": "text", "text": "describe"}])]},
    {"messages": [user("weather?")], "tools": [WEATHER]},
    {"messages": [user("x")], "tools": [{"type": "function", "function": {"name": "ping"}}]},
    {"messages": tool_turns("sunny"), "tools": [WEATHER]},
    {"messages": [user("one two three")], "max_tokens": 2},
]


@pytest.mark.parametrize("body", STREAM_CASES)
@pytest.mark.parametrize("include_usage", [False, True])
def test_stream_reassembles_to_the_response(body: dict[str, Any], include_usage: bool) -> None:
    message = respond(body)["choices"][0]
    chunks = decode_events(stream(body, include_usage))
    folded = reassemble(chunks)
    assert folded["content"] == (message["message"]["content"] or "")
    calls = [
        {
            "id": c["id"],
            "type": c["type"],
            "name": c["function"]["name"],
            "arguments": c["function"]["arguments"],
        }
        for c in message["message"].get("tool_calls", [])
    ]
    assert folded["calls"] == calls
    assert folded["finish"] == message["finish_reason"]


@pytest.mark.parametrize("body", STREAM_CASES)
def test_stream_chunk_envelope_and_order(body: dict[str, Any]) -> None:
    chunks = decode_events(stream(body, include_usage=True))
    for chunk in chunks:
        assert {k: chunk[k] for k in ("id", "object", "created", "model")} == {
            "id": RID,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": MODEL,
        }
    with_choices, usage_chunk = chunks[:-1], chunks[-1]
    assert all("usage" not in c and len(c["choices"]) == 1 for c in with_choices)
    assert with_choices[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [c["choices"][0]["finish_reason"] for c in with_choices[:-1]] == [None] * (
        len(with_choices) - 1
    )
    assert with_choices[-1]["choices"][0]["delta"] == {}
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == respond(body)["usage"]


def test_stream_text_comes_in_several_chunks() -> None:
    chunks = decode_events(stream({"messages": [user("Hello there")]}))
    contents = [c["choices"][0]["delta"]["content"] for c in chunks[1:-1]]
    assert len(contents) >= 2
    assert "".join(contents) == 'Mock answer to: "Hello there" (images: 0)'


def test_stream_tool_call_events() -> None:
    chunks = decode_events(stream({"messages": [user("weather?")], "tools": [WEATHER]}))
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[1] == {
        "tool_calls": [
            {
                "index": 0,
                "id": f"call_{RID}_0",
                "type": "function",
                "function": {"name": "get_weather", "arguments": ""},
            }
        ]
    }
    fragments = deltas[2:-1]
    assert len(fragments) >= 2
    assert all(list(f["tool_calls"][0]) == ["index", "function"] for f in fragments)
    assert "".join(f["tool_calls"][0]["function"]["arguments"] for f in fragments) == (
        '{"city":"mock-city","unit":"c"}'
    )
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_legacy_answers_use_function_call() -> None:
    """A client that declared `functions` gets OpenAI's legacy form, whole and streamed."""
    body = {"messages": [user("weather?")], "functions": [WEATHER["function"]]}
    whole = respond(body)
    arguments = '{"city":"mock-city","unit":"c"}'
    assert whole["choices"][0]["message"] == {
        "role": "assistant",
        "content": None,
        "function_call": {"name": "get_weather", "arguments": arguments},
    }
    assert whole["choices"][0]["finish_reason"] == "function_call"
    events = stream(body)
    deltas = [c["choices"][0]["delta"] for c in decode_events(events)]
    assert deltas[1] == {"function_call": {"name": "get_weather", "arguments": ""}}
    assert "".join(d["function_call"]["arguments"] for d in deltas[2:-1]) == arguments
    assert len(deltas) > 4 and all("tool_calls" not in d for d in deltas)
    finish = decode_events(events)[-1]["choices"][0]["finish_reason"]
    assert finish == "function_call"
    plain = {"messages": [user("hi")], "functions": [WEATHER["function"]], "function_call": "none"}
    assert respond(plain) == respond({"messages": [user("hi")]})


def test_stream_without_usage_ends_with_finish_then_done() -> None:
    events = stream({"messages": [user("hi")]})
    assert events[-1] == b"data: [DONE]\n\n"
    last = orjson.loads(events[-2][6:])
    assert last["choices"][0]["finish_reason"] == "stop" and "usage" not in last


def test_stream_events_are_compact_sse() -> None:
    events = stream({"messages": [user("hi")]})
    first = {
        "id": RID,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "delta": {"role": "assistant", "content": ""},
                "finish_reason": None,
            }
        ],
    }
    assert events[0] == b"data: " + orjson.dumps(first) + b"\n\n"


# --- split helpers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "pieces", "expected"),
    [
        ("", 4, []),
        ("   ", 4, ["   "]),
        ("one", 4, ["one"]),
        ("one two", 4, ["one ", "two"]),
        ("a b c d e f", 4, ["a b ", "c d ", "e ", "f"]),
        ("  lead  and trail  ", 2, ["  lead  and ", "trail  "]),
        ("a\nb", 1, ["a\nb"]),
    ],
)
def test_split_text(text: str, pieces: int, expected: list[str]) -> None:
    assert engine.split_text(text, pieces) == expected


def test_split_chars() -> None:
    assert engine.split_chars("{}") == ["{", "}"]
    assert engine.split_chars('{"a":1}', 3) == ['{"a', '":', "1}"]
    assert engine.split_chars("") == []


def test_split_rejects_zero_pieces() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        engine.split_text("a b", 0)


@given(st.text(), st.integers(min_value=1, max_value=8))
def test_split_text_concatenates_back(text: str, pieces: int) -> None:
    chunks = engine.split_text(text, pieces)
    assert "".join(chunks) == text
    assert len(chunks) == min(pieces, len(text.split())) or (
        not text.split() and len(chunks) == (1 if text else 0)
    )
    assert all(chunk for chunk in chunks)


@given(st.text(), st.integers(min_value=0, max_value=10))
def test_truncate_words_is_a_prefix_with_limit_words(text: str, limit: int) -> None:
    cut, truncated = engine.truncate_words(text, limit)
    assert text.startswith(cut)
    assert truncated == (len(text.split()) > limit)
    assert len(cut.split()) == min(limit, len(text.split()))


# --- bad requests --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "'messages' is required and must be a list"),
        ({"messages": None}, "'messages' is required and must be a list"),
        ({"messages": "hi"}, "'messages' is required and must be a list"),
        ({"messages": {"role": "user"}}, "'messages' is required and must be a list"),
        ({"messages": []}, "at least one message"),
        ({"messages": ["hi"]}, r"messages\[0\] must be an object"),
        ({"messages": [user("a"), None]}, r"messages\[1\] must be an object"),
        ({"messages": [{"content": "a"}]}, r"messages\[0\]: unknown role None"),
        ({"messages": [{"role": "robot", "content": "a"}]}, r"messages\[0\]: unknown role 'robot'"),
        (
            {"messages": [{"role": ["user"], "content": "a"}]},
            r"messages\[0\]: unknown role \['user'\]",
        ),
        (
            {"messages": [user(42)]},
            r"messages\[0\]\.content must be a string, a list of parts or null",
        ),
        (
            {"messages": [user(["hi"])]},
            r"messages\[0\]\.content\[0\]: unsupported content part None",
        ),
        (
            {"messages": [user([{"type": "text"}])]},
            r"messages\[0\]\.content\[0\]: a text part needs a 'text' string",
        ),
        ({"messages": [user("a")], "tools": {}}, "'tools' must be a list"),
        (
            {"messages": [user("a")], "tools": [{"type": "custom"}]},
            r"tools\[0\]: only function tools are supported",
        ),
        (
            {"messages": [user("a")], "tools": [{"type": "function", "function": {}}]},
            r"tools\[0\]: a function needs a 'name'",
        ),
        (
            {"messages": [user("a")], "tools": [{"type": "function"}]},
            r"tools\[0\]: a function needs a 'name'",
        ),
        (
            {
                "messages": [user("a")],
                "tools": [{"type": "function", "function": {"name": "f", "parameters": []}}],
            },
            r"tools\[0\]: 'parameters' must be a JSON schema object",
        ),
        ({"messages": [user("a")], "functions": [{"name": 7}]}, r"functions\[0\]: a function"),
        (
            {"messages": [user("a")], "tool_choice": "always"},
            "unknown tool_choice 'always'",
        ),
        ({"messages": [user("a")], "tool_choice": {"type": "function"}}, "'tool_choice' must be"),
        ({"messages": [user("a")], "function_call": 3}, "'function_call' must be"),
        (
            {"messages": [user("a")], "max_tokens": -1},
            "'max_tokens' must be a positive integer",
        ),
        (
            {"messages": [user("a")], "max_tokens": "10"},
            "'max_tokens' must be a positive integer",
        ),
        (
            {"messages": [user("a")], "max_completion_tokens": True},
            "'max_completion_tokens' must be",
        ),
    ],
)
def test_bad_requests_raise_conversion_error(body: dict[str, Any], message: str) -> None:
    with pytest.raises(ConversionError, match=message) as info:
        parse_prompt(body)
    assert info.value.status_hint == 400


async def test_bad_request_is_a_400_in_the_dialects_envelope() -> None:
    response = await mock_transport().request(
        CHAT, [], orjson.dumps({"model": MODEL, "max_tokens": 0}), first_byte_timeout=1
    )
    assert response.status == 400
    error = orjson.loads(await response.read())["error"]
    assert error["message"] == "'messages' is required and must be a list of message objects"
    assert error["type"] == "invalid_request_error"


def mock_transport() -> MockTransport:
    backend = next(b for b in load_config(None, {}).backends if b.protocol == "mock")
    return MockTransport(backend, clock=lambda: CREATED)


async def test_non_object_body_is_rejected() -> None:
    response = await mock_transport().request(CHAT, [], b"[]", first_byte_timeout=1)
    assert response.status == 400
    assert b"request body must be a JSON object" in await response.read()


# --- parse_prompt view and public surface --------------------------------------------------


def test_parse_prompt_view() -> None:
    body = {
        "messages": [
            {"role": "developer", "content": "rules here"},
            user([{"type": "text", "text": "hi"}, IMAGE]),
        ],
        "tools": [WEATHER],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "max_tokens": 9,
    }
    assert parse_prompt(body) == MockPrompt(
        last_role="user",
        user_text="hi",
        tool_results=(),
        image_count=1,
        prompt_tokens=3,
        tools=(MockTool("get_weather", WEATHER["function"]["parameters"]),),
        forced_tool="get_weather",
        tools_disabled=False,
        max_tokens=9,
    )


def test_engine_is_usable_without_a_dialect() -> None:
    prompt = MockPrompt(
        last_role="user", user_text="q", tool_results=(), image_count=0, prompt_tokens=1
    )
    assert engine.answer(prompt, response_id="r") == MockAnswer(
        text='Mock answer to: "q" (images: 0)',
        tool_calls=(),
        finish_reason="stop",
        prompt_tokens=1,
        completion_tokens=6,
    )


def test_exported_members() -> None:
    assert sorted(louter.mock.__all__) == sorted(
        [
            "MockAnswer",
            "MockPrompt",
            "MockTool",
            "MockToolCall",
            "answer",
            "arguments_for",
            "count_words",
            "render_xml_call",
            "select_tool",
            "split_chars",
            "split_text",
            "truncate_words",
            "value_for",
        ]
    )
    assert all(hasattr(louter.mock, name) for name in louter.mock.__all__)
