"""OpenAI Responses requests and answers: golden fixtures built from real captures
(tests/fixtures/responses/README.md), round trips, edge-case tables and the official SDK
reading emitted answers.

`LOUTER_REGEN=1 pytest tests/convert/responses/test_convert.py` rewrites the expected files.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from louter.convert.model import (
    Image,
    Message,
    Reasoning,
    Request,
    Response,
    ResponseFormat,
    ResponseMeta,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
    Usage,
)
from louter.convert.responses.request import emit_request, parse_request
from louter.convert.responses.response import emit_response, parse_response
from louter.convert.responses.tools import tool_kinds
from louter.convert.responses.wire import (
    FUNCTIONS,
    ToolKinds,
    WireTool,
    custom_input,
    custom_schema,
    error_body,
    error_message,
    item_id,
)
from louter.errors import ConversionError
from tests.paths import FIXTURES as FIXTURES_DIR

FIXTURES = FIXTURES_DIR / "responses"
REGEN = os.environ.get("LOUTER_REGEN") == "1"
META = ResponseMeta(id="resp_louter01", model="client-model", created=1700000000, input_tokens=42)
# The kinds of the tools the hand-made answers call: a custom tool and a namespaced one.
KINDS = ToolKinds(
    {
        "apply_patch": WireTool("apply_patch", custom=True),
        "multi_agent_v1__spawn_agent": WireTool("spawn_agent", "multi_agent_v1"),
    }
)


def ids(n: int) -> str:
    return f"call_louter_{n}"


# --------------------------------------------------------------------------- golden helpers


def to_json(value: Any) -> Any:
    """Neutral objects as plain JSON: `@type` names the class, default fields are left out."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {"@type": type(value).__name__}
        for field in dataclasses.fields(value):
            item = getattr(value, field.name)
            if field.default is not dataclasses.MISSING and item == field.default:
                continue
            if field.default_factory is not dataclasses.MISSING and item == field.default_factory():
                continue
            out[field.name] = to_json(item)
        return out
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    return value


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def golden(path: Path, actual: Any) -> None:
    """Compare with the checked-in expected JSON (or rewrite it under LOUTER_REGEN=1)."""
    actual = json.loads(json.dumps(actual))
    if REGEN:
        path.write_text(dumps(actual), encoding="utf-8")
    assert actual == json.loads(path.read_text(encoding="utf-8"))


def cases(kind: str) -> list[str]:
    paths = (FIXTURES / kind).glob("*.json")
    return sorted(p.stem for p in paths if not p.stem.endswith(".expected"))


def fixture_body(kind: str, name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((FIXTURES / kind / f"{name}.json").read_text())["body"]
    return body


def rejected(body: dict[str, Any]) -> str:
    with pytest.raises(ConversionError) as info:
        parse_request(body)
    assert info.value.status_hint == 400
    return info.value.message


def request(*items: Any, **extra: Any) -> Request:
    return parse_request({"model": "m", "input": list(items), **extra})


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def call(call_id: str, name: str = "f", **extra: Any) -> dict[str, Any]:
    return {"type": "function_call", "call_id": call_id, "name": name, "arguments": "{}", **extra}


def output(call_id: str, value: Any = "ok") -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": value}


# --------------------------------------------------------------------------- golden: requests


@pytest.mark.parametrize("name", cases("requests"))
def test_request_golden(name: str) -> None:
    body = fixture_body("requests", name)
    parsed = parse_request(body)
    golden(
        FIXTURES / "requests" / f"{name}.expected.json",
        {
            "neutral": to_json(parsed),
            "kinds": to_json(tool_kinds(body)),
            "emitted": emit_request(parsed, "backend-model"),
        },
    )


def lossless(request: Request) -> Request:
    """What survives emit_request: reasoning only with its opaque data."""
    messages = []
    for message in request.messages:
        parts = tuple(
            p for p in message.parts if not isinstance(p, Reasoning) or p.redacted is not None
        )
        messages.append(Message(message.role, parts))
    return dataclasses.replace(request, messages=tuple(messages), model="backend-model")


@pytest.mark.parametrize("name", cases("requests"))
def test_request_round_trip(name: str) -> None:
    """parse(emit(parse(x))) == parse(x), up to the documented losses."""
    parsed = parse_request(fixture_body("requests", name))
    again = parse_request(emit_request(parsed, "backend-model"))
    assert again == lossless(parsed)


def test_codex_requests_are_flattened_as_documented() -> None:
    body = fixture_body("requests", "codex-namespace")
    parsed = parse_request(body)
    names = [tool.name for tool in parsed.tools]
    assert "multi_agent_v1__spawn_agent" in names and "web_search" not in names
    assert tool_kinds(body).wire("multi_agent_v1__spawn_agent") == WireTool(
        "spawn_agent", "multi_agent_v1"
    )
    assert [m.role for m in parsed.messages][:2] == ["system", "system"]
    basic = parse_request(fixture_body("requests", "codex-basic"))
    patch = basic.tool("apply_patch")
    assert patch is not None and patch.parameters["required"] == ["input"]
    assert "lark grammar" in patch.parameters["properties"]["input"]["description"]


def test_tool_turns_merge_calls_and_results() -> None:
    parsed = parse_request(fixture_body("requests", "codex-parallel-turn"))
    assistant, tool = parsed.messages[-2:]
    assert [type(p) for p in assistant.parts] == [ToolCall, ToolCall]
    assert [(r.call_id, r.name) for r in tool.parts if isinstance(r, ToolResult)] == [
        ("call_stub1_0", "exec_command"),
        ("call_stub1_1", "exec_command"),
    ]


# --------------------------------------------------------------------------- golden: answers


@pytest.mark.parametrize("name", cases("responses"))
def test_response_golden(name: str) -> None:
    parsed = parse_response(fixture_body("responses", name), ids)
    golden(
        FIXTURES / "responses" / f"{name}.expected.json",
        {"neutral": to_json(parsed), "emitted": emit_response(parsed, META, KINDS)},
    )


@pytest.mark.parametrize("name", cases("responses"))
def test_response_round_trip(name: str) -> None:
    """parse_response(emit_response(r)) == r, but for the ids and model of META."""
    parsed = parse_response(fixture_body("responses", name), ids)
    again = parse_response(emit_response(parsed, META), ids)
    usage = parsed.usage
    if usage is not None:  # details are written as 0 when unknown
        usage = dataclasses.replace(
            usage,
            cached_tokens=usage.cached_tokens or 0,
            reasoning_tokens=usage.reasoning_tokens or 0,
        )
    assert again == dataclasses.replace(parsed, id=META.id, model=META.model, usage=usage)


# --------------------------------------------------------------------------- requests: tables


def test_string_input_and_instructions() -> None:
    parsed = parse_request({"model": "m", "input": "hi", "instructions": "be brief"})
    assert parsed.messages == (
        Message("system", (Text("be brief"),)),
        Message("user", (Text("hi"),)),
    )
    assert parse_request({"model": "m", "input": ""}).messages == ()


def test_message_roles_and_parts() -> None:
    parsed = request(
        {"role": "developer", "content": "dev"},
        {"role": "system", "content": [{"type": "input_text", "text": "sys"}]},
        {"role": "user", "content": [{"type": "input_image", "image_url": "https://x/y.png"}]},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]},
        {"role": "assistant", "content": [{"type": "input_text", "text": "yes"}]},
        {"role": "user", "content": [{"type": "input_text", "text": ""}]},
    )
    assert parsed.messages == (
        Message("system", (Text("dev"),)),
        Message("system", (Text("sys"),)),
        Message("user", (Image(url="https://x/y.png"),)),
        Message("assistant", (Text("no"), Text("yes"))),
    )


def test_call_items() -> None:
    parsed = request(
        call("c1", arguments={"a": 1}),
        {"type": "function_call", "call_id": "c2", "name": "g"},
        {"type": "custom_tool_call", "call_id": "c3", "name": "p", "input": 'say "hi"\n'},
        output("c3", [{"type": "input_image", "image_url": "data:image/gif;base64,R0lG"}]),
        output("c1"),
    )
    assert parsed.messages[0].parts == (
        ToolCall("c1", "f", '{"a":1}'),
        ToolCall("c2", "g", "{}"),
        ToolCall("c3", "p", '{"input":"say \\"hi\\"\\n"}'),
    )
    assert parsed.messages[1].parts == (
        ToolResult("c3", "p", (Image("image/gif", "R0lG"),)),
        ToolResult("c1", "f", (Text("ok"),)),
    )


def test_reasoning_items() -> None:
    parsed = request(
        {
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": "a"}],
            "content": [{"type": "reasoning_text", "text": "b"}],
        },  # fmt: skip
        {"type": "reasoning", "summary": [], "encrypted_content": "louter-signature:s"},
        {"type": "reasoning", "summary": []},
        {"type": "reasoning", "summary": [], "encrypted_content": "opaque"},
    )
    assert parsed.messages[0].parts == (
        Reasoning("a\n\nb"),
        Reasoning(signature="s"),
        Reasoning(redacted="opaque"),
    )


def test_server_tool_items_are_dropped() -> None:
    parsed = request(
        user("q"),
        {"type": "web_search_call", "id": "ws", "status": "completed", "action": {}},
        {"type": "tool_search_call", "arguments": {}},
        {"type": "tool_search_output", "tools": []},
    )
    assert parsed.messages == (Message("user", (Text("q"),)),)


def test_tools_and_choices() -> None:
    parsed = request(
        user("q"),
        tools=[
            {"type": "function", "name": "f"},
            {"type": "custom", "name": "c"},
            {"type": "file_search", "vector_store_ids": []},
            {"type": "code_interpreter", "container": {"type": "auto"}},
            {"type": "some_future_tool"},
            {
                "type": "namespace",
                "name": "ns",
                "description": "",
                "tools": [{"type": "function", "name": "g", "parameters": None}],
            },  # fmt: skip
        ],
        tool_choice={"type": "custom", "name": "c"},
    )
    assert [tool.name for tool in parsed.tools] == ["f", "c", "ns__g"]
    assert parsed.tools[0] == Tool("f", "", {"type": "object", "properties": {}})
    assert parsed.tools[1].parameters == custom_schema(None)
    assert parsed.tool_choice == ToolChoice("tool", "c")


NAMESPACED = [
    {"type": "function", "name": "plain"},
    {"type": "namespace", "name": "a", "description": "", "tools": [
        {"type": "function", "name": "only"}, {"type": "function", "name": "both"},
        {"type": "function", "name": "plain"}]},
    {"type": "namespace", "name": "b", "description": "", "tools": [
        {"type": "custom", "name": "both"}]},
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "namespace", "neutral"),
    [
        ("only", None, "a__only"),  # the namespace was dropped by the client
        ("only", "a", "a__only"),
        ("both", None, "both"),  # two namespaces have it: left as is
        ("both", "b", "b__both"),
        ("plain", None, "plain"),  # a plain tool wins
        ("a__only", None, "a__only"),
        ("unknown", None, "unknown"),
    ],
)
def test_call_names_resolve_namespaces(name: str, namespace: str | None, neutral: str) -> None:
    item = call("c", name, **({"namespace": namespace} if namespace else {}))
    parsed = request(
        item, output("c", None), tools=NAMESPACED, tool_choice={"type": "function", "name": name}
    )
    assert parsed.messages[0].parts == (ToolCall("c", neutral),)
    assert parsed.messages[1].parts == (ToolResult("c", neutral),)
    if namespace is None:
        assert parsed.tool_choice == ToolChoice("tool", neutral)


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", ToolChoice("auto")),
        ("none", ToolChoice("none")),
        ("required", ToolChoice("required")),
        ({"type": "function", "name": "f"}, ToolChoice("tool", "f")),
        ({"type": "allowed_tools", "mode": "required", "tools": []}, ToolChoice("required")),
        ({"type": "web_search_preview"}, ToolChoice("auto")),
    ],
)
def test_tool_choice_table(choice: Any, expected: ToolChoice) -> None:
    assert request(user("q"), tool_choice=choice).tool_choice == expected


@pytest.mark.parametrize(
    ("effort", "expected"),
    [
        ("none", "none"),
        ("minimal", "low"),
        ("medium", "medium"),
        ("xhigh", "high"),
        ("max", "high"),
    ],
)
def test_reasoning_effort_table(effort: str, expected: str) -> None:
    parsed = request(user("q"), reasoning={"effort": effort, "summary": "auto"})
    assert parsed.reasoning_effort == expected
    assert request(user("q"), reasoning={"summary": "auto"}).reasoning_effort is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ({"verbosity": "low"}, None),
        ({"format": {"type": "text"}}, ResponseFormat("text")),
        ({"format": {"type": "json_object"}}, ResponseFormat("json_object")),
        (
            {"format": {"type": "json_schema", "name": "n", "schema": {"type": "object"}}},
            ResponseFormat("json_schema", {"type": "object"}, "n"),
        ),
    ],
)
def test_text_format_table(text: dict[str, Any], expected: ResponseFormat | None) -> None:
    assert request(user("q"), text=text).response_format == expected


def test_options() -> None:
    parsed = request(
        user("q"),
        max_output_tokens=10,
        temperature=1,
        top_p=0.5,
        parallel_tool_calls=True,
        stream=True,
        store=False,
        include=["reasoning.encrypted_content"],
        prompt_cache_key="k",
        client_metadata={"a": "b"},
        metadata={"c": "d"},
        previous_response_id=None,
        background=False,
    )
    assert (parsed.max_tokens, parsed.temperature, parsed.top_p) == (10, 1.0, 0.5)
    assert parsed.parallel_tool_calls is True and parsed.stream is True


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"input": "x", "previous_response_id": "resp_1"}, "previous_response_id"),
        ({"input": "x", "conversation": "conv_1"}, "louter keeps no state"),
        ({"input": "x", "prompt": {"id": "p"}}, "prompt"),
        ({"input": "x", "background": True}, "background"),
        ({}, "input: is required"),
        ({"input": "x", "model": ""}, "model: must not be empty"),
        ({"input": "x", "model": 5}, "model: must be a string"),
        ({"input": 5}, "input: must be an array"),
        ({"input": [{"type": "item_reference", "id": "x"}]}, "item_reference"),
        ({"input": [{"type": "computer_call"}]}, "input[0].type: input item type 'computer_call'"),
        ({"input": [{"content": "x"}]}, "input[0].type"),
        ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
        ({"input": [output("nope")]}, "input[0].call_id: 'nope' matches no earlier tool call"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
            "input[0].content[0].file_id",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image"}]}]},
            "input[0].content[0].image_url",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "content part 'input_file'",
        ),
        (
            {"input": [{"role": "system", "content": [{"type": "input_image", "image_url": "u"}]}]},
            "content part 'input_image'",
        ),
        ({"input": [call("c", arguments=[1])]}, "input[0].arguments: must be an object"),
        ({"input": "x", "tool_choice": "sometimes"}, "tool_choice"),
        ({"input": "x", "tool_choice": {"type": "allowed_tools", "mode": "x"}}, "mode"),
        ({"input": "x", "reasoning": {"effort": "huge"}}, "reasoning.effort"),
        ({"input": "x", "text": {"format": {"type": "xml"}}}, "text.format.type"),
        ({"input": "x", "tools": [{"type": "function", "name": "f"}] * 2}, "duplicate tool"),
        ({"input": "x", "tools": [{"type": "namespace", "name": "n"}]}, "tools[0].tools"),
        ({"input": "x", "tools": [{"type": "custom", "name": "c", "format": 1}]}, "format"),
        ({"input": "x", "max_output_tokens": "9"}, "max_output_tokens: must be an integer"),
        ({"input": "x", "stream": 1}, "stream: must be a boolean"),
    ],
)
def test_request_errors(body: dict[str, Any], problem: str) -> None:
    assert problem in rejected({"model": "m", **body})


def test_a_non_object_body_is_rejected() -> None:
    assert "must be an object" in rejected([])  # type: ignore[arg-type]


# --------------------------------------------------------------------------- emit_request: tables


def neutral(*messages: Message, **extra: Any) -> Request:
    return Request(model="m", messages=messages, **extra)


@pytest.mark.parametrize(
    ("asked", "effort", "sent"),
    [
        (False, "none", None),  # only some models take "none": derived, not sent
        (True, "none", {"effort": "none"}),  # asked as such (an override): sent
        (False, "low", {"effort": "low"}),
    ],
)
def test_emit_request_effort_none_only_when_asked(
    asked: bool, effort: str, sent: dict[str, str] | None
) -> None:
    body = emit_request(
        neutral(
            Message("user", (Text("q"),)),
            reasoning_effort=effort,
            effort_source="operator" if asked else None,
        ),
        "b",
    )
    assert body.get("reasoning") == sent


def test_emit_request_options() -> None:
    body = emit_request(
        neutral(
            Message("user", (Text("q"),)),
            tools=(Tool("f", "d", {"type": "object"}),),
            tool_choice=ToolChoice("tool", "f"),
            parallel_tool_calls=False,
            stop=("x",),
            top_k=3,
            reasoning_budget=100,
            reasoning_effort="none",
            response_format=ResponseFormat("json_object"),
            stream=True,
        ),
        "b",
    )
    assert body == {
        "model": "b",
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "q"}]}
        ],
        "tools": [
            {
                "type": "function",
                "name": "f",
                "description": "d",
                "parameters": {"type": "object"},
                "strict": False,
            }
        ],  # fmt: skip
        "tool_choice": {"type": "function", "name": "f"},
        "parallel_tool_calls": False,
        "text": {"format": {"type": "json_object"}},
        "store": False,
        "stream": True,
    }


def test_emit_request_reasoning_and_results() -> None:
    body = emit_request(
        neutral(
            Message(
                "assistant",
                (
                    Reasoning("t", signature="s"),
                    Reasoning(redacted="e"),
                    ToolCall("c", "f"),
                    Text("after"),
                ),
            ),  # fmt: skip
            Message(
                "tool",
                (
                    ToolResult("c", "f", (Text("bad"),), is_error=True),
                    ToolResult("c", "f", ()),
                    ToolResult("c", "f", (Text("a"), Image("image/png", "AA")), is_error=True),
                ),
            ),  # fmt: skip
            response_format=ResponseFormat("json_schema"),
            reasoning_effort="low",
        ),
        "b",
    )
    assert body["input"] == [
        {"type": "reasoning", "summary": [], "encrypted_content": "e"},
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "after", "annotations": []}],
        },  # fmt: skip
        {"type": "function_call_output", "call_id": "c", "output": "Error: bad"},
        {"type": "function_call_output", "call_id": "c", "output": ""},
        {
            "type": "function_call_output",
            "call_id": "c",
            "output": [
                {"type": "input_text", "text": "Error:"},
                {"type": "input_text", "text": "a"},
                {"type": "input_image", "image_url": "data:image/png;base64,AA", "detail": "auto"},
            ],
        },  # fmt: skip
    ]
    assert body["reasoning"] == {"effort": "low"}
    assert body["include"] == ["reasoning.encrypted_content"]
    assert body["text"] == {"format": {"type": "json_object"}}


# --------------------------------------------------------------------------- parse_response


def answer(*items: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": "r", "object": "response", "status": "completed", "model": "m",
            "output": list(items), **extra}  # fmt: skip


def bad_answer(body: Any) -> str:
    with pytest.raises(ConversionError) as info:
        parse_response(body, ids)
    assert info.value.status_hint == 502
    return info.value.message


def test_parse_response_items() -> None:
    parsed = parse_response(
        answer(
            {
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": "s"}],
                "content": [{"type": "reasoning_text", "text": "c"}],
            },  # fmt: skip
            {"type": "reasoning", "summary": []},
            {
                "type": "message",
                "content": [
                    {"type": "refusal", "refusal": "no"},
                    {"type": "output_text", "text": ""},
                ],
            },
            {"type": "function_call", "name": "f", "arguments": ""},
            {
                "type": "custom_tool_call",
                "call_id": "x",
                "name": "p",
                "input": "raw",
                "namespace": "ns",
            },
            usage={"input_tokens": 3, "output_tokens": 4},
        ),
        ids,
    )
    assert parsed == Response(
        "r",
        "m",
        (
            Reasoning("s\n\nc"),
            Text("no"),
            ToolCall("call_louter_0", "f"),
            ToolCall("x", "ns__p", '{"input":"raw"}'),
        ),  # fmt: skip
        "tool_calls",
        Usage(3, 4),
    )


@pytest.mark.parametrize(
    ("extra", "finish"),
    [
        ({"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}, "length"),
        (
            {"status": "incomplete", "incomplete_details": {"reason": "content_filter"}},
            "content_filter",
        ),
        ({"status": "incomplete", "incomplete_details": {"reason": "steered"}}, "length"),
        ({"status": "incomplete", "incomplete_details": None}, "length"),
        ({"status": None}, "stop"),
    ],
)
def test_parse_response_status_table(extra: dict[str, Any], finish: str) -> None:
    assert parse_response(answer(**extra), ids).finish_reason == finish


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ([], "not a response object"),
        ({"object": "list"}, "not a response object"),
        (answer(status="failed", error={"message": "boom"}), "the response failed: boom"),
        (answer(status="in_progress"), "not finished"),
        ({"object": "response"}, "output is missing"),
        (answer({"type": "web_search_call"}), "output item type 'web_search_call'"),
        ({"object": "response", "output": ["x"]}, "output[0] is not an object"),
        (answer({"type": "message", "content": ["x"]}), "output[0].content[0] is not an object"),
        (answer({"type": "message", "content": [{"type": "audio"}]}), "content type 'audio'"),
        (answer({"type": "message", "content": [{"type": "output_text"}]}), ".text is missing"),
        (answer({"type": "function_call"}), "output[0].name is missing"),
    ],
)
def test_parse_response_errors(body: Any, problem: str) -> None:
    assert problem in bad_answer(body)


# --------------------------------------------------------------------------- emit_response


def test_emit_response_items_and_ids() -> None:
    response = Response(
        "up",
        "up-model",
        (
            Reasoning("why", signature="sig"),
            Text("a"),
            Text("b"),
            ToolCall("c1", "apply_patch", '{"input":"*** Begin"}'),
            ToolCall("c2", "multi_agent_v1__spawn_agent", '{"m":1}'),
            Reasoning(redacted="r"),
        ),  # fmt: skip
        "length",
        Usage(5, 6, reasoning_tokens=1),
    )
    body = emit_response(response, META, KINDS)
    assert [(item["type"], item["id"]) for item in body["output"]] == [
        ("reasoning", "rs_louter01_0"),
        ("message", "msg_louter01_1"),
        ("custom_tool_call", "ctc_louter01_2"),
        ("function_call", "fc_louter01_3"),
        ("reasoning", "rs_louter01_4"),
    ]
    reasoning, message, custom, function, redacted = body["output"]
    assert reasoning["encrypted_content"] == "louter-signature:sig"
    assert message["content"][0]["text"] == "ab" and message["status"] == "completed"
    assert (custom["name"], custom["input"], custom["call_id"]) == (
        "apply_patch",
        "*** Begin",
        "c1",
    )
    assert (function["name"], function["namespace"]) == ("spawn_agent", "multi_agent_v1")
    assert redacted == {
        "type": "reasoning",
        "id": "rs_louter01_4",
        "summary": [],
        "encrypted_content": "r",
    }
    assert (body["status"], body["incomplete_details"]) == (
        "incomplete",
        {"reason": "max_output_tokens"},
    )
    assert body["usage"]["output_tokens_details"] == {"reasoning_tokens": 1}
    assert (body["id"], body["model"], body["created_at"]) == (META.id, META.model, META.created)


def test_emit_response_defaults() -> None:
    body = emit_response(Response("x", "y", (ToolCall("c", "apply_patch", "{}"),), "stop"), META)
    assert body["output"][0]["type"] == "function_call"  # FUNCTIONS: every call a function
    assert body["usage"] is None and body["status"] == "completed"
    filtered = emit_response(Response("x", "y", (Text("no"),), "content_filter"), META)
    assert filtered["incomplete_details"] == {"reason": "content_filter"}
    assert filtered["output"][0]["status"] == "incomplete"  # the item the stop cut short
    assert item_id("msg", "plain-id", 2) == "msg_plain-id_2"
    assert item_id("msg", "", 0) == "msg_louter_0"


def test_emit_response_refuses_errors() -> None:
    with pytest.raises(ConversionError) as info:
        emit_response(Response("x", "y", (Text("partial"),), "error"), META)
    assert info.value.status_hint == 502


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('{"input": "raw"}', "raw"),
        ('{"patch": "only string"}', "only string"),
        ('"a JSON string"', "a JSON string"),
        ("*** Begin Patch (not JSON)", "*** Begin Patch (not JSON)"),
        ('{"a": "x", "b": "y"}', '{"a": "x", "b": "y"}'),
        ("[1]", "[1]"),
    ],
)
def test_custom_input_is_lenient(arguments: str, expected: str) -> None:
    assert custom_input(arguments) == expected


def test_tool_kinds_defaults() -> None:
    assert FUNCTIONS.wire("x") == WireTool("x")
    assert tool_kinds({"model": "m"}) == FUNCTIONS


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (404, "not_found_error"),
        (429, "rate_limit_error"),
        (418, "invalid_request_error"),
        (503, "api_error"),
    ],  # fmt: skip
)
def test_error_body(status: int, kind: str) -> None:
    assert error_body(status, "m") == {
        "error": {"message": "m", "type": kind, "param": None, "code": None}
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"error": {"message": "bad key", "type": "x"}}', "bad key"),
        (b'{"error": "plain"}', "plain"),
        (b'{"message": "top"}', "top"),
        (b'{"detail": "fastapi"}', "fastapi"),
        (b'{"other": 1}', '{"other": 1}'),
        (b"  <html>oops</html>\n", "<html>oops</html>"),
    ],
)
def test_error_message(body: bytes, message: str) -> None:
    assert error_message(body) == message


def test_error_message_is_capped() -> None:
    assert len(error_message(b"x" * 5000)) == 1000


# --------------------------------------------------------------------------- the SDK


def sdk_client(body: dict[str, Any]) -> openai.OpenAI:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json=body)

    return openai.OpenAI(
        api_key="k",
        base_url="http://louter.test/v1",
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
        max_retries=0,
    )


@pytest.mark.parametrize("name", cases("responses"))
def test_the_sdk_reads_emitted_responses(name: str) -> None:
    parsed = parse_response(fixture_body("responses", name), ids)
    client = sdk_client(emit_response(parsed, META, KINDS))
    answer = client.responses.create(model="client-model", input="hi")
    assert (answer.id, answer.model, answer.object) == (META.id, META.model, "response")
    assert answer.output_text == parsed.text()
    calls = [
        (i.call_id, i.name)
        for i in answer.output
        if i.type in ("function_call", "custom_tool_call")
    ]
    assert [c for c, _ in calls] == [c.id for c in parsed.tool_calls()]
    if parsed.usage is not None:
        assert answer.usage is not None
        assert answer.usage.input_tokens == parsed.usage.input_tokens
        assert answer.usage.total_tokens == parsed.usage.total_tokens
    reasoning = [i for i in answer.output if i.type == "reasoning"]
    assert [r.encrypted_content for r in reasoning] == [
        e.get("encrypted_content") for e in emit_response(parsed, META)["output"]
        if e["type"] == "reasoning"
    ]  # fmt: skip
