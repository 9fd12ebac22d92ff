"""Whole Completions answers <-> the neutral model (louter.convert.completions.response).

Golden fixtures: tests/fixtures/completions/responses/<case>.json holds
{"backend": body, "neutral": parse_response(body), "client": emit_response(neutral)} or an
"error" (502) from either step.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import httpx2
import openai
import orjson
import pytest

from louter.convert.completions import emit_response, parse_response, text_of, usage_of
from louter.convert.model import Reasoning, Response, Text, ToolCall, Usage
from louter.errors import ConversionError
from tests.convert.completions.golden import META, REGEN, ids, load_cases, neutral_json, write_case


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
        if REGEN:
            write_case(path, case)
        return
    if REGEN:
        case["client"] = client
        write_case(path, case)
    assert error is None
    assert client == case["client"]


@pytest.mark.parametrize("path", load_cases("responses"))
def test_client_answers_read_back_as_the_same_answer(path: Path) -> None:
    """Round trip: what a Completions client is given parses back to the same neutral
    answer (but for the id and model, which the client's meta sets)."""
    case = orjson.loads(path.read_bytes())
    if "client" not in case:
        return
    again = parse_response(case["client"], ids)
    original = parse_response(case["backend"], ids)
    assert again == dataclasses.replace(original, id=META.id, model=META.model)
    assert emit_response(again, META) == case["client"]


def test_the_sample_is_read_from_llama_server() -> None:
    [param] = load_cases("responses", "llama-length.json")
    case = orjson.loads(param.values[0].read_bytes())
    text = " Paris.\n\nThe United States has"
    assert case["neutral"]["parts"] == [{"type": "Text", "text": text}]
    assert case["client"]["choices"][0]["finish_reason"] == "length"


def test_reasoning_is_left_out_of_the_answer() -> None:
    response = Response("r", "m", (Reasoning("let me think"), Text("4")), "stop", Usage(3, 5, 2))
    body = emit_response(response, META)
    assert body["choices"] == [{"text": "4", "index": 0, "logprobs": None, "finish_reason": "stop"}]
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}


def test_a_tool_call_cannot_be_answered_to_a_completions_client() -> None:
    response = Response("r", "m", (ToolCall("c1", "ls"),), "tool_calls")
    with pytest.raises(ConversionError) as caught:
        emit_response(response, META)
    assert caught.value.status_hint == 502
    assert "tool call" in caught.value.message


def test_usage_and_text_readers() -> None:
    body = {"choices": [{"text": "Hi", "index": 0}], "usage": {"prompt_tokens": 2}}
    assert usage_of(body) == Usage(2, 0)
    assert text_of(body) == "Hi"
    assert usage_of({"choices": []}) is None
    assert text_of({"choices": [{"index": 0, "message": {}}]}) == ""
    assert text_of({"error": "x"}) == ""


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


@pytest.mark.parametrize("path", load_cases("responses"))
def test_the_sdk_reads_emitted_answers(path: Path) -> None:
    case = orjson.loads(path.read_bytes())
    if "client" not in case:
        return
    completion = sdk_client(case["client"]).completions.create(model="client-model", prompt="x")
    assert (completion.id, completion.object, completion.model) == (
        META.id,
        "text_completion",
        META.model,
    )
    [choice] = completion.choices
    assert choice.text == "".join(part["text"] for part in case["neutral"]["parts"])
    assert choice.finish_reason == case["neutral"]["finish_reason"]
    usage = case["neutral"].get("usage")
    if usage is None:
        assert completion.usage is None
    else:
        assert completion.usage is not None
        assert completion.usage.prompt_tokens == usage["input_tokens"]
        assert completion.usage.completion_tokens == usage["output_tokens"]
