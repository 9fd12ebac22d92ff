"""Completions requests <-> the neutral model (louter.convert.completions.request).

Golden fixtures: tests/fixtures/completions/requests/<case>.json holds
{"wire": client body, "neutral": parse_request(wire), "backend": emit_request(neutral)}
or {"wire": ..., "error": {"status": 400, "message": substring}}.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import openai
import orjson
import pytest

from louter.convert.completions import emit_request, parse_request, render_prompt
from louter.convert.completions.transcript import STOPS
from louter.convert.completions.wire import DROPS
from louter.convert.model import (
    Image,
    Message,
    Reasoning,
    Request,
    ResponseFormat,
    Text,
    Tool,
    ToolCall,
    ToolResult,
)
from louter.errors import ConversionError
from tests.convert.completions.golden import (
    BACKEND_MODEL,
    REGEN,
    load_cases,
    neutral_json,
    write_case,
)

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
    request = parse_request(case["wire"])
    backend = emit_request(request, BACKEND_MODEL)
    if REGEN:
        case = {**case, "neutral": neutral_json(request), "backend": backend}
        write_case(path, case)
    assert neutral_json(request) == case["neutral"]
    assert backend == case["backend"]
    # What louter sends is itself a Completions request: it reads back as the same
    # conversation and is sent again unchanged.
    again = parse_request(backend)
    assert again.messages == request.messages
    assert emit_request(again, BACKEND_MODEL) == backend


def test_request_fixtures_cover_the_refusals() -> None:
    names = {path.values[0].stem for path in load_cases("requests", "error-*.json")}
    for field in ("echo", "logprobs", "suffix", "n-2", "best-of-3", "logit-bias"):
        assert f"error-{field}" in names
    for prompt in ("batch", "token-ids", "token-arrays", "empty", "missing"):
        assert f"error-prompt-{prompt}" in names


def test_a_prompt_is_one_user_message() -> None:
    request = parse_request({"model": "m", "prompt": "Once upon a time", "max_tokens": 3})
    assert request == Request(
        model="m", messages=(Message("user", (Text("Once upon a time"),)),), max_tokens=3
    )


@pytest.mark.parametrize(
    "body",
    [
        {"model": "m", "prompt": [None]},
        {"model": "m", "prompt": ["a", 1]},
        {"model": "m", "prompt": [[]]},
        {"model": "m", "prompt": "x", "stop": {"a": 1}},
        {"model": "m", "prompt": "x", "n": [1]},
        {"model": "m", "prompt": "x", "echo": "no"},
        {"model": "m", "prompt": "x", "suffix": 3},
        {"model": "m", "prompt": "x", "logit_bias": []},
        {"model": ["m"], "prompt": "x"},
    ],
)
def test_odd_shapes_are_a_400(body: dict[str, Any]) -> None:
    with pytest.raises(ConversionError) as caught:
        parse_request(body)
    assert caught.value.status_hint == 400


# --------------------------------------------------------------------------- the SDK's bodies


def sdk_body(**kwargs: Any) -> dict[str, Any]:
    """The body `client.completions.create(**kwargs)` of the official SDK sends."""
    sent: list[bytes] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        sent.append(request.content)
        return httpx2.Response(400, json={"error": {"message": "captured"}})

    client = openai.OpenAI(
        api_key="k",
        base_url="http://louter.test/v1",
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
        max_retries=0,
    )
    with pytest.raises(openai.BadRequestError):
        client.completions.create(**kwargs)
    body: dict[str, Any] = orjson.loads(sent[0])
    return body


def test_the_sdks_requests_parse() -> None:
    body = sdk_body(
        model="gpt-3.5-turbo-instruct",
        prompt=["Say this is a test"],
        max_tokens=7,
        temperature=0,
        stop=["\n"],
        seed=1,
        user="u",
        stream=True,
        stream_options={"include_usage": True},
    )
    request = parse_request(body)
    assert request.messages == (Message("user", (Text("Say this is a test"),)),)
    assert (request.max_tokens, request.temperature, request.stop) == (7, 0.0, ("\n",))
    assert request.stream and request.include_usage


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"echo": True}, "echo"),
        ({"logprobs": 2}, "logprobs"),
        ({"suffix": "end"}, "suffix"),
        ({"n": 2}, "n"),
        ({"best_of": 2}, "best_of"),
    ],
)
def test_the_sdks_unsupported_settings_are_refused_by_name(kwargs: Any, field: str) -> None:
    with pytest.raises(ConversionError) as caught:
        parse_request(sdk_body(model="m", prompt="x", **kwargs))
    assert caught.value.status_hint == 400
    assert caught.value.message.startswith(f"{field}: ")


# --------------------------------------------------------------------------- the transcript


def conversation(*messages: Message, **settings: Any) -> Request:
    return Request(model="client", messages=messages, **settings)


def test_a_conversation_is_rendered_as_one_transcript() -> None:
    request = conversation(
        Message("system", (Text("You are terse."), Text("Answer in English."))),
        Message("user", (Text("What is 2+2?"),)),
        Message("assistant", (Reasoning("easy"), Text("4"))),
        Message("user", (Text("And 3+3?"),)),
        max_tokens=20,
        temperature=0.0,
        stop=("###",),
        stream=True,
    )
    assert emit_request(request, "instruct") == {
        "model": "instruct",
        "prompt": (
            "System: You are terse.\nAnswer in English.\n\n"
            "User: What is 2+2?\n\n"
            "Assistant: 4\n\n"
            "User: And 3+3?\n\n"
            "Assistant:"
        ),
        "max_tokens": 20,
        "temperature": 0.0,
        "stop": ["\nUser:", "###"],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_a_closing_assistant_message_is_a_prefill_left_open() -> None:
    messages = (Message("user", (Text("Name a colour"),)), Message("assistant", (Text("Deep"),)))
    assert render_prompt(messages) == "User: Name a colour\n\nAssistant: Deep"


def test_empty_messages_and_reasoning_only_turns_are_left_out() -> None:
    messages = (
        Message("system", ()),
        Message("user", (Text("hi"),)),
        Message("assistant", (Reasoning("thinking"),)),
    )
    assert render_prompt(messages) == "User: hi\n\nAssistant:"


def test_the_transcript_stop_sequence_is_always_sent_once() -> None:
    assert STOPS == ("\nUser:",)
    request = conversation(Message("user", (Text("x"),)), stop=("\nUser:", "a"))
    assert emit_request(request, "b")["stop"] == ["\nUser:", "a"]
    assert emit_request(conversation(Message("user", (Text("x"),))), "b")["stop"] == ["\nUser:"]


def test_settings_without_a_completions_field_are_the_dialects_drops() -> None:
    request = conversation(
        Message("user", (Text("x"),)),
        top_k=5,
        response_format=ResponseFormat("json_object"),
        reasoning_effort="high",
        reasoning_budget=100,
    )
    body = emit_request(request, "b")
    assert body == {"model": "b", "prompt": "User: x\n\nAssistant:", "stop": ["\nUser:"]}
    assert set(DROPS) == {"top_k", "response_format", "reasoning_effort", "reasoning_budget"}
    assert all(getattr(request, name) is not None for name in DROPS)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (
            conversation(Message("user", (Text("x"),)), tools=(Tool("ls"), Tool("cat"))),
            "a completions backend takes no tools (the request offers ls, cat)",
        ),
        (
            conversation(Message("user", (Text("see"), Image(url="https://x.test/a.png")))),
            "messages[0]: a completions backend takes text only, not images",
        ),
        (
            conversation(
                Message("user", (Text("x"),)), Message("assistant", (ToolCall("c1", "ls"),))
            ),
            "messages[1]: a completions backend takes no tools, and the conversation holds a "
            "tool call",
        ),
        (
            conversation(
                Message("user", (Text("x"),)),
                Message("tool", (ToolResult("c1", "ls", (Text("a"),)),)),
            ),
            "messages[1]: a completions backend takes no tools, and the conversation holds a "
            "tool result",
        ),
        (
            conversation(Message("tool", (Text("stray"),))),
            "messages[0]: role 'tool' has no transcript form",
        ),
    ],
)
def test_what_a_transcript_cannot_hold_is_a_400(request_: Request, message: str) -> None:
    with pytest.raises(ConversionError) as caught:
        emit_request(request_, "b")
    assert caught.value.status_hint == 400
    assert caught.value.message == message
