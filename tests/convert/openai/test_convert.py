"""OpenAI Chat Completions requests and responses <-> the neutral model (louter.convert.openai).

Golden fixtures live in tests/fixtures/openai/:
    requests/<case>.json   {"wire": client body, "backend": emit_request(parse_request(wire))}
                           or {"wire": ..., "error": {"status": 400, "message": substring}}
    responses/<case>.json  {"backend": body, "neutral": parse_response(body), "client":
                           emit_response(neutral)} or an "error" (502) from either step
`LOUTER_REGEN=1 pytest tests/convert/openai/test_convert.py` rewrites the expected parts from the
code; the git diff is the review.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import httpx2
import openai
import orjson
import pytest

from louter.convert.dialect import DIALECTS
from louter.convert.model import (
    Image,
    Message,
    Part,
    Reasoning,
    Request,
    Response,
    ResponseFormat,
    ResponseMeta,
    StreamEvent,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
    Usage,
)
from louter.convert.openai.request import emit_request, legacy_functions, parse_request
from louter.convert.openai.response import (
    emit_response,
    emit_usage,
    legacy_dropped,
    map_finish,
    parse_response,
    parse_usage,
)
from louter.convert.openai.wire import FINISH_IN, FINISH_OUT, error_body, error_message
from louter.errors import ConversionError
from tests.paths import FIXTURES as FIXTURES_DIR

FIXTURES = FIXTURES_DIR / "openai"
REGEN = os.environ.get("LOUTER_REGEN") == "1"
BACKEND_MODEL = "backend-model"
META = ResponseMeta(id="chatcmpl-louter-1", model="client-model", created=1700000000)


def ids(n: int) -> str:
    return f"call_louter_{n}"


def neutral_json(value: Any) -> Any:
    """A neutral object as JSON: parts and stream events tagged with their class name,
    None fields left out."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        if isinstance(value, Part | StreamEvent):
            out["type"] = type(value).__name__
        for field in dataclasses.fields(value):
            item = getattr(value, field.name)
            if item is not None:
                out[field.name] = neutral_json(item)
        return out
    if isinstance(value, tuple | list):
        return [neutral_json(item) for item in value]
    return value


def load_cases(kind: str) -> list[Any]:
    paths = sorted((FIXTURES / kind).glob("*.json"))
    assert paths, f"no fixtures in {kind}"
    return [pytest.param(path, id=path.stem) for path in paths]


def write_case(path: Path, case: dict[str, Any]) -> None:
    path.write_bytes(orjson.dumps(case, option=orjson.OPT_INDENT_2) + b"\n")


# --------------------------------------------------------------------------- golden requests


@pytest.mark.parametrize("path", load_cases("requests"))
def test_request_golden(path: Path) -> None:
    case = orjson.loads(path.read_bytes())
    if "error" in case:
        with pytest.raises(ConversionError) as caught:
            parse_request(case["wire"])
        assert caught.value.status_hint == case["error"]["status"] == 400
        assert case["error"]["message"] in caught.value.message
        return
    emitted = emit_request(parse_request(case["wire"]), BACKEND_MODEL)
    if REGEN:
        write_case(path, {**case, "backend": emitted})
    assert emitted == case["backend"]
    # What louter sends is itself a valid client request that converts to the same body.
    assert emit_request(parse_request(emitted), BACKEND_MODEL) == emitted


def wire(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": list(messages), **extra}


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def test_parse_request_neutral_fields() -> None:
    request = parse_request(
        wire(
            {"role": "developer", "content": "be brief"},
            user("hi"),
            stream=True,
            stream_options={"include_usage": True},
            temperature=0,
            top_p=1,
            top_k=40,
            max_completion_tokens=99,
            stop="END",
            reasoning_effort="high",
            parallel_tool_calls=False,
            response_format={"type": "json_object"},
        )
    )
    assert request == Request(
        model="m",
        messages=(Message("system", (Text("be brief"),)), Message("user", (Text("hi"),))),
        parallel_tool_calls=False,
        max_tokens=99,
        temperature=0.0,
        top_p=1.0,
        top_k=40,
        stop=("END",),
        stream=True,
        include_usage=True,
        response_format=ResponseFormat("json_object"),
        reasoning_effort="high",
        effort_source="client",
    )


@pytest.mark.parametrize(
    ("asked", "effort", "sent"),
    [
        (True, "low", "low"),
        (True, "none", "none"),  # the operator's or the client's own: as is
        (False, "medium", None),  # derived from another dialect's thinking settings
        (True, None, None),
    ],
)
def test_emit_request_sends_an_effort_asked_as_such(
    asked: bool, effort: str | None, sent: str | None
) -> None:
    request = Request(
        model="m",
        messages=(Message("user", (Text("hi"),)),),
        reasoning_effort=effort,
        effort_source="operator" if asked else None,
    )
    assert emit_request(request, "b").get("reasoning_effort") == sent


def test_parse_request_images_become_inline_data() -> None:
    url = "data:image/webp;base64,UklGRg=="
    request = parse_request(
        wire(
            user(
                [
                    {"type": "text", "text": "see"},
                    {"type": "image_url", "image_url": {"url": url}},
                    {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
                    {"type": "image_url", "image_url": {"url": "data:image/svg+xml,<svg/>"}},
                ]
            )
        )
    )
    assert request.messages[0].parts == (
        Text("see"),
        Image(media_type="image/webp", data="UklGRg=="),
        Image(url="https://x.test/a.png"),
        Image(url="data:image/svg+xml,<svg/>"),  # not base64: kept as a URL
    )


def test_parse_request_pairs_tool_results_by_id_with_the_real_name() -> None:
    calls = [
        {"id": "c1", "type": "function", "function": {"name": "a", "arguments": "{}"}},
        {"id": "c2", "type": "function", "function": {"name": "b", "arguments": "{}"}},
    ]
    request = parse_request(
        wire(
            user("x"),
            {"role": "assistant", "content": "", "tool_calls": calls},
            {"role": "tool", "tool_call_id": "c2", "content": "B"},
            {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "A"}]},
        )
    )
    assert request.messages[1] == Message("assistant", (ToolCall("c1", "a"), ToolCall("c2", "b")))
    assert request.messages[2:] == (
        Message("tool", (ToolResult("c2", "b", (Text("B"),)),)),
        Message("tool", (ToolResult("c1", "a", (Text("A"),)),)),
    )


def test_parse_request_tools_and_choice() -> None:
    request = parse_request(
        wire(
            user("x"),
            tools=[{"type": "function", "function": {"name": "f", "description": 3}}],
            functions=[{"name": "g", "parameters": {"type": "object"}, "description": "G"}],
            tool_choice={"type": "function", "function": {"name": "g"}},
        )
    )
    assert request.tools == (
        Tool("f", "", {"type": "object", "properties": {}}),
        Tool("g", "G", {"type": "object"}),
    )
    assert request.tool_choice == ToolChoice("tool", "g")


def test_parse_request_assistant_reasoning_is_kept_but_not_sent() -> None:
    body = wire(user("x"), {"role": "assistant", "content": "4", "reasoning_content": "2+2"})
    request = parse_request(body)
    assert request.messages[1].parts == (Reasoning("2+2"), Text("4"))
    assert emit_request(request, "b")["messages"][1] == {"role": "assistant", "content": "4"}


@pytest.mark.parametrize("n", [None, 1])
def test_n_of_one_is_accepted(n: int | None) -> None:
    assert parse_request(wire(user("x"), n=n)).model == "m"


@pytest.mark.parametrize("n", [0, 2, 5])
def test_n_other_than_one_is_rejected(n: int) -> None:
    with pytest.raises(ConversionError) as caught:
        parse_request(wire(user("x"), n=n))
    assert caught.value.status_hint == 400
    assert "'n'" in caught.value.message


@pytest.mark.parametrize(
    "body",
    [
        {"model": "m", "messages": [{"role": {"x": 1}}]},  # unhashable role
        {"model": "m", "messages": [{"role": "user", "content": [["text"]]}]},
        {"model": "m", "messages": [{"role": "assistant", "tool_calls": ["x"]}]},
        {"model": "m", "messages": [{"role": "tool", "tool_call_id": ["x"]}]},
        {"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [None]},
        {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream_options": 3},
    ],
)
def test_odd_shapes_never_crash(body: dict[str, Any]) -> None:
    """Whatever the JSON, parse_request answers or raises ConversionError(400)."""
    try:
        parse_request(body)
    except ConversionError as exc:
        assert exc.status_hint == 400


def test_emit_request_from_other_dialects() -> None:
    """Neutral requests another dialect produced: several system texts stay parts, an
    error result is marked, reasoning and signatures are not sent, tools and formats."""
    request = Request(
        model="claude-x",
        messages=(
            Message("system", (Text("You are Claude Code."), Text("Be terse."))),
            Message("user", (Text("hi"),)),
            Message(
                "assistant",
                (Reasoning("hmm", signature="sig"), Text("ok"), ToolCall("t1", "ls", '{"p":"."}')),
            ),
            Message(
                "tool",
                (
                    ToolResult("t1", "ls", (Text("denied"),), is_error=True),
                    ToolResult("t2", "cat", (Text("a"), Text("b"), Image(data="AA=="))),
                ),
            ),
        ),
        tools=(Tool("ls", "list", {"type": "object"}),),
        tool_choice=ToolChoice("required"),
        top_k=5,
        reasoning_budget=1024,
        response_format=ResponseFormat("json_schema", {"type": "object"}, None),
    )
    assert emit_request(request, "gpt") == {
        "model": "gpt",
        "messages": [
            {
                "role": "system",
                "content": [
                    {"type": "text", "text": "You are Claude Code."},
                    {"type": "text", "text": "Be terse."},
                ],
            },
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": "ok",
                "tool_calls": [
                    {
                        "id": "t1",
                        "type": "function",
                        "function": {"name": "ls", "arguments": '{"p":"."}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "t1", "content": "Error: denied"},
            {"role": "tool", "tool_call_id": "t2", "content": "a\nb"},
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}
                ],
            },
        ],
        "tools": [
            {
                "type": "function",
                "function": {"name": "ls", "parameters": {"type": "object"}, "description": "list"},
            }
        ],
        "tool_choice": "required",
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "response", "schema": {"type": "object"}},
        },
    }


def test_emit_request_leaves_out_parts_a_role_cannot_carry() -> None:
    request = Request(
        model="x",
        messages=(
            Message("user", (Reasoning("r"), Text("look"), Image(url="https://x/i.png"))),
            Message("assistant", (ToolCall("c", "f"),)),
            Message("tool", (Text("stray"), ToolResult("c", "f", (Text("ok"),)))),
        ),
    )
    assert emit_request(request, "b")["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "https://x/i.png"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c", "content": "ok"},
    ]


# --------------------------------------------------------------------------- golden responses


@pytest.mark.parametrize("path", load_cases("responses"))
def test_response_golden(path: Path) -> None:
    case = orjson.loads(path.read_bytes())
    error = case.get("error")
    try:
        response = parse_response(case["backend"], ids)
    except ConversionError as exc:
        assert error is not None, exc.message
        assert "neutral" not in case
        assert (exc.status_hint, error["status"]) == (502, 502)
        assert error["message"] in exc.message
        return
    if REGEN:
        case["neutral"] = neutral_json(response)
    assert neutral_json(response) == case["neutral"]
    try:
        client = emit_response(response, META)
    except ConversionError as exc:
        assert error is not None, exc.message
        assert (exc.status_hint, error["status"]) == (502, 502)
        assert error["message"] in exc.message
        return
    if REGEN:
        write_case(path, {**case, "client": client})
    assert error is None
    assert client == case["client"]


@pytest.mark.parametrize(
    ("reason", "has_calls", "expected"),
    [
        ("stop", False, "stop"),
        ("stop", True, "tool_calls"),
        ("length", False, "length"),
        ("length", True, "length"),
        ("tool_calls", True, "tool_calls"),
        ("tool_calls", False, "tool_calls"),
        ("function_call", True, "tool_calls"),
        ("content_filter", False, "content_filter"),
        ("content_filter", True, "content_filter"),
        ("eos", False, "error"),
        ("error", False, "error"),
        ("", False, "error"),
        (None, False, "error"),
        (None, True, "error"),
        (3, False, "error"),
    ],
)
def test_map_finish(reason: Any, has_calls: bool, expected: str) -> None:
    assert map_finish(reason, has_calls) == expected


def test_finish_tables_are_explicit() -> None:
    assert FINISH_IN == {
        "stop": "stop",
        "length": "length",
        "tool_calls": "tool_calls",
        "function_call": "tool_calls",
        "content_filter": "content_filter",
    }
    assert set(FINISH_OUT) == {"stop", "length", "tool_calls", "content_filter"}
    assert all(key == value for key, value in FINISH_OUT.items())


@pytest.mark.parametrize("finish", ["stop", "length", "tool_calls", "content_filter"])
def test_emit_response_finish(finish: str) -> None:
    body = emit_response(Response("r", "m", (Text("x"),), finish), META)
    assert body["choices"][0]["finish_reason"] == finish


def test_emit_response_error_is_never_a_stop() -> None:
    with pytest.raises(ConversionError) as caught:
        emit_response(Response("r", "m", (Text("partial"),), "error"), META)
    assert caught.value.status_hint == 502


def test_emit_response_meta_and_parts() -> None:
    response = Response(
        id="upstream-id",
        model="upstream-model",
        parts=(Reasoning("a"), Text("x"), Image(data="AA=="), Reasoning("b"), Text("y")),
        usage=Usage(3, 4),
    )
    assert emit_response(response, META) == {
        "id": "chatcmpl-louter-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "client-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "xy", "reasoning_content": "ab"},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    }


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("x", None),
        ({}, Usage(0, 0)),
        ({"prompt_tokens": 5, "completion_tokens": 6}, Usage(5, 6)),
        (
            {
                "prompt_tokens": 5,
                "completion_tokens": 6,
                "completion_tokens_details": {"reasoning_tokens": 2},
                "prompt_tokens_details": {"cached_tokens": 0},
            },
            Usage(5, 6, reasoning_tokens=2, cached_tokens=0),
        ),
        ({"prompt_tokens": 5.0, "completion_tokens": None}, Usage(5, 0)),
        ({"prompt_tokens": "5", "completion_tokens": True}, Usage(0, 0)),  # never crashes
        ({"prompt_tokens": -1, "completion_tokens_details": None}, Usage(0, 0)),
        ({"completion_tokens_details": {"reasoning_tokens": "x"}}, Usage(0, 0)),
    ],
)
def test_parse_usage(raw: Any, expected: Usage | None) -> None:
    assert parse_usage(raw) == expected


def test_usage_round_trip() -> None:
    for usage in (
        Usage(1, 2),
        Usage(1, 2, 0, 0),
        Usage(10, 20, reasoning_tokens=5, cached_tokens=7),
    ):
        assert parse_usage(emit_usage(usage)) == usage
    assert emit_usage(None) is None
    assert emit_usage(Usage(1, 2)) == {
        "prompt_tokens": 1,
        "completion_tokens": 2,
        "total_tokens": 3,
    }


def test_missing_ids_come_from_the_factory_by_position() -> None:
    body = {
        "choices": [
            {
                "message": {
                    "tool_calls": [
                        {"id": "keep", "function": {"name": "a"}},
                        {"id": None, "function": {"name": "b"}},
                        {"id": 7, "function": {"name": "c"}},
                    ]
                },
                "finish_reason": "tool_calls",
            }
        ]
    }
    calls = parse_response(body, ids).tool_calls()
    assert [call.id for call in calls] == ["keep", "call_louter_1", "call_louter_2"]


@pytest.mark.parametrize(
    "body",
    [
        {"error": {"message": "boom", "code": 500}},
        {"error": "boom"},
        {"choices": None},
        {"choices": ["x"]},
        {"choices": [{"message": "x"}]},
        {"choices": [{"message": {"tool_calls": {"id": "x"}}}]},
        {"choices": [{"message": {"tool_calls": [{"function": {"name": "f", "arguments": 3}}]}}]},
    ],
)
def test_bad_backend_answers_are_502(body: dict[str, Any]) -> None:
    try:
        response = parse_response(body, ids)
    except ConversionError as exc:
        assert exc.status_hint == 502
        return
    # A shape that parses must not pass as a normal answer.
    assert response.finish_reason == "error"


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "invalid_request_error"),
        (422, "invalid_request_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (504, "api_error"),
    ],
)
def test_error_body(status: int, kind: str) -> None:
    assert error_body(status, "msg") == {
        "error": {"message": "msg", "type": kind, "param": None, "code": None}
    }


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            b'{"error":{"code":400,"message":"too long","type":"exceed_context_size_error"}}',
            "too long",
        ),
        (
            b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
            "Overloaded",
        ),
        (b'{"error":{"code":404,"message":"not found","status":"NOT_FOUND"}}', "not found"),
        (b'{"error":"plain"}', "plain"),
        (b'{"error":{"msg":"short"}}', "short"),
        (b'{"error":{"code":1}}', '{"code":1}'),
        (b'{"message":"top level"}', "top level"),
        (b'{"detail":"Not Found"}', "Not Found"),
        (b'{"error":null,"message":"the real one"}', "the real one"),
        (b'{"other":1}', '{"other":1}'),
        (b"[1,2]", "[1,2]"),
        (b"<html>Bad Gateway</html>\n", "<html>Bad Gateway</html>"),
        (b"", "(empty body)"),
        (b"\xff\xfe oops", "\ufffd\ufffd oops"),
    ],
)
def test_error_message(raw: bytes, message: str) -> None:
    assert error_message(raw) == message


def test_error_message_is_capped() -> None:
    assert len(error_message(b"x" * 5000)) == 1000


# --------------------------------------------------------------------------- the SDK


LEGACY_META = dataclasses.replace(META, legacy_functions=True)
TWO_CALLS = Response(
    id="r",
    model="m",
    parts=(ToolCall("call_1", "get_weather", '{"city":"Paris"}'), ToolCall("call_2", "g", "{}")),
    finish_reason="tool_calls",
)


def test_penalties_are_sent_where_the_dialect_has_them() -> None:
    """OpenAI, Gemini and Completions carry both penalties; Anthropic and Responses have no
    field for them, so their requests leave them out and `Dialect.dropped` names them."""
    request = parse_request(wire(user("hi"), presence_penalty=0.5, frequency_penalty=1))
    assert (request.presence_penalty, request.frequency_penalty) == (0.5, 1.0)
    carried = {"openai": ("presence_penalty", "frequency_penalty"),
               "completions": ("presence_penalty", "frequency_penalty"),
               "gemini": ("presencePenalty", "frequencyPenalty")}  # fmt: skip
    for name, dialect in DIALECTS.items():
        body = orjson.dumps(dialect.emit_request(request, "x")).decode()
        if name in carried:
            assert dialect.dropped(request) == []
            assert all(f'"{key}":' in body for key in carried[name])
        else:
            assert dialect.dropped(request) == ["presence_penalty", "frequency_penalty"]
            assert "enalty" not in body
    assert DIALECTS["anthropic"].dropped(parse_request(wire(user("hi")))) == []
    with pytest.raises(ConversionError, match="'presence_penalty' must be a number"):
        parse_request(wire(user("hi"), presence_penalty="high"))


def test_legacy_functions_is_functions_without_tools() -> None:
    functions = [{"name": "f", "parameters": {"type": "object"}}]
    tools = [{"type": "function", "function": functions[0]}]
    assert legacy_functions({"functions": functions})
    assert not legacy_functions({"functions": functions, "tools": tools})
    assert not legacy_functions({"tools": tools}) and not legacy_functions({"functions": []})


def test_legacy_requests_ask_for_one_call() -> None:
    functions = [{"name": "f", "parameters": {"type": "object"}}]
    assert parse_request(wire(user("hi"), functions=functions)).parallel_tool_calls is False
    asked = wire(user("hi"), functions=functions, parallel_tool_calls=True)
    assert parse_request(asked).parallel_tool_calls is True
    tools = [{"type": "function", "function": functions[0]}]
    assert parse_request(wire(user("hi"), tools=tools)).parallel_tool_calls is None


def test_emit_response_legacy_function_call() -> None:
    """A client that sent `functions` reads `message.function_call` (one call) and finish
    reason "function_call"; the other calls are named for the log."""
    body = emit_response(TWO_CALLS, LEGACY_META)
    choice = body["choices"][0]
    assert choice["message"] == {
        "role": "assistant",
        "content": None,
        "function_call": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
    }
    assert choice["finish_reason"] == "function_call"
    assert legacy_dropped(TWO_CALLS) == [
        "the client sent legacy 'functions' and reads one 'function_call': "
        "dropped the backend's other tool calls: g (call_2)"
    ]
    one = dataclasses.replace(TWO_CALLS, parts=(Text("ok"), *TWO_CALLS.parts[:1]))
    assert legacy_dropped(one) == []
    assert emit_response(one, LEGACY_META)["choices"][0]["message"]["content"] == "ok"
    plain = Response("r", "m", (Text("hi"),))
    assert emit_response(plain, LEGACY_META) == emit_response(plain, META)
    # louter reads its own legacy answer back as the same call.
    parsed = parse_response(body, ids)
    assert parsed.tool_calls() == [ToolCall("call_louter_0", "get_weather", '{"city":"Paris"}')]
    assert parsed.finish_reason == "tool_calls"


def test_the_sdk_reads_emitted_legacy_responses() -> None:
    client = sdk_client(emit_response(TWO_CALLS, LEGACY_META))
    completion = client.chat.completions.create(model="client-model", messages=[])
    choice = completion.choices[0]
    assert choice.finish_reason == "function_call" and choice.message.tool_calls is None
    assert choice.message.function_call is not None
    call = choice.message.function_call
    assert (call.name, call.arguments) == ("get_weather", '{"city":"Paris"}')


def sdk_client(body: dict[str, Any]) -> openai.OpenAI:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json=body)

    transport = httpx2.MockTransport(handler)
    return openai.OpenAI(
        api_key="k",
        base_url="http://louter.test/v1",
        http_client=httpx2.Client(transport=transport),
        max_retries=0,
    )


def test_the_sdk_reads_emitted_responses() -> None:
    response = Response(
        id="r",
        model="m",
        parts=(Reasoning("think"), Text("Sure."), ToolCall("call_1", "f", '{"a":1}')),
        finish_reason="tool_calls",
        usage=Usage(10, 5, reasoning_tokens=2, cached_tokens=4),
    )
    client = sdk_client(emit_response(response, META))
    completion = client.chat.completions.create(model="client-model", messages=[])
    assert (completion.id, completion.model, completion.created) == (
        META.id,
        META.model,
        META.created,
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Sure."
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert (call.id, call.function.name, call.function.arguments) == ("call_1", "f", '{"a":1}')
    usage = completion.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (10, 5, 15)
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 2
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 4
