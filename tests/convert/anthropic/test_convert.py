"""Anthropic Messages requests and responses: golden fixtures built from real captures
(tests/fixtures/anthropic/README.md), then edge-case tables.

`LOUTER_REGEN=1 pytest tests/convert/anthropic/test_convert.py` rewrites the expected files.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest

from louter.convert.anthropic.request import emit_request, parse_request
from louter.convert.anthropic.response import (
    emit_count_response,
    emit_response,
    model_list,
    parse_response,
)
from louter.convert.anthropic.wire import error_body, error_message
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
from louter.errors import ConversionError
from tests.paths import FIXTURES as FIXTURES_DIR

FIXTURES = FIXTURES_DIR / "anthropic"
REGEN = os.environ.get("LOUTER_REGEN") == "1"
META = ResponseMeta(id="msg_louter_0001", model="client-model", created=0, input_tokens=42)


def ids(n: int) -> str:
    return f"toolu_louter_{n}"


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


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def cases(kind: str) -> list[str]:
    paths = (FIXTURES / kind).glob("*.json")
    return sorted(p.stem for p in paths if not p.stem.endswith(".expected"))


def fixture_body(kind: str, name: str) -> dict[str, Any]:
    body: dict[str, Any] = load(FIXTURES / kind / f"{name}.json")["body"]
    return body


def rejected(body: dict[str, Any]) -> str:
    with pytest.raises(ConversionError) as info:
        parse_request(body)
    assert info.value.status_hint == 400
    return info.value.message


def request(*messages: dict[str, Any], **extra: Any) -> Request:
    return parse_request({"model": "m", "max_tokens": 64, "messages": list(messages), **extra})


def user(*content: Any) -> dict[str, Any]:
    """A user message: one string stays a string, anything else is a block list."""
    if len(content) == 1 and isinstance(content[0], str):
        return {"role": "user", "content": content[0]}
    return {"role": "user", "content": list(content)}


def assistant(*content: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": list(content)}


def text(value: str, **extra: Any) -> dict[str, Any]:
    return {"type": "text", "text": value, **extra}


def tool_use(call_id: str, name: str, **arguments: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": name, "input": arguments}


def tool_result(call_id: str, content: Any = "ok", **extra: Any) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": call_id, "content": content, **extra}


# --------------------------------------------------------------------------- golden: requests


@pytest.mark.parametrize("name", cases("requests"))
def test_request_golden(name: str) -> None:
    parsed = parse_request(fixture_body("requests", name))
    expected = {"neutral": to_json(parsed), "emitted": emit_request(parsed, "backend-model")}
    golden(FIXTURES / "requests" / f"{name}.expected.json", expected)


def test_claude_code_request_shape() -> None:
    parsed = parse_request(fixture_body("requests", "cc-basic"))
    assert [m.role for m in parsed.messages] == ["system", "user", "system"]
    system = parsed.messages[0]
    assert len(system.parts) == 3  # one Text per system block, billing header first
    assert system.parts[0] == Text(
        "x-anthropic-billing-header: cc_version=2.1.330.440; cc_entrypoint=sdk-cli;"
    )
    assert parsed.messages[2].text().startswith("# Environment")  # mid-conversation, in place
    assert [t.name for t in parsed.tools][-2:] == ["DeferredToolPlaceholder", "Write"]
    assert parsed.tools[0].parameters["additionalProperties"] is False
    assert (parsed.reasoning_budget, parsed.reasoning_effort) == (None, "medium")
    assert (parsed.max_tokens, parsed.stream) == (128000, True)


def test_claude_code_system_messages_all_go_to_system() -> None:
    emitted = emit_request(parse_request(fixture_body("requests", "cc-basic")), "b")
    assert [block["type"] for block in emitted["system"]] == ["text"] * 4
    assert emitted["system"][3]["text"].startswith("# Environment")
    assert [m["role"] for m in emitted["messages"]] == ["user"]
    # adaptive thinking has no budget; output_config.effort "medium" goes through EFFORT_BUDGETS
    assert emitted["thinking"] == {"type": "enabled", "budget_tokens": 2048}


def test_claude_code_parallel_results_matched_by_id() -> None:
    parsed = parse_request(fixture_body("requests", "cc-bash-parallel"))
    results = parsed.messages[-1]
    assert results.role == "tool"
    assert [(r.call_id, r.name) for r in results.parts if isinstance(r, ToolResult)] == [
        ("toolu_stub2_1", "Bash"),  # the order the client sent, not the calls' order
        ("toolu_stub2_0", "Bash"),
    ]


def test_claude_code_empty_system_message_is_left_out() -> None:
    parsed = parse_request(fixture_body("requests", "cc-bare"))
    assert [m.role for m in parsed.messages] == ["system", "user"]


def test_claude_code_feature_degradation_retries_parse_alike() -> None:
    """Claude Code's retries after a 400 (captures/claude-code/http400-feature-degradation
    .json) send `thinking` with and without `display`: both parse to the same settings."""
    body = fixture_body("requests", "cc-basic")
    for thinking in ({"type": "adaptive", "display": "omitted"}, {"type": "adaptive"}):
        parsed = parse_request({**body, "thinking": thinking})
        assert (parsed.reasoning_budget, parsed.reasoning_effort) == (None, "medium")


def test_sdk_count_tokens_body_has_no_max_tokens() -> None:
    parsed = parse_request(fixture_body("requests", "sdk-count-tokens"))
    assert parsed.max_tokens is None
    assert emit_request(parsed, "b")["max_tokens"] == 4096


@pytest.mark.parametrize("name", [n for n in cases("requests") if n.startswith("sdk-")])
def test_request_round_trip(name: str) -> None:
    """parse(emit(parse(x))) == parse(x), except the model name."""
    parsed = parse_request(fixture_body("requests", name))
    again = parse_request(emit_request(parsed, parsed.model))
    expected = dataclasses.replace(parsed, max_tokens=parsed.max_tokens or 4096)
    if name == "sdk-tools-thinking":  # budget 1024 >= max_tokens 1000: the API would reject
        assert (parsed.reasoning_budget, parsed.max_tokens) == (1024, 1000)
        expected = dataclasses.replace(expected, reasoning_budget=None)
    assert again == expected


# --------------------------------------------------------------------------- parse: tables


def test_system_forms() -> None:
    assert request(user("hi"), system="be brief").messages[0] == Message(
        "system", (Text("be brief"),)
    )
    blocks = [text("a", cache_control={"type": "ephemeral"}), text("b")]
    assert request(user("hi"), system=blocks).messages[0].parts == (Text("a"), Text("b"))
    assert request(user("hi"), system="").messages[0].role == "user"
    assert request(user("hi"), system=[]).messages[0].role == "user"
    message = rejected({"model": "m", "messages": [], "system": [{"type": "image"}]})
    assert message == "system[0]: block type 'image' cannot be converted in a system"


def test_mid_conversation_system_message_stays_in_place() -> None:
    parsed = request(
        {"role": "user", "content": "one"},
        {"role": "system", "content": "reminder"},
        {"role": "system", "content": [text("blocks", cache_control={"type": "ephemeral"})]},
        {"role": "user", "content": "two"},
    )
    assert [m.role for m in parsed.messages] == ["user", "system", "system", "user"]
    assert parsed.messages[2].parts == (Text("blocks"),)


BASE64 = {"type": "base64", "media_type": "image/jpeg", "data": "AAAA"}


@pytest.mark.parametrize(
    ("source", "image"),
    [
        (BASE64, Image("image/jpeg", "AAAA")),
        ({"type": "url", "url": "https://x/y.png"}, Image(url="https://x/y.png")),
        ({"type": "url", "url": "data:image/gif;base64,R0lG"}, Image("image/gif", "R0lG")),
    ],
)
def test_images(source: dict[str, Any], image: Image) -> None:
    parsed = request(user({"type": "image", "source": source}, text("what?")))
    assert parsed.messages[0].parts == (image, Text("what?"))


def test_image_file_source_is_rejected() -> None:
    block = {"type": "image", "source": {"type": "file", "file_id": "f1"}}
    assert rejected({"model": "m", "messages": [user(text("x"), block)]}) == (
        "messages[0].content[1].source.type: image source 'file' cannot be converted"
    )


def test_tool_use_becomes_tool_call() -> None:
    parsed = request(user("go"), assistant(text("sure"), tool_use("t1", "Read", path="/a")))
    assert parsed.messages[1] == Message(
        "assistant", (Text("sure"), ToolCall("t1", "Read", '{"path":"/a"}'))
    )


def test_tool_results_are_matched_by_id_never_by_position() -> None:
    parsed = request(
        user("go"),
        assistant(tool_use("t_a", "alpha"), tool_use("t_b", "beta")),
        user(tool_result("t_b", "B"), tool_result("t_a", "A")),
    )
    assert parsed.messages[2].parts == (
        ToolResult("t_b", "beta", (Text("B"),)),
        ToolResult("t_a", "alpha", (Text("A"),)),
    )


def test_tool_result_forms() -> None:
    image = {"type": "image", "source": BASE64}
    parsed = request(
        user("go"),
        assistant(tool_use("t1", "f"), tool_use("t2", "f"), tool_use("t3", "f")),
        user(
            tool_result("t1", [text("a"), image, text("b")], is_error=True),
            {"type": "tool_result", "tool_use_id": "t2"},
            tool_result("t3", [{"type": "tool_reference", "tool_name": "WebFetch"}]),
        ),
    )
    assert parsed.messages[2].parts == (
        ToolResult("t1", "f", (Text("a"), Image("image/jpeg", "AAAA"), Text("b")), True),
        ToolResult("t2", "f", ()),
        ToolResult("t3", "f", (Text("WebFetch"),)),
    )


def test_tool_result_mixed_with_text_splits_tool_message_first() -> None:
    parsed = request(
        user("go"),
        assistant(tool_use("t1", "f")),
        user(text("before"), tool_result("t1"), text("after")),
    )
    assert [(m.role, m.parts) for m in parsed.messages[2:]] == [
        ("tool", (ToolResult("t1", "f", (Text("ok"),)),)),
        ("user", (Text("before"), Text("after"))),
    ]


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        (
            [user(tool_result("nope"))],
            "messages[0].content[0].tool_use_id: 'nope' matches no earlier tool_use block",
        ),
        (
            [user("go"), assistant(tool_use("t1", "f")), user(text("x"), tool_result("t2"))],
            "messages[2].content[1].tool_use_id: 't2' matches no earlier tool_use block",
        ),
        (
            [user(tool_use("t1", "f"))],
            "messages[0].content[0]: block type 'tool_use' cannot be converted in a user message",
        ),
        (
            [assistant(tool_result("t1"))],
            "messages[0].content[0]: block type 'tool_result' "
            "cannot be converted in a assistant message",
        ),
        (
            [{"role": "bot", "content": "x"}],
            "messages[0].role: must be user, assistant or system, not 'bot'",
        ),
        ([{"role": "user"}], "messages[0].content: must be an array"),
        ([user(text("x"), 3)], "messages[0].content[1]: must be an object"),
        (
            [user({"text": "x"})],
            "messages[0].content[0]: block type None cannot be converted in a user message",
        ),
        (
            [user({"type": {"x": 1}})],
            "messages[0].content[0]: block type {'x': 1} cannot be converted in a user message",
        ),
        (
            [user(text("a"), {"type": "text", "text": 5})],
            "messages[0].content[1].text: must be a string",
        ),
        (
            [assistant({"type": "tool_use", "id": "t", "name": "f", "input": [1]})],
            "messages[0].content[0].input: must be an object",
        ),
        (
            [assistant({"type": "server_tool_use", "id": "s", "name": "web_search"})],
            "messages[0].content[0]: block type 'server_tool_use' cannot be converted in a "
            "assistant message",
        ),
        (
            [user({"type": "web_search_tool_result", "tool_use_id": "s", "content": []})],
            "messages[0].content[0]: block type 'web_search_tool_result' cannot be converted in "
            "a user message",
        ),
        (
            [
                user("go"),
                assistant(tool_use("t1", "f")),
                user(tool_result("t1", [tool_use("x", "y")])),
            ],
            "messages[2].content[0].content[0]: block type 'tool_use' cannot be converted in a "
            "tool result",
        ),
        (
            [user("go"), assistant(tool_use("t1", "f")), user(tool_result("t1", is_error="yes"))],
            "messages[2].content[0].is_error: must be a boolean",
        ),
    ],
)
def test_bad_messages_name_the_place(messages: list[Any], expected: str) -> None:
    assert rejected({"model": "m", "messages": messages}) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ([], "request body: must be an object"),
        ({"messages": []}, "model: must be a string"),
        ({"model": "m"}, "messages: must be an array"),
        ({"model": "m", "messages": [], "max_tokens": "9"}, "max_tokens: must be an integer"),
        ({"model": "m", "messages": [], "max_tokens": True}, "max_tokens: must be an integer"),
        ({"model": "m", "messages": [], "temperature": "hot"}, "temperature: must be a number"),
        ({"model": "m", "messages": [], "top_k": 1.5}, "top_k: must be an integer"),
        ({"model": "m", "messages": [], "stream": "yes"}, "stream: must be a boolean"),
        ({"model": "m", "messages": [], "stop_sequences": "x"}, "stop_sequences: must be an array"),
        (
            {"model": "m", "messages": [], "stop_sequences": ["a", 1]},
            "stop_sequences[1]: must be a string",
        ),
        ({"model": "m", "messages": [], "tools": {}}, "tools: must be an array"),
        (
            {"model": "m", "messages": [], "tools": [{"name": "f"}]},
            "tools[0].input_schema: must be an object",
        ),
        (
            {"model": "m", "messages": [], "tools": [{"input_schema": {}}]},
            "tools[0].name: must be a string",
        ),
        (
            {"model": "m", "messages": [], "tool_choice": {"type": "some"}},
            "tool_choice.type: must be one of auto, any, tool, none",
        ),
        (
            {"model": "m", "messages": [], "tool_choice": {"type": "tool"}},
            "tool_choice.name: must be a string",
        ),
        (
            {"model": "m", "messages": [], "thinking": {"type": "on"}},
            "thinking.type: must be enabled, disabled or adaptive",
        ),
        (
            {"model": "m", "messages": [], "thinking": {"type": "enabled"}},
            "thinking.budget_tokens: is required when thinking is enabled",
        ),
        (
            {"model": "m", "messages": [], "output_config": {"effort": "huge"}},
            "output_config.effort: must be one of low, medium, high, xhigh, max",
        ),
        (
            {"model": "m", "messages": [], "output_config": {"format": {"type": "xml"}}},
            "output_config.format.type: must be json_schema",
        ),
        (
            {"model": "m", "messages": [], "output_format": {"type": "json_schema"}},
            "output_format.schema: must be an object",
        ),
    ],
)
def test_bad_options_name_the_field(body: Any, expected: str) -> None:
    assert rejected(body) == expected


def test_sampling_options() -> None:
    parsed = request(
        user("x"), stop_sequences=["END", "\n\n"], temperature=1, top_p=0.9, top_k=40, stream=True
    )
    assert parsed.stop == ("END", "\n\n")
    assert (parsed.temperature, parsed.top_p, parsed.top_k) == (1.0, 0.9, 40)
    assert isinstance(parsed.temperature, float) and parsed.stream


@pytest.mark.parametrize(
    ("choice", "expected", "parallel"),
    [
        ({"type": "auto"}, ToolChoice("auto"), None),
        ({"type": "auto", "disable_parallel_tool_use": False}, ToolChoice("auto"), None),
        ({"type": "any", "disable_parallel_tool_use": True}, ToolChoice("required"), False),
        ({"type": "tool", "name": "f"}, ToolChoice("tool", "f"), None),
        (
            {"type": "tool", "name": "f", "disable_parallel_tool_use": True},
            ToolChoice("tool", "f"),
            False,
        ),
        ({"type": "none"}, ToolChoice("none"), None),
    ],
)
def test_tool_choice(choice: dict[str, Any], expected: ToolChoice, parallel: bool | None) -> None:
    parsed = request(user("x"), tool_choice=choice)
    assert (parsed.tool_choice, parsed.parallel_tool_calls) == (expected, parallel)


def test_tools_custom_kept_server_tools_dropped() -> None:
    schema = {"type": "object", "properties": {"q": {"type": "string"}}}
    parsed = request(
        user("x"),
        tools=[
            {"name": "search", "description": "Search", "input_schema": schema},
            {
                "name": "later",
                "input_schema": schema,
                "defer_loading": True,
                "cache_control": {"type": "ephemeral"},
            },
            {"type": "custom", "name": "c", "input_schema": schema},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
            {"type": "bash_20250124", "name": "bash"},
            {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
        ],
    )
    assert parsed.tools == (
        Tool("search", "Search", schema),
        Tool("later", "", schema),
        Tool("c", "", schema),
    )


@pytest.mark.parametrize(
    ("extra", "budget", "effort"),
    [
        ({"thinking": {"type": "enabled", "budget_tokens": 2048}}, 2048, None),
        ({"thinking": {"type": "disabled"}}, 0, "none"),
        ({"thinking": {"type": "adaptive", "display": "omitted"}}, None, None),
        ({"thinking": {"type": "adaptive"}, "output_config": {"effort": "low"}}, None, "low"),
        ({"output_config": {"effort": "xhigh"}}, None, "high"),
        ({"output_config": {"effort": "max"}}, None, "high"),
        (
            {
                "thinking": {"type": "enabled", "budget_tokens": 1024},
                "output_config": {"effort": "medium"},
            },
            1024,
            "medium",
        ),
    ],
)
def test_thinking_and_effort(extra: dict[str, Any], budget: int | None, effort: str | None) -> None:
    parsed = request(user("x"), **extra)
    assert (parsed.reasoning_budget, parsed.reasoning_effort) == (budget, effort)


def test_thinking_blocks() -> None:
    parsed = request(
        user("x"),
        assistant(
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "thinking", "thinking": "unsigned", "signature": ""},
            {"type": "redacted_thinking", "data": "opaque"},
            text("answer"),
        ),
    )
    assert parsed.messages[1].parts == (
        Reasoning("hmm", "sig"),
        Reasoning("unsigned"),
        Reasoning(redacted="opaque"),
        Text("answer"),
    )


def test_structured_output_format() -> None:
    schema = {"type": "object", "properties": {}, "additionalProperties": False}
    fmt = {"type": "json_schema", "schema": schema}
    expected = ResponseFormat("json_schema", schema)
    assert request(user("x"), output_config={"format": fmt}).response_format == expected
    assert request(user("x"), output_format=fmt).response_format == expected


def test_ignored_fields_change_nothing() -> None:
    plain = request(user(text("hi")), assistant(text("yo")), user(text("again")))
    noisy = request(
        user(text("hi", cache_control={"type": "ephemeral"})),
        {"role": "assistant", "content": [text("yo", citations=None)], "output_config": {}},
        user(text("again", cache_control={"type": "ephemeral", "ttl": "1h"})),
        metadata={"user_id": '{"device_id":"x"}'},
        context_management={"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        service_tier="auto",
        container="c1",
        mcp_servers=[{"type": "url", "url": "https://mcp", "name": "m"}],
        cache_control={"type": "ephemeral"},
        output_config={"display": "x"},
    )
    assert noisy == plain


def test_documents_and_search_results() -> None:
    parsed = request(
        user(
            {
                "type": "document",
                "source": {"type": "text", "media_type": "text/plain", "data": "body"},
                "title": "Doc",
            },
            {
                "type": "document",
                "source": {"type": "text", "media_type": "text/plain", "data": "plain"},
            },
            {
                "type": "document",
                "source": {"type": "content", "content": [text("c1")]},
                "title": "T",
            },
            {
                "type": "search_result",
                "source": "https://s",
                "title": "S",
                "content": [text("r1"), text("r2")],
                "citations": {"enabled": True},
            },
        )
    )
    assert parsed.messages[0].parts == (
        Text("Doc\n\nbody"),
        Text("plain"),
        Text("T"),
        Text("c1"),
        Text("S\n\nhttps://s\n\nr1\nr2"),
    )


def test_pdf_document_is_rejected_naming_the_source() -> None:
    pdf = {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"},
    }
    assert rejected({"model": "m", "messages": [user(pdf)]}) == (
        "messages[0].content[0].source.type: document source 'base64' cannot be converted"
    )


# --------------------------------------------------------------------------- emit_request


def neutral(*messages: Message, **fields: Any) -> Request:
    return Request(model="client", messages=messages, **fields)


def emitted(*messages: Message, **fields: Any) -> dict[str, Any]:
    return emit_request(neutral(*messages, **fields), "backend")


def test_emit_minimal() -> None:
    assert emitted(Message("user", (Text("hi"),))) == {
        "model": "backend",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    }
    assert emitted(Message("user", (Text("hi"),)), max_tokens=7)["max_tokens"] == 7


def test_emit_system_single_string_or_blocks() -> None:
    one = emitted(Message("system", (Text("rules"),)), Message("user", (Text("hi"),)))
    assert one["system"] == "rules"
    many = emitted(
        Message("system", (Text("a"), Text(""))),
        Message("user", (Text("hi"),)),
        Message("system", (Text("later"),)),
        Message("user", (Text("again"),)),
    )
    assert many["system"] == [{"type": "text", "text": "a"}, {"type": "text", "text": "later"}]
    assert many["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": "again"}],
        },
    ]


def test_emit_tool_turn() -> None:
    body = emitted(
        Message("user", (Text("go"),)),
        Message("assistant", (Text(""), ToolCall("c1", "f", '{"a": 1}'), ToolCall("c2", "g"))),
        Message("tool", (ToolResult("c2", "g", (Text("two"), Text("lines")), is_error=True),)),
        Message("tool", (ToolResult("c1", "f", (Text("x"), Image("image/png", "AA"))),)),
        Message("user", (Text("and?"),)),
    )
    assert body["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "c1", "name": "f", "input": {"a": 1}},
                {"type": "tool_use", "id": "c2", "name": "g", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "c2",
                    "content": "two\nlines",
                    "is_error": True,
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "c1",
                    "content": [
                        {"type": "text", "text": "x"},
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": "AA"},
                        },
                    ],
                },
                {"type": "text", "text": "and?"},
            ],
        },
    ]


def test_emit_puts_tool_results_first_when_merging() -> None:
    body = emitted(
        Message("assistant", (ToolCall("c1", "f"),)),
        Message("user", (Text("note"),)),
        Message("tool", (ToolResult("c1", "f", ()),)),
    )
    assert body["messages"][1]["content"] == [
        {"type": "tool_result", "tool_use_id": "c1"},
        {"type": "text", "text": "note"},
    ]


def test_emit_drops_empty_text_and_empty_messages() -> None:
    body = emitted(
        Message("user", (Text("a"),)),
        Message("assistant", (Text(""),)),
        Message("user", (Text("b"),)),
    )
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    ]


def test_emit_images() -> None:
    body = emitted(Message("user", (Image("image/webp", "QQ"), Image(url="https://i/x.png"))))
    assert body["messages"][0]["content"] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/webp", "data": "QQ"}},
        {"type": "image", "source": {"type": "url", "url": "https://i/x.png"}},
    ]


def test_emit_reasoning_only_when_signed() -> None:
    body = emitted(
        Message("user", (Text("q"),)),
        Message(
            "assistant",
            (
                Reasoning("signed", "sig"),
                Reasoning("unsigned"),
                Reasoning(redacted="r"),
                Text("a"),
            ),
        ),
    )
    assert body["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "signed", "signature": "sig"},
        {"type": "redacted_thinking", "data": "r"},
        {"type": "text", "text": "a"},
    ]


def test_emit_bad_tool_arguments_are_the_clients_fault() -> None:
    with pytest.raises(ConversionError) as info:
        emitted(Message("assistant", (ToolCall("c", "f", "{not json"),)))
    assert info.value.status_hint == 400


def test_emit_unknown_role_is_rejected() -> None:
    with pytest.raises(ConversionError, match=r"messages\[0\].role: 'developer'"):
        emitted(Message("developer", (Text("x"),)))


def test_emit_tools() -> None:
    schema = {"type": "object", "properties": {"q": {"type": "string"}}}
    body = emitted(
        Message("user", (Text("x"),)),
        tools=(Tool("f", "does f", schema), Tool("g"), Tool("h", "", {"properties": {}})),
    )
    assert body["tools"] == [
        {"name": "f", "description": "does f", "input_schema": schema},
        {"name": "g", "input_schema": {"type": "object", "properties": {}}},
        {"name": "h", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert "tool_choice" not in body


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        (None, None, None),
        (None, True, None),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        (ToolChoice("auto"), None, {"type": "auto"}),
        (ToolChoice("required"), False, {"type": "any", "disable_parallel_tool_use": True}),
        (ToolChoice("tool", "f"), None, {"type": "tool", "name": "f"}),
        (ToolChoice("none"), False, {"type": "none"}),
    ],
)
def test_emit_tool_choice(
    choice: ToolChoice | None, parallel: bool | None, expected: dict[str, Any] | None
) -> None:
    body = emitted(
        Message("user", (Text("x"),)),
        tools=(Tool("f"),),
        tool_choice=choice,
        parallel_tool_calls=parallel,
    )
    assert body.get("tool_choice") == expected
    no_tools = emitted(Message("user", (Text("x"),)), tool_choice=choice)
    assert "tool_choice" not in no_tools


def test_emit_tool_choice_unknown_mode() -> None:
    with pytest.raises(ConversionError, match="mode 'sometimes'"):
        emitted(
            Message("user", (Text("x"),)), tools=(Tool("f"),), tool_choice=ToolChoice("sometimes")
        )


@pytest.mark.parametrize(
    ("fields", "thinking"),
    [
        ({"reasoning_budget": 5000}, 5000),
        ({"reasoning_budget": 100}, 1024),
        ({"reasoning_budget": 9000, "max_tokens": 8000}, 7999),
        ({"reasoning_budget": 2000, "max_tokens": 1024}, None),
        ({"reasoning_budget": 0, "reasoning_effort": "high"}, None),
        ({"reasoning_budget": -1}, 2048),
        ({"reasoning_budget": -1, "reasoning_effort": "high"}, 4096),
        ({"reasoning_effort": "low"}, 1024),
        ({"reasoning_effort": "medium"}, 2048),
        ({"reasoning_effort": "high"}, 4096),
        ({"reasoning_effort": "none"}, None),
        ({}, None),
    ],
)
def test_emit_thinking_budget(fields: dict[str, Any], thinking: int | None) -> None:
    fields = {"max_tokens": 16000, **fields}
    body = emitted(Message("user", (Text("x"),)), temperature=0.2, top_p=0.5, top_k=3, **fields)
    if thinking is None:
        assert "thinking" not in body
        assert (body["temperature"], body["top_p"], body["top_k"]) == (0.2, 0.5, 3)
    else:
        assert body["thinking"] == {"type": "enabled", "budget_tokens": thinking}
        assert not {"temperature", "top_p", "top_k"} & body.keys()


def test_emit_options() -> None:
    schema = {"type": "object", "properties": {}}
    body = emitted(
        Message("user", (Text("x"),)),
        stop=("END",),
        stream=True,
        response_format=ResponseFormat("json_schema", schema, "answer"),
    )
    assert body["stop_sequences"] == ["END"] and body["stream"] is True
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    for fmt in (ResponseFormat("json_object"), ResponseFormat("text")):
        assert "output_config" not in emitted(Message("user", (Text("x"),)), response_format=fmt)


def test_rich_request_round_trip() -> None:
    body = {
        "model": "m",
        "max_tokens": 2000,
        "system": "sys",
        "messages": [
            user(text("look"), {"type": "image", "source": BASE64}),
            assistant(
                {"type": "thinking", "thinking": "t", "signature": "s"},
                tool_use("c1", "f", x=1),
                tool_use("c2", "g"),
            ),
            user(
                tool_result("c2", "two", is_error=True),
                tool_result("c1", [text("one")]),
                text("next"),
            ),
            assistant(text("done")),
        ],
        "tools": [
            {"name": "f", "input_schema": {"type": "object"}},
            {"name": "g", "description": "G", "input_schema": {"type": "object"}},
        ],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "thinking": {"type": "enabled", "budget_tokens": 1500},
        "stop_sequences": ["X"],
        "stream": True,
    }
    parsed = parse_request(body)
    assert parse_request(emit_request(parsed, "m")) == parsed


# --------------------------------------------------------------------------- responses


@pytest.mark.parametrize("name", cases("responses"))
def test_response_golden(name: str) -> None:
    parsed = parse_response(fixture_body("responses", name), ids)
    expected = {"neutral": to_json(parsed), "emitted": emit_response(parsed, META)}
    golden(FIXTURES / "responses" / f"{name}.expected.json", expected)


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("something_new", "error"),
        (None, "error"),
        (7, "error"),
    ],
)
def test_parse_stop_reasons(stop: Any, finish: str) -> None:
    body = {"type": "message", "content": [], "stop_reason": stop}
    assert parse_response(body, ids).finish_reason == finish


@pytest.mark.parametrize(
    ("finish", "stop"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
    ],
)
def test_emit_stop_reasons(finish: str, stop: str) -> None:
    out = emit_response(Response("r", "m", (Text("x"),), finish), META)
    assert (out["stop_reason"], out["stop_sequence"]) == (stop, None)


def test_emit_error_finish_is_never_end_turn() -> None:
    with pytest.raises(ConversionError) as info:
        emit_response(Response("r", "m", (Text("partial"),), "error"), META)
    assert info.value.status_hint == 502


@pytest.mark.parametrize(
    ("raw", "usage"),
    [
        ({"input_tokens": 10, "output_tokens": 5}, Usage(10, 5)),
        (
            {
                "input_tokens": 10,
                "output_tokens": 5,
                "cache_read_input_tokens": 100,
                "cache_creation_input_tokens": 20,
            },
            Usage(130, 5, cached_tokens=100),
        ),
        (
            {
                "input_tokens": 3,
                "output_tokens": 1,
                "cache_read_input_tokens": 0,
                "cache_creation_input_tokens": None,
                "server_tool_use": None,
            },
            Usage(3, 1, None, 0),
        ),
        ({}, Usage()),
    ],
)
def test_parse_usage(raw: dict[str, Any], usage: Usage) -> None:
    body = {"type": "message", "content": [], "stop_reason": "end_turn", "usage": raw}
    assert parse_response(body, ids).usage == usage


@pytest.mark.parametrize(
    ("usage", "wire"),
    [
        (Usage(10, 5), {"input_tokens": 10, "output_tokens": 5}),
        (
            Usage(130, 5, cached_tokens=100),
            {"input_tokens": 30, "output_tokens": 5, "cache_read_input_tokens": 100},
        ),
        (
            Usage(7, 2, reasoning_tokens=1, cached_tokens=0),
            {"input_tokens": 7, "output_tokens": 2, "cache_read_input_tokens": 0},
        ),
        (None, {"input_tokens": 42, "output_tokens": 0}),  # META.input_tokens
    ],
)
def test_emit_usage(usage: Usage | None, wire: dict[str, int]) -> None:
    assert emit_response(Response("r", "m", (), usage=usage), META)["usage"] == wire


def test_parse_response_numbers_calls_without_ids() -> None:
    body = {
        "type": "message",
        "stop_reason": "tool_use",
        "content": [
            {"type": "tool_use", "name": "a", "input": {}},
            {"type": "tool_use", "id": "given", "name": "b", "input": {"k": [1]}},
            {"type": "tool_use", "name": "c", "input": {}},
        ],
    }
    assert parse_response(body, ids).tool_calls() == [
        ToolCall("toolu_louter_0", "a", "{}"),
        ToolCall("given", "b", '{"k":[1]}'),
        ToolCall("toolu_louter_2", "c", "{}"),
    ]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ([], "the body is not a message object"),
        (
            {"type": "error", "error": {"type": "api_error", "message": "x"}},
            "the body is not a message object",
        ),
        ({"type": "message"}, "content is missing or not an array"),
        ({"type": "message", "content": ["x"]}, "content[0] is not an object"),
        (
            {"type": "message", "content": [{"type": "server_tool_use"}]},
            "content[0]: block type 'server_tool_use' cannot be converted",
        ),
        ({"type": "message", "content": [{"type": "text"}]}, "content[0].text is missing"),
        (
            {"type": "message", "content": [{"type": "tool_use", "name": "f", "input": "x"}]},
            "content[0].input is not an object",
        ),
    ],
)
def test_parse_response_rejects_bad_answers(body: Any, problem: str) -> None:
    with pytest.raises(ConversionError) as info:
        parse_response(body, ids)
    assert info.value.status_hint == 502 and problem in info.value.message


def test_emit_response_parts() -> None:
    response = Response(
        "r",
        "m",
        (
            Reasoning("why"),
            Reasoning(redacted="zz"),
            Reasoning(),
            Text(""),
            Text("hi"),
            ToolCall("c1", "f", '{"a":1}'),
        ),
        "tool_calls",
    )
    assert emit_response(response, META)["content"] == [
        {"type": "thinking", "thinking": "why", "signature": ""},
        {"type": "redacted_thinking", "data": "zz"},
        {"type": "text", "text": "hi"},
        {"type": "tool_use", "id": "c1", "name": "f", "input": {"a": 1}},
    ]


@pytest.mark.parametrize(
    "part", [Image("image/png", "AA"), ToolResult("c", "f"), ToolCall("c", "f", "[1]")]
)
def test_emit_response_rejects_parts_without_a_form(part: Any) -> None:
    with pytest.raises(ConversionError) as info:
        emit_response(Response("r", "m", (part,)), META)
    assert info.value.status_hint == 502


# --------------------------------------------------------------------------- errors, lists


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (402, "billing_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "api_error"),
        (504, "timeout_error"),
        (529, "overloaded_error"),
        (409, "invalid_request_error"),
        (422, "invalid_request_error"),
    ],
)
def test_error_body(status: int, kind: str) -> None:
    assert error_body(status, "boom") == {
        "type": "error",
        "error": {"type": kind, "message": "boom"},
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b'{"type":"error","error":{"type":"api_error","message":"stub injected 500"}}',
            "stub injected 500",
        ),
        (b'{"error": "plain string"}', "plain string"),
        (b'{"message": "top level"}', "top level"),
        (b'{"error": {"code": 5}}', '{"error": {"code": 5}}'),
        (b"  <html>bad gateway</html>\n", "<html>bad gateway</html>"),
        (b"\xff\xfe broken", "\ufffd\ufffd broken"),
        (b"x" * 5000, "x" * 1000),
        (b"", ""),
    ],
)
def test_error_message(body: bytes, message: str) -> None:
    assert error_message(body) == message


def test_count_and_model_list() -> None:
    assert emit_count_response(17) == {"input_tokens": 17}
    assert model_list(["a", "b"]) == {
        "data": [
            {"type": "model", "id": "a", "display_name": "a", "created_at": "1970-01-01T00:00:00Z"},
            {"type": "model", "id": "b", "display_name": "b", "created_at": "1970-01-01T00:00:00Z"},
        ],
        "has_more": False,
        "first_id": "a",
        "last_id": "b",
    }
    assert model_list([], "2026-01-01T00:00:00Z") == {
        "data": [],
        "has_more": False,
        "first_id": None,
        "last_id": None,
    }
    assert model_list(iter(["x"]), "2026-01-01T00:00:00Z")["data"][0]["created_at"] == (
        "2026-01-01T00:00:00Z"
    )
