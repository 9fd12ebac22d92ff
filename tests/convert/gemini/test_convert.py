"""The Gemini dialect: golden fixtures from real captures, tables, round trips.

Fixtures live in tests/fixtures/gemini/{requests,responses,streams}/<case>.json: the wire
input (taken from ../shared/captures, trimmed, or synthetic), the expected neutral value
(dataclasses as `{"_type": ..., non-default fields}`) and the expected emitted wire.
`LOUTER_REGEN=1 pytest tests/convert/gemini` rewrites the expected parts; the git
diff is the review.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import MISSING, fields, is_dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from louter.convert import gemini
from louter.convert import model as m
from louter.convert.gemini.schema import to_json_schema
from louter.errors import ConversionError
from tests.paths import FIXTURES as FIXTURES_DIR

FIXTURES = FIXTURES_DIR / "gemini"
REGEN = os.environ.get("LOUTER_REGEN") == "1"
META = m.ResponseMeta(id="resp-louter-1", model="client-model", created=1700000000, input_tokens=11)


def ids(n: int) -> str:
    return f"call_gen_{n}"


# --------------------------------------------------------------------------- helpers

_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        m.Text, m.Image, m.ToolCall, m.ToolResult, m.Reasoning, m.Message, m.Tool,
        m.ToolChoice, m.ResponseFormat, m.Request, m.Usage, m.Response, m.MessageStart,
        m.TextDelta, m.ReasoningDelta, m.ToolCallStart, m.ToolCallDelta, m.ToolCallEnd,
        m.UsageUpdate, m.MessageStop, m.StreamError,
    )
}  # fmt: skip


def plain(value: Any) -> Any:
    """A neutral value as JSON: dataclasses become `{"_type", non-default fields}`."""
    if is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {"_type": type(value).__name__}
        for field in fields(value):
            item = getattr(value, field.name)
            if field.default is not MISSING and item == field.default:
                continue
            if field.default_factory is not MISSING and item == field.default_factory():
                continue
            out[field.name] = plain(item)
        return out
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    return value


def unplain(value: Any) -> Any:
    """The inverse of `plain` (lists held directly by a dataclass become tuples)."""
    if isinstance(value, dict) and "_type" in value:
        cls = _TYPES[value["_type"]]
        kwargs = {k: _field(v) for k, v in value.items() if k != "_type"}
        return cls(**kwargs)
    if isinstance(value, dict):
        return {key: unplain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unplain(item) for item in value]
    return value


def _field(value: Any) -> Any:
    return tuple(unplain(item) for item in value) if isinstance(value, list) else unplain(value)


def cases(kind: str, key: str | None = None) -> list[Any]:
    paths = sorted((FIXTURES / kind).glob("*.json"))
    if key is not None:
        paths = [path for path in paths if key in json.loads(path.read_text("utf-8"))]
    return [pytest.param(path, id=path.stem) for path in paths]


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return data


def golden(path: Path, key: str, actual: Any) -> None:
    """Compare `actual` with the fixture's `key`, or rewrite it under LOUTER_REGEN=1."""
    actual = orjson.loads(orjson.dumps(actual)) if not isinstance(actual, str) else actual
    data = load(path)
    if REGEN:
        data[key] = actual
        text = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
        path.write_text(text, "utf-8")
        return
    assert key in data, f"{path.name} has no {key!r}: run with LOUTER_REGEN=1"
    assert actual == data[key]


def raises(status: int, match: str, call: Callable[[], Any]) -> None:
    with pytest.raises(ConversionError, match=match) as info:
        call()
    assert info.value.status_hint == status


# --------------------------------------------------------------------------- requests


@pytest.mark.parametrize("path", cases("requests"))
def test_parse_request_golden(path: Path) -> None:
    data = load(path)
    request = gemini.parse_request(data["wire"], model=data["model"], stream=data["stream"])
    golden(path, "neutral", plain(request))
    assert unplain(plain(request)) == request


@pytest.mark.parametrize("path", cases("requests", "neutral"))
def test_emit_request_golden(path: Path) -> None:
    data = load(path)
    golden(path, "emitted", gemini.emit_request(unplain(data["neutral"]), data["model"]))


@pytest.mark.parametrize("path", cases("requests", "emitted"))
def test_emitted_request_is_a_fixed_point(path: Path) -> None:
    """What louter sends to Gemini parses back to a request that emits the same body."""
    data = load(path)
    again = gemini.parse_request(data["emitted"], model=data["model"], stream=False)
    assert gemini.emit_request(again, data["model"]) == data["emitted"]


def test_parse_request_from_captures_keeps_what_matters() -> None:
    data = load(FIXTURES / "requests" / "cli-parallel-calls.json")
    request = gemini.parse_request(data["wire"], model="gemini-3.8-flash", stream=True)
    assert request.model == "gemini-3.8-flash" and request.stream
    assert request.messages[0].role == "system"
    call_turn, result_turn = request.messages[-2:]
    calls = [p for p in call_turn.parts if isinstance(p, m.ToolCall)]
    results = [p for p in result_turn.parts if isinstance(p, m.ToolResult)]
    assert [c.id for c in calls] == [r.call_id for r in results]
    assert calls[0].signature == "c3R1Yi1zaWduYXR1cmU=" and calls[1].signature is None


def test_placeholder_signature_reads_as_none_and_is_put_back() -> None:
    data = load(FIXTURES / "requests" / "cli-no-thought-signature.json")
    request = gemini.parse_request(data["wire"], model="x", stream=True)
    call = next(p for msg in request.messages for p in msg.parts if isinstance(p, m.ToolCall))
    assert call.signature is None
    model_turn = gemini.emit_request(request, "x")["contents"][-2]
    assert model_turn["parts"][0]["thoughtSignature"] == "skip_thought_signature_validator"


def test_pairing_by_order_and_name() -> None:
    body = {
        "contents": [
            {"role": "user", "parts": [{"text": "go"}]},
            {
                "role": "model",
                "parts": [
                    {"functionCall": {"name": "a", "args": {}}},
                    {"functionCall": {"name": "b", "args": {}}},
                    {"functionCall": {"name": "a", "args": {"n": 2}}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "a", "response": {"output": "1"}}},
                    {"functionResponse": {"name": "a", "response": {"output": "2"}}},
                    {"functionResponse": {"name": "c", "response": {"output": "?"}}},
                    {"functionResponse": {"id": "zzz", "name": "b", "response": {"output": "b"}}},
                ],
            },
        ]
    }
    request = gemini.parse_request(body, model="x", stream=False)
    results = request.messages[-1].parts
    assert [(r.call_id, r.name) for r in results if isinstance(r, m.ToolResult)] == [
        ("call_1_0", "a"),
        ("call_1_2", "a"),
        ("call_2_2", "c"),  # answers nothing: a fresh id
        ("call_1_1", "b"),  # unknown id: paired by name
    ]


def test_tool_results_split_a_mixed_user_turn() -> None:
    body = {
        "contents": [
            {"role": "model", "parts": [{"functionCall": {"id": "k", "name": "f"}}]},
            {
                "parts": [
                    {"text": "before"},
                    {"functionResponse": {"id": "k", "name": "f", "response": {}}},
                    {"text": "after"},
                ]
            },
        ]
    }
    roles = [msg.role for msg in gemini.parse_request(body, model="x", stream=False).messages]
    assert roles == ["assistant", "user", "tool", "user"]


RESULT_CASES = [
    ({"output": "ok"}, (m.Text("ok"),), False, {"output": "ok"}),
    ({"result": "sunny"}, (m.Text("sunny"),), False, {"output": "sunny"}),
    ({"error": "boom"}, (m.Text("boom"),), True, {"error": "boom"}),
    ({"temp": 12, "sky": "clear"}, (m.Text('{"temp":12,"sky":"clear"}'),), False, None),
    ({"output": {"n": 1}}, (m.Text('{"output":{"n":1}}'),), False, None),
    ({}, (), False, {"output": ""}),
    ({"output": "{oops"}, (m.Text("{oops"),), False, {"output": "{oops"}),
]


@pytest.mark.parametrize(("response", "content", "is_error", "back"), RESULT_CASES)
def test_function_response_content(
    response: dict[str, Any], content: tuple[m.Text, ...], is_error: bool, back: Any
) -> None:
    body = {"contents": [{"parts": [{"functionResponse": {"name": "f", "response": response}}]}]}
    result = gemini.parse_request(body, model="x", stream=False).messages[0].parts[0]
    assert isinstance(result, m.ToolResult)
    assert (result.content, result.is_error) == (content, is_error)
    wire = gemini.emit_request(m.Request("x", (m.Message("tool", (result,)),)), "x")
    assert wire["contents"][0]["parts"][0]["functionResponse"]["response"] == (back or response)


def test_function_response_images_both_ways() -> None:
    reply = {
        "id": "c1",
        "name": "screenshot",
        "response": {"output": "see image"},
        "parts": [{"inlineData": {"mimeType": "image/png", "data": "iVBO"}}],
    }
    body = {"contents": [{"role": "user", "parts": [{"functionResponse": reply}]}]}
    request = gemini.parse_request(body, model="x", stream=False)
    result = request.messages[0].parts[0]
    assert isinstance(result, m.ToolResult)
    assert result.content == (m.Text("see image"), m.Image("image/png", data="iVBO"))
    assert gemini.emit_request(request, "x")["contents"][0]["parts"][0] == {
        "functionResponse": reply
    }


TOOL_CHOICES = [
    ({"mode": "AUTO"}, m.ToolChoice("auto"), {"mode": "AUTO"}),
    ({"mode": "VALIDATED"}, m.ToolChoice("auto"), {"mode": "AUTO"}),
    ({"mode": "any"}, m.ToolChoice("required"), {"mode": "ANY"}),
    (
        {"mode": "ANY", "allowedFunctionNames": ["a", "b"]},
        m.ToolChoice("required"),
        {"mode": "ANY"},
    ),
    (
        {"mode": "ANY", "allowed_function_names": ["a"]},
        m.ToolChoice("tool", "a"),
        {"mode": "ANY", "allowedFunctionNames": ["a"]},
    ),
    ({"mode": "NONE"}, m.ToolChoice("none"), {"mode": "NONE"}),
    ({"mode": "MODE_UNSPECIFIED"}, None, None),
    ({}, None, None),
]


@pytest.mark.parametrize(("wire", "choice", "back"), TOOL_CHOICES)
def test_tool_config(wire: dict[str, Any], choice: m.ToolChoice | None, back: Any) -> None:
    body = {"contents": [{"parts": [{"text": "x"}]}], "toolConfig": {"functionCallingConfig": wire}}
    request = gemini.parse_request(body, model="x", stream=False)
    assert request.tool_choice == choice
    emitted = gemini.emit_request(request, "x")
    assert emitted.get("toolConfig") == (None if back is None else {"functionCallingConfig": back})


THINKING = [
    ({"thinkingBudget": 8192, "includeThoughts": True}, 8192, None),
    ({"thinking_budget": 0}, 0, "none"),
    ({"thinkingBudget": -1}, None, None),
    ({"thinkingBudget": "1024"}, 1024, None),
    ({"thinkingLevel": "HIGH"}, None, "high"),
    ({"thinking_level": "minimal"}, None, "low"),
    ({"thinkingLevel": "THINKING_LEVEL_UNSPECIFIED"}, None, None),
]


@pytest.mark.parametrize(("config", "budget", "effort"), THINKING)
def test_thinking_config(config: dict[str, Any], budget: int | None, effort: str | None) -> None:
    body = {
        "contents": [{"parts": [{"text": "x"}]}],
        "generationConfig": {"thinkingConfig": config},
    }
    request = gemini.parse_request(body, model="x", stream=False)
    assert (request.reasoning_budget, request.reasoning_effort) == (budget, effort)


EMITTED_THINKING = [
    (None, None, None),
    (0, None, {"thinkingBudget": 0}),
    (None, "none", {"thinkingBudget": 0}),
    (2048, "high", {"includeThoughts": True, "thinkingBudget": 2048}),
    (None, "low", {"includeThoughts": True, "thinkingBudget": 1024}),
    (None, "medium", {"includeThoughts": True, "thinkingBudget": 8192}),
    (None, "high", {"includeThoughts": True, "thinkingBudget": 24576}),
]


@pytest.mark.parametrize(("budget", "effort", "wire"), EMITTED_THINKING)
def test_emit_thinking(budget: int | None, effort: str | None, wire: Any) -> None:
    request = m.Request("x", (), reasoning_budget=budget, reasoning_effort=effort)
    config = gemini.emit_request(request, "x").get("generationConfig", {})
    assert config.get("thinkingConfig") == wire


SCHEMAS = [
    ({"type": "OBJECT"}, {"type": "object"}),
    ({"type": ["STRING", "NULL"]}, {"type": ["string", "null"]}),
    ({"type": "TYPE_UNSPECIFIED", "description": "d"}, {"description": "d"}),
    ({"type": "STRING", "nullable": True}, {"type": ["string", "null"]}),
    ({"type": ["string"], "nullable": True}, {"type": ["string", "null"]}),
    ({"type": "null", "nullable": True}, {"type": "null"}),
    (
        {"anyOf": [{"type": "STRING"}], "nullable": True},
        {"anyOf": [{"type": "string"}, {"type": "null"}]},
    ),
    ({"nullable": True}, {}),
    ({"type": "STRING", "nullable": False}, {"type": "string"}),
    ({"any_of": [{"type": "INTEGER"}]}, {"anyOf": [{"type": "integer"}]}),
    (
        {"type": "ARRAY", "max_items": "3", "minItems": "1"},
        {"type": "array", "maxItems": 3, "minItems": 1},
    ),
    ({"type": "STRING", "format": "enum", "enum": ["a"]}, {"type": "string", "enum": ["a"]}),
    ({"type": "STRING", "format": "date-time"}, {"type": "string", "format": "date-time"}),
    ({"type": "STRING", "example": "x"}, {"type": "string", "examples": ["x"]}),
    ({"propertyOrdering": ["b", "a"], "type": "OBJECT"}, {"type": "object"}),
    (
        {"properties": {"type": {"type": "STRING"}, "nullable": "kept"}},
        {"properties": {"type": {"type": "string"}, "nullable": "kept"}},
    ),
    ({"items": [{"type": "STRING"}, True]}, {"items": [{"type": "string"}, True]}),
    (
        {"$defs": {"n": {"type": "NUMBER"}}, "additionalProperties": {"type": "BOOLEAN"}},
        {"$defs": {"n": {"type": "number"}}, "additionalProperties": {"type": "boolean"}},
    ),
    (
        {"additionalProperties": False, "$schema": "s"},
        {"additionalProperties": False, "$schema": "s"},
    ),
    (
        {"anyOf": "not-a-list", "properties": "summary"},
        {"anyOf": "not-a-list", "properties": "summary"},
    ),
    ({"type": 3}, {"type": 3}),
]


@pytest.mark.parametrize(("schema", "expected"), SCHEMAS)
def test_schema_normalisation(schema: dict[str, Any], expected: dict[str, Any]) -> None:
    assert to_json_schema(schema) == expected


def test_schema_leaves_non_objects_alone() -> None:
    assert to_json_schema("string") == "string"


BAD_REQUESTS = [
    ([], "request body: expected an object"),
    ({}, "contents: missing or empty"),
    ({"contents": {}}, "contents: expected a list"),
    ({"contents": ["x"]}, r"contents\[0\]: expected an object"),
    ({"contents": [{"role": "system", "parts": []}]}, r"contents\[0\].role: unknown role 'system'"),
    (
        {"contents": [{"parts": [{"foo": 1}]}]},
        r"contents\[0\].parts\[0\]: unknown part with keys \['foo'\]",
    ),
    ({"contents": [{"parts": [{}]}]}, r"contents\[0\].parts\[0\]: unknown part"),
    ({"contents": [{"parts": [{"text": 3}]}]}, r"contents\[0\].parts\[0\].text: expected a string"),
    ({"contents": [{"parts": "hi"}]}, r"contents\[0\].parts: expected a list, got a string"),
    (
        {"contents": [{"parts": [{"functionCall": {"name": "f"}}]}]},
        r"contents\[0\].parts\[0\]: a functionCall belongs in a model turn",
    ),
    (
        {"contents": [{"role": "model", "parts": [{"functionResponse": {"name": "f"}}]}]},
        r"contents\[0\].parts\[0\]: a functionResponse belongs in a user turn",
    ),
    (
        {"contents": [{"role": "model", "parts": [{"functionCall": {"args": {}}}]}]},
        r"contents\[0\].parts\[0\].functionCall.name: missing",
    ),
    (
        {"contents": [{"role": "model", "parts": [{"functionCall": {"name": "f", "args": [1]}}]}]},
        r"contents\[0\].parts\[0\].functionCall.args: expected an object, got a list",
    ),
    (
        {"contents": [{"parts": [{"inlineData": {"mimeType": "image/png"}}]}]},
        r"inlineData.data: missing",
    ),
    ({"contents": [{"parts": [{"fileData": {}}]}]}, r"fileData.fileUri: missing"),
    ({"contents": [{"parts": [{"functionResponse": {}}]}]}, r"functionResponse.name: missing"),
    (
        {"contents": [{"parts": [{"text": "x", "thoughtSignature": 1}]}]},
        r"thoughtSignature: expected",
    ),
    (
        {"contents": [{"parts": [{"text": "x"}]}], "systemInstruction": 3},
        "systemInstruction: expected",
    ),
    (
        {
            "contents": [{"parts": [{"text": "x"}]}],
            "systemInstruction": {"parts": [{"inlineData": {"data": "x"}}]},
        },
        r"systemInstruction.parts\[0\]: only text parts are allowed",
    ),
    (
        {"contents": [{"parts": [{"text": "x"}]}], "tools": [{"functionDeclarations": [{}]}]},
        r"tools\[0\].functionDeclarations\[0\].name: missing",
    ),
    (
        {
            "contents": [{"parts": [{"text": "x"}]}],
            "tools": [{"functionDeclarations": [{"name": "f", "parameters": []}]}],
        },
        r"functionDeclarations\[0\].parameters: expected an object",
    ),
    (
        {
            "contents": [{"parts": [{"text": "x"}]}],
            "toolConfig": {"functionCallingConfig": {"mode": "SOME"}},
        },
        "functionCallingConfig.mode: unknown mode 'SOME'",
    ),
    (
        {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"temperature": "hot"}},
        "generationConfig.temperature: expected a number, got a string",
    ),
    (
        {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"maxOutputTokens": 1.5}},
        "generationConfig.maxOutputTokens: expected an integer",
    ),
    (
        {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"temperature": True}},
        "expected a number, got a boolean",
    ),
    (
        {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"stopSequences": [1]}},
        r"generationConfig.stopSequences\[0\]: expected a string",
    ),
    (
        {
            "contents": [{"parts": [{"text": "x"}]}],
            "generationConfig": {"thinkingConfig": {"thinkingLevel": "MAX"}},
        },
        "thinkingConfig.thinkingLevel: unknown level 'MAX'",
    ),
]


@pytest.mark.parametrize(("body", "message"), BAD_REQUESTS)
def test_bad_requests_are_400_with_a_path(body: Any, message: str) -> None:
    raises(400, message, lambda: gemini.parse_request(body, model="x", stream=False))


def test_lenient_request_shapes() -> None:
    body = {
        "systemInstruction": {"role": "user", "parts": []},
        "contents": [
            {"role": "model", "parts": [{"thoughtSignature": "c2ln"}]},
            {"parts": [{"executableCode": {"language": "PYTHON", "code": "print(1)"}}]},
            {"parts": [{"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "1\n"}}]},
            {"parts": [{"text": "stop here", "videoMetadata": {}}]},
        ],
        "generationConfig": {
            "stopSequences": "END",
            "topK": 40.0,
            "responseMimeType": "text/plain",
        },
    }
    request = gemini.parse_request(body, model="x", stream=False)
    assert [msg.parts for msg in request.messages] == [
        (m.Reasoning(signature="c2ln"),),
        (m.Text("```python\nprint(1)\n```"),),
        (m.Text("1\n"),),
        (m.Text("stop here"),),
    ]
    assert (request.stop, request.top_k, request.response_format) == (("END",), 40, None)


def test_penalties_both_ways() -> None:
    """`presencePenalty` / `frequencyPenalty` (or snake_case) <-> the neutral penalties."""
    base: dict[str, Any] = {"contents": [{"parts": [{"text": "x"}]}]}
    camel = {**base, "generationConfig": {"presencePenalty": 0.5, "frequencyPenalty": -1}}
    snake = {**base, "generation_config": {"presence_penalty": 0.5, "frequency_penalty": -1}}
    for body in (camel, snake):
        request = gemini.parse_request(body, model="x", stream=False)
        assert (request.presence_penalty, request.frequency_penalty) == (0.5, -1)
    config = gemini.emit_request(request, "x")["generationConfig"]
    assert config == {"presencePenalty": 0.5, "frequencyPenalty": -1}
    plain = gemini.parse_request(base, model="x", stream=False)
    assert "generationConfig" not in gemini.emit_request(plain, "x")
    with pytest.raises(ConversionError, match="generationConfig.presencePenalty: expected a"):
        gemini.parse_request(
            {**base, "generationConfig": {"presencePenalty": "high"}}, model="x", stream=False
        )


def test_response_schema_without_mime_type_and_enum_mime() -> None:
    base = {"contents": [{"parts": [{"text": "x"}]}]}
    schema = {"type": "STRING"}
    plain_schema = gemini.parse_request(
        {**base, "generationConfig": {"_responseJsonSchema": schema}}, model="x", stream=False
    )
    assert plain_schema.response_format == m.ResponseFormat("json_schema", {"type": "string"})
    enum = gemini.parse_request(
        {**base, "generationConfig": {"responseMimeType": "text/x.enum", "responseSchema": schema}},
        model="x",
        stream=False,
    )
    assert enum.response_format is None


def test_json_object_mode_both_ways() -> None:
    request = m.Request("x", (), response_format=m.ResponseFormat("json_object"))
    body = gemini.emit_request(request, "x")
    assert body == {"contents": [], "generationConfig": {"responseMimeType": "application/json"}}
    body["contents"] = [{"parts": [{"text": "x"}]}]
    back = gemini.parse_request(body, model="x", stream=False)
    assert back.response_format == m.ResponseFormat("json_object")


def test_count_request_shapes() -> None:
    contents = [{"role": "user", "parts": [{"text": "hello"}]}]
    direct = gemini.parse_count_request({"contents": contents}, model="g")
    wrapped = gemini.parse_count_request(
        {"generateContentRequest": {"model": "models/g", "contents": contents}}, model="g"
    )
    snake = gemini.parse_count_request(
        {"generate_content_request": {"contents": contents}}, model="g"
    )
    assert direct == wrapped == snake
    assert direct.messages == (m.Message("user", (m.Text("hello"),)),)
    assert gemini.emit_count_response(42) == {"totalTokens": 42}


# --------------------------------------------------------------------------- emit_request


def _rich_request() -> m.Request:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    return m.Request(
        model="gemini-2.5-flash",
        messages=(
            m.Message("system", (m.Text("be brief"), m.Text("use tools"))),
            m.Message("user", (m.Text("weather?"), m.Image("image/jpeg", data="/9j/"))),
            m.Message(
                "assistant",
                (
                    m.Reasoning("thinking", signature="c2lnLTE="),
                    m.Text("Checking."),
                    m.ToolCall("call_1", "get_weather", '{"city":"Bern"}', signature="c2lnLTI="),
                    m.ToolCall("call_2", "get_weather", '{"city":"Oslo"}'),
                ),
            ),
            m.Message(
                "tool",
                (
                    m.ToolResult("call_1", "get_weather", (m.Text("sunny"),)),
                    m.ToolResult("call_2", "get_weather", (m.Text("offline"),), is_error=True),
                ),
            ),
            m.Message("user", (m.Image(url="https://example.com/a.png"), m.Text("and now?"))),
        ),
        tools=(m.Tool("get_weather", "Get weather", schema), m.Tool("noop")),
        tool_choice=m.ToolChoice("tool", "get_weather"),
        max_tokens=100,
        temperature=0.2,
        top_p=0.9,
        top_k=40,
        presence_penalty=0.5,
        frequency_penalty=-0.25,
        stop=("END",),
        response_format=m.ResponseFormat("json_schema", {"type": "object"}),
        reasoning_budget=512,
    )


def test_round_trip_preserves_what_gemini_expresses() -> None:
    request = _rich_request()
    assert (
        gemini.parse_request(gemini.emit_request(request, "x"), model=request.model, stream=False)
        == request
    )


def test_round_trip_lossy_fields_are_the_documented_ones() -> None:
    request = m.Request(
        "x",
        (
            m.Message("user", (m.Text("hi"),)),
            m.Message("system", (m.Text("mid-conversation"),)),
            m.Message("assistant", (m.ToolCall("c", "f"), m.Reasoning(redacted="opaque"))),
        ),
        parallel_tool_calls=False,
        include_usage=True,
        reasoning_effort="medium",
        response_format=m.ResponseFormat("text"),
    )
    back = gemini.parse_request(gemini.emit_request(request, "x"), model="x", stream=False)
    assert back.messages == (
        m.Message("user", (m.Text("hi"),)),
        m.Message("user", (m.Text("mid-conversation"),)),
        m.Message("assistant", (m.ToolCall("c", "f"),)),
    )
    assert (back.parallel_tool_calls, back.include_usage, back.response_format) == (
        None,
        False,
        None,
    )
    assert (back.reasoning_budget, back.reasoning_effort) == (8192, None)


def test_emit_request_merges_turns_gemini_pairs() -> None:
    request = m.Request(
        "x",
        (
            m.Message("system", (m.Text("s"),)),
            m.Message("user", (m.Text("a"),)),
            m.Message("user", (m.Text(""),)),
            m.Message("user", (m.Text("b"),)),
            m.Message("assistant", (m.Text("calling"),)),
            m.Message("assistant", (m.ToolCall("1", "f"), m.ToolCall("2", "g", "", "sig"))),
            m.Message("tool", (m.ToolResult("1", "f", (m.Text("x"),)),)),
            m.Message("tool", (m.ToolResult("2", "g", (m.Text('{"v": [1]}'),)),)),
            m.Message("system", (m.Text("later"),)),
        ),
    )
    body = gemini.emit_request(request, "x")
    assert body["systemInstruction"] == {"parts": [{"text": "s"}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "a"}]},
        {"role": "user", "parts": [{"text": "b"}]},
        {
            "role": "model",
            "parts": [
                {"text": "calling"},
                {"functionCall": {"id": "1", "name": "f", "args": {}}},
                {"functionCall": {"id": "2", "name": "g", "args": {}}, "thoughtSignature": "sig"},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"id": "1", "name": "f", "response": {"output": "x"}}},
                {"functionResponse": {"id": "2", "name": "g", "response": {"v": [1]}}},
            ],
        },
        {"role": "user", "parts": [{"text": "later"}]},
    ]
    assert gemini.emit_request(request, "x") == body  # emitting does not mutate anything


def test_emit_request_parts_gemini_cannot_take() -> None:
    message = m.Message(
        "user",
        (
            m.Image(url="data:image/gif;base64,R0lG"),
            m.Reasoning(""),
            m.Reasoning(redacted="opaque"),
            m.Text("", signature="c2ln"),
        ),
    )
    body = gemini.emit_request(m.Request("x", (message, m.Message("assistant", ()))), "x")
    assert body["contents"] == [
        {
            "role": "user",
            "parts": [
                {"inlineData": {"mimeType": "image/gif", "data": "R0lG"}},
                {"text": "", "thoughtSignature": "c2ln"},
            ],
        }
    ]


def test_emit_request_rejects_bad_history_arguments() -> None:
    bad = m.Request("x", (m.Message("assistant", (m.ToolCall("1", "f", "{not json"),)),))
    message = "assistant message: tool call 'f' has arguments that are not valid JSON"
    raises(400, message, lambda: gemini.emit_request(bad, "x"))
    developer = m.Request("x", (m.Message("developer", ()),))
    raises(400, "unknown message role 'developer'", lambda: gemini.emit_request(developer, "x"))
    choice = m.Request("x", (), tool_choice=m.ToolChoice("any"))
    raises(400, "unknown tool_choice mode 'any'", lambda: gemini.emit_request(choice, "x"))


# --------------------------------------------------------------------------- responses


@pytest.mark.parametrize("path", cases("responses"))
def test_parse_response_golden(path: Path) -> None:
    response = gemini.parse_response(load(path)["wire"], ids)
    golden(path, "neutral", plain(response))
    assert unplain(plain(response)) == response


@pytest.mark.parametrize("path", cases("responses", "neutral"))
def test_emit_response_golden(path: Path) -> None:
    data = load(path)
    golden(path, "emitted", gemini.emit_response(unplain(data["neutral"]), META))


@pytest.mark.parametrize("path", cases("responses", "emitted"))
def test_response_round_trip(path: Path) -> None:
    data = load(path)
    original: m.Response = unplain(data["neutral"])
    back = gemini.parse_response(data["emitted"], ids)
    assert (back.id, back.model) == (META.id, META.model)
    assert [p for p in back.parts if p != m.Text("")] == list(original.parts)
    assert back.finish_reason == original.finish_reason
    assert back.usage == (original.usage or m.Usage(META.input_tokens))


FINISH = [
    ("STOP", False, "stop"),
    ("STOP", True, "tool_calls"),
    ("MAX_TOKENS", False, "length"),
    ("MAX_TOKENS", True, "length"),
    *[(r, False, "content_filter") for r in ("SAFETY", "RECITATION", "BLOCKLIST")],
    *[(r, False, "content_filter") for r in ("PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY")],
    ("MALFORMED_FUNCTION_CALL", False, "error"),
    ("OTHER", True, "error"),
    ("LANGUAGE", False, "error"),
    ("FINISH_REASON_UNSPECIFIED", False, "error"),
    ("SOMETHING_NEW", False, "error"),
    (None, False, "stop"),
    (None, True, "tool_calls"),
]


@pytest.mark.parametrize(("wire", "calls", "reason"), FINISH)
def test_finish_reasons_in(wire: str | None, calls: bool, reason: str) -> None:
    parts: list[dict[str, Any]] = [{"text": "t"}]
    if calls:
        parts.append({"functionCall": {"name": "f", "args": {}}})
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}}
    if wire is not None:
        candidate["finishReason"] = wire
    response = gemini.parse_response({"candidates": [candidate]}, ids)
    assert response.finish_reason == reason
    assert [c.id for c in response.tool_calls()] == (["call_gen_0"] if calls else [])


@pytest.mark.parametrize(
    ("reason", "wire"),
    [("stop", "STOP"), ("tool_calls", "STOP"), ("length", "MAX_TOKENS"),
     ("content_filter", "SAFETY"), ("error", "OTHER"), ("weird", "OTHER")],
)  # fmt: skip
def test_finish_reasons_out(reason: str, wire: str) -> None:
    body = gemini.emit_response(m.Response("i", "m", (), reason), META)
    assert body["candidates"][0]["finishReason"] == wire
    assert body["candidates"][0]["content"]["parts"] == [{"text": ""}]


def test_usage_both_ways() -> None:
    wire = {
        "promptTokenCount": 100,
        "candidatesTokenCount": 20,
        "thoughtsTokenCount": 30,
        "cachedContentTokenCount": 64,
        "toolUsePromptTokenCount": 5,
        "totalTokenCount": 155,
    }
    body = {"candidates": [{"content": {"parts": [{"text": "x"}]}}], "usageMetadata": wire}
    usage = gemini.parse_response(body, ids).usage
    assert usage == m.Usage(105, 50, reasoning_tokens=30, cached_tokens=64)
    out = gemini.emit_response(m.Response("i", "m", (), usage=usage), META)["usageMetadata"]
    assert out == {
        "promptTokenCount": 105,
        "candidatesTokenCount": 20,
        "thoughtsTokenCount": 30,
        "cachedContentTokenCount": 64,
        "totalTokenCount": 155,
    }


BAD_RESPONSES = [
    ([], "upstream answer: expected an object"),
    ({}, "candidates: missing, and no promptFeedback.blockReason"),
    ({"candidates": []}, "candidates: missing"),
    ({"error": {"code": 500, "message": "boom"}}, "upstream error: boom"),
    ({"candidates": [3]}, r"candidates\[0\]: expected an object"),
    (
        {"candidates": [{"content": {"parts": [{"x": 1}]}}]},
        r"candidates\[0\].content.parts\[0\]: unknown",
    ),
    (
        {"candidates": [{"content": {"parts": [{"functionResponse": {"name": "f"}}]}}]},
        "a functionResponse in a model answer",
    ),
    (
        {"candidates": [{"content": {"parts": []}}], "usageMetadata": {"promptTokenCount": "x"}},
        "expected an integer",
    ),
    ({"candidates": [{"finishReason": 1}]}, r"candidates\[0\].finishReason: expected a string"),
]


@pytest.mark.parametrize(("body", "message"), BAD_RESPONSES)
def test_bad_responses_are_502(body: Any, message: str) -> None:
    raises(502, message, lambda: gemini.parse_response(body, ids))


def test_emit_response_rejects_what_an_answer_cannot_hold() -> None:
    result = m.Response("i", "m", (m.ToolResult("c", "f"),))
    raises(502, "cannot hold a tool result", lambda: gemini.emit_response(result, META))
    bad_call = m.Response("i", "m", (m.ToolCall("c", "f", "[1]"),), "tool_calls")
    raises(502, "not a JSON object", lambda: gemini.emit_response(bad_call, META))


# --------------------------------------------------------------------------- errors, models


@pytest.mark.parametrize(
    ("status", "name"),
    [(400, "INVALID_ARGUMENT"), (401, "UNAUTHENTICATED"), (403, "PERMISSION_DENIED"),
     (404, "NOT_FOUND"), (429, "RESOURCE_EXHAUSTED"), (500, "INTERNAL"), (502, "UNAVAILABLE"),
     (503, "UNAVAILABLE"), (504, "DEADLINE_EXCEEDED"), (418, "INVALID_ARGUMENT"),
     (599, "INTERNAL"), (302, "UNKNOWN")],
)  # fmt: skip
def test_error_body(status: int, name: str) -> None:
    assert gemini.error_body(status, "msg") == {
        "error": {"code": status, "message": "msg", "status": name}
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"error":{"code":400,"message":"stub injected 400","status":"INVALID_ARGUMENT"}}',
         "stub injected 400"),
        (b'[{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED"}}]', "quota"),
        (b'{"error":"plain"}', "plain"),
        (b'{"message":"top level"}', "top level"),
        (b'{"error":{"code":500}}', '{"error":{"code":500}}'),
        (b"  <html>not json</html>\n", "<html>not json</html>"),
        (b"\xff\xfe bad", "\ufffd\ufffd bad"),
        (b"", ""),
        (b"x" * 600, "x" * 500 + "..."),
    ],
)  # fmt: skip
def test_error_message(body: bytes, message: str) -> None:
    assert gemini.error_message(body) == message


def test_models() -> None:
    entry = gemini.model_entry("gemini-2.5-flash")
    assert entry["name"] == "models/gemini-2.5-flash"
    assert entry["displayName"] == "gemini-2.5-flash"
    assert "streamGenerateContent" in entry["supportedGenerationMethods"]
    assert entry["inputTokenLimit"] > 0 and entry["outputTokenLimit"] > 0
    assert gemini.model_entry("models/gpt-oss:20b")["name"] == "models/gpt-oss:20b"
    listing = gemini.model_list(["a", "b"])
    assert [model["name"] for model in listing["models"]] == ["models/a", "models/b"]


def test_public_surface() -> None:
    for name in gemini.__all__:
        if name != "DIALECT":  # an instance of the shared record
            assert getattr(gemini, name).__module__.startswith("louter.convert.gemini")
    assert gemini.DIALECT.name == "gemini"
