"""The Completions wire vocabulary (louter.convert.completions.wire) and the package's
public surface."""

from __future__ import annotations

from typing import Any

import httpx2
import openai
import orjson
import pytest

import louter.convert.completions as completions
from louter.convert.completions.wire import (
    FINISH_IN,
    auth_headers,
    emit_usage,
    error_body,
    error_event,
    error_message,
    map_finish,
    parse_usage,
    upstream_path,
)
from louter.convert.model import FINISH_REASONS, Usage
from louter.errors import LouterError


def test_the_public_surface_is_pinned() -> None:
    assert completions.__all__ == [
        "DIALECT", "PATH", "StreamEmitter", "StreamParser", "emit_request", "emit_response",
        "error_body", "error_event", "error_message", "parse_request", "parse_response",
        "read_prompt", "render_prompt", "text_of", "usage_of",
    ]  # fmt: skip
    for name in completions.__all__:
        value = getattr(completions, name)
        module = getattr(value, "__module__", "louter.convert.completions.wire")
        assert module.startswith("louter.convert."), name


def test_finish_reasons_are_neutral_names() -> None:
    assert set(FINISH_IN.values()) <= FINISH_REASONS
    assert [map_finish(r) for r in ("stop", "length", "content_filter")] == [
        "stop", "length", "content_filter"
    ]  # fmt: skip
    assert {map_finish(r) for r in ("tool_calls", "eos", "", None, 1)} == {"error"}


def test_usage_both_ways() -> None:
    wire: dict[str, Any] = {"prompt_tokens": 5, "completion_tokens": 8}
    wire["prompt_tokens_details"] = {"cached_tokens": 2}
    usage = parse_usage(wire)
    assert usage == Usage(5, 8, cached_tokens=2)
    assert emit_usage(usage) == {**wire, "total_tokens": 13}
    assert emit_usage(Usage(1, 2, reasoning_tokens=1)) == {
        "prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3
    }  # fmt: skip
    assert parse_usage(None) is None and emit_usage(None) is None
    assert parse_usage({"prompt_tokens": -1, "completion_tokens": True}) == Usage(0, 0)


@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, "invalid_request_error"), (401, "authentication_error"), (404, "not_found_error"),
     (429, "rate_limit_error"), (500, "api_error"), (502, "api_error"), (418,
     "invalid_request_error")],
)  # fmt: skip
def test_error_body_is_openais_envelope(status: int, kind: str) -> None:
    assert error_body(status, "no") == {
        "error": {"message": "no", "type": kind, "param": None, "code": None}
    }


def test_the_sdk_raises_the_error_envelope() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(400, json=error_body(400, "echo: is not supported"))

    client = openai.OpenAI(
        api_key="k",
        base_url="http://louter.test/v1",
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
        max_retries=0,
    )
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="m", prompt="x", echo=True)
    assert caught.value.message == "Error code: 400 - echo: is not supported"
    assert caught.value.body == error_body(400, "echo: is not supported")["error"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"error":{"message":"context exceeded","code":400}}', "context exceeded"),
        (b'{"error":"plain"}', "plain"),
        (b'{"message":"top-level"}', "top-level"),
        (b'{"detail":{"msg":"pydantic"}}', "pydantic"),
        (b'{"error":{"code":1}}', '{"code":1}'),
        (b"<html>bad gateway</html>", "<html>bad gateway</html>"),
        (b"", "(empty body)"),
        (b"[1]", "[1]"),
    ],
)
def test_error_message_reads_common_envelopes(body: bytes, message: str) -> None:
    assert error_message(body) == message


def test_error_event_is_a_data_line_with_the_status() -> None:
    event = error_event("slot unavailable", 503)
    assert event.startswith(b"data: ") and event.endswith(b"\n\n")
    assert orjson.loads(event[6:]) == {
        "error": {"message": "slot unavailable", "type": "upstream_error", "code": 503}
    }


def test_a_backend_is_addressed_at_v1_completions_with_a_bearer_key() -> None:
    assert upstream_path("any/model", True) == upstream_path("m", False) == "/v1/completions"
    assert auth_headers("sk-1") == ((b"authorization", b"Bearer sk-1"),)
    for bad in ("a\r\nx-evil: 1", "日本"):
        with pytest.raises(LouterError):
            auth_headers(bad)
