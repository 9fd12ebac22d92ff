"""`louter.probes` without a network: the probe table, the requests each dialect writes,
the readers and stream audits (over the golden stream fixtures), the schema check, the
verdicts, the PNG, and which backends `diagnostic` probes."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest

from louter.config import load_config, parse_config
from louter.convert.probe.image import RED_SQUARE, SIGNATURE, solid_png
from louter.convert.probe.model import COUNT, INVALID, Answer, Ask, Seen, SeenCall, User
from louter.convert.sse import SSEDecoder, SSEEvent
from louter.errors import ConfigError
from louter.probes import ALIASES, BY_NAME, PROBES, canonical, select
from louter.probes.catalog import TOOL_ASK, WEATHER
from louter.probes.checks import COUNTED, REFUSED, TEXT, TOOL_CALL, Expect, judge
from louter.probes.matrix import Served, plan, served_by_config, served_by_health
from louter.probes.schema import violations
from louter.probes.wire import WIRES, Reply, assemble, read
from tests.e2e.test_llama_e2e import TOOL_MESSAGES, WEATHER_TOOL

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def events_of(raw: bytes) -> list[SSEEvent]:
    decoder = SSEDecoder()
    return decoder.feed(raw) + decoder.flush()


def sse_fixture(dialect: str, name: str) -> bytes:
    path = FIXTURES / dialect / "streams" / name
    if path.suffix == ".json":  # Gemini fixtures keep the raw body under "sse"
        return json.loads(path.read_text())["sse"].encode()
    return path.read_bytes()


# --------------------------------------------------------------------------- the table


def test_the_probe_table() -> None:
    assert [(p.name, p.title) for p in PROBES] == [
        ("text", "Text Generation"),
        ("stream", "Streaming"),
        ("tools", "Function Calling"),
        ("tools-stream", "Function Calling + Streaming"),
        ("image", "Multimedia"),
        ("round-trip", "Tool Round Trip"),
        ("count-tokens", "Token Counting"),
        ("error", "Error Handling"),
    ]
    assert BY_NAME["stream"].ask.stream and BY_NAME["tools-stream"].ask.stream
    assert BY_NAME["image"].ask.turns[-1] == User(BY_NAME["image"].ask.turns[-1].text, RED_SQUARE)
    assert BY_NAME["round-trip"].follow_up is not None


def test_select_keeps_table_order_and_rejects_unknown_names() -> None:
    assert select([]) == PROBES
    assert [p.name for p in select(["error", "text", "error"])] == ["text", "error"]
    with pytest.raises(KeyError) as info:
        select(["text", "nope"])
    assert info.value.args[0] == "nope"


def test_aliases_name_probes() -> None:
    assert all(canonical(alias) == name in BY_NAME for alias, name in ALIASES.items())
    assert canonical("text") == "text" and canonical("nope") is None
    chosen = select(["vision", "function", "tools", "streaming"])
    assert [p.name for p in chosen] == ["stream", "tools", "image"]


def test_the_png_is_a_real_png() -> None:
    png = solid_png(3, 2, (1, 2, 3))
    assert png.startswith(SIGNATURE)
    chunks, at = [], len(SIGNATURE)
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        kind, data = png[at + 4 : at + 8], png[at + 8 : at + 8 + length]
        assert struct.unpack(">I", png[at + 8 + length : at + 12 + length])[0] == zlib.crc32(
            kind + data
        )
        chunks.append((kind, data))
        at += 12 + length
    assert [kind for kind, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    assert struct.unpack(">II", chunks[0][1][:8]) == (3, 2)
    assert zlib.decompress(chunks[1][1]) == (b"\x00" + bytes([1, 2, 3]) * 3) * 2
    assert RED_SQUARE.startswith(SIGNATURE) and len(RED_SQUARE) < 200


# --------------------------------------------------------------------------- requests


def test_the_openai_tool_request_is_the_llama_recipe() -> None:
    call = WIRES["openai"].write(TOOL_ASK, "smol")
    assert call.path == "/v1/chat/completions" and not call.stream
    assert call.body["messages"] == TOOL_MESSAGES
    assert call.body["tools"] == [WEATHER_TOOL]
    assert call.body["temperature"] == 0 and call.body["max_tokens"] == 64


@pytest.mark.parametrize(
    ("dialect", "kind", "stream", "path"),
    [
        ("openai", "chat", True, "/v1/chat/completions"),
        ("openai", COUNT, False, "/v1/chat/completions"),
        ("gemini", "chat", False, "/v1beta/models/m:1b:generateContent"),
        ("gemini", "chat", True, "/v1beta/models/m:1b:streamGenerateContent?alt=sse"),
        ("gemini", COUNT, False, "/v1beta/models/m:1b:countTokens"),
        ("anthropic", "chat", True, "/v1/messages"),
        ("anthropic", COUNT, False, "/v1/messages/count_tokens"),
        ("responses", "chat", True, "/v1/responses"),
        ("responses", COUNT, False, "/v1/responses"),
    ],
)
def test_paths(dialect: str, kind: str, stream: bool, path: str) -> None:
    call = WIRES[dialect].write(Ask((User("hi"),), stream=stream, kind=kind), "m:1b")
    assert (call.path, call.stream) == (path, stream)


def test_the_invalid_request_lacks_the_conversation() -> None:
    ask = Ask((User("hi"),), kind=INVALID)
    assert "messages" not in WIRES["openai"].write(ask, "m").body
    assert "contents" not in WIRES["gemini"].write(ask, "m").body
    assert "messages" not in WIRES["anthropic"].write(ask, "m").body
    assert "input" not in WIRES["responses"].write(ask, "m").body


def test_the_image_in_each_dialect() -> None:
    ask = Ask((User("look", b"\x89PNG"),))
    openai = WIRES["openai"].write(ask, "m").body["messages"][0]["content"]
    assert openai[1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,iVBORw=="},
    }
    gemini = WIRES["gemini"].write(ask, "m").body["contents"][0]["parts"]
    assert gemini[1] == {"inlineData": {"mimeType": "image/png", "data": "iVBORw=="}}
    anthropic = WIRES["anthropic"].write(ask, "m").body["messages"][0]["content"]
    source = {"type": "base64", "media_type": "image/png", "data": "iVBORw=="}
    assert anthropic[0] == {"type": "image", "source": source}
    responses = WIRES["responses"].write(ask, "m").body["input"][0]["content"]
    assert responses[1] == {"type": "input_image", "image_url": "data:image/png;base64,iVBORw=="}


def test_keys_go_in_each_dialects_header() -> None:
    assert WIRES["openai"].key_header("k") == ("authorization", "Bearer k")
    assert WIRES["gemini"].key_header("k") == ("x-goog-api-key", "k")
    assert WIRES["anthropic"].key_header("k") == ("x-api-key", "k")
    assert WIRES["responses"].key_header("k") == ("authorization", "Bearer k")
    assert WIRES["anthropic"].write(TOOL_ASK, "m").headers["anthropic-version"] == "2023-06-01"


# --------------------------------------------------------------------------- streams

GOOD_STREAMS = [
    ("openai", "llama-chat.sse", "stop", 0),
    ("openai", "llama-tool.sse", "tool_calls", 1),
    ("openai", "parallel-fragments.sse", "tool_calls", 2),
    ("openai", "whole-calls-without-index.sse", "stop", 2),
    ("openai", "crlf-comments.sse", "stop", 0),
    ("gemini", "stub-text.json", "stop", 0),
    ("gemini", "stub-tool-call.json", "tool_calls", 1),
    ("gemini", "synth-parallel-calls.json", "tool_calls", 2),
    ("gemini", "synth-thinking-usage-after-finish.json", "stop", 0),
    ("anthropic", "stub-text.sse", "stop", 0),
    ("anthropic", "stub-tool.sse", "tool_calls", 1),
    ("anthropic", "thinking-parallel-tools.sse", "tool_calls", 2),
    ("anthropic", "max-tokens.sse", "length", 0),
    ("responses", "stub-text.sse", "stop", 0),
    ("responses", "stub-tool.sse", "tool_calls", 1),
    ("responses", "reasoning-parallel.sse", "tool_calls", 2),
    ("responses", "incomplete.sse", "length", 0),
]
BAD_STREAMS = [
    ("openai", "cut-after-finish.sse", "the stream ended without `data: [DONE]`"),
    ("openai", "cut-before-finish.sse", "0 finish reasons (one expected)"),
    ("openai", "done-without-finish.sse", "0 finish reasons (one expected)"),
    ("openai", "nameless-call.sse", "tool call 0 never named its function"),
    ("openai", "llama-error.sse", "the stream reported an error: "),
    ("gemini", "synth-truncated.json", "0 finishReasons (one expected, on the last chunk)"),
    ("gemini", "synth-error-chunk.json", "the stream reported an error: "),
    ("gemini", "synth-prompt-blocked.json", "a chunk without candidates"),
    ("anthropic", "truncated.sse", "the stream ended in the message, before message_stop"),
    ("anthropic", "error-overloaded.sse", "the stream reported an error: "),
    ("responses", "truncated.sse", "the stream ended without response.completed"),
    ("responses", "error-event.sse", "the stream reported an error: "),
    ("responses", "failed.sse", "the stream reported an error: "),
]


@pytest.mark.parametrize(("dialect", "name", "finish", "calls"), GOOD_STREAMS)
def test_well_formed_streams_pass_the_audit(
    dialect: str, name: str, finish: str, calls: int
) -> None:
    events = events_of(sse_fixture(dialect, name))
    answer, problems = WIRES[dialect].audit_stream(events)
    assert problems == []
    assert (answer.finish, len(answer.calls), answer.finishes) == (finish, calls, 1)
    assert answer.text or answer.calls
    seen = read(
        WIRES[dialect], Ask((User("q"),), stream=True), Reply(200, "", events=tuple(events))
    )
    assert seen.problems == () and seen.stream and seen.chunks == len(events)


@pytest.mark.parametrize(("dialect", "name", "problem"), BAD_STREAMS)
def test_broken_streams_are_caught(dialect: str, name: str, problem: str) -> None:
    _, problems = WIRES[dialect].audit_stream(events_of(sse_fixture(dialect, name)))
    assert any(p.startswith(problem) for p in problems), problems


def _events(*items: tuple[str | None, dict[str, Any]]) -> list[SSEEvent]:
    return [SSEEvent(json.dumps(data), event) for event, data in items]


def test_anthropic_order_is_enforced() -> None:
    start = ("message_start", {"type": "message_start", "message": {"usage": {}}})
    block = (
        "content_block_start",
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
    )
    stop = ("message_stop", {"type": "message_stop"})
    _, problems = WIRES["anthropic"].audit_stream(_events(start, block, stop))
    assert problems == [
        "content block index 1, expected 0",
        "message_stop in the message",
        "the stream ended in the message, before message_stop",
        "0 stop reasons (one expected, in message_delta)",
    ]
    _, problems = WIRES["anthropic"].audit_stream(_events((None, start[1])))
    assert "`event: None` carries data of type 'message_start'" in problems


def test_openai_content_after_the_finish_and_two_finishes() -> None:
    def chunk(content: str, finish: str | None) -> tuple[None, dict[str, Any]]:
        return None, {
            "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]
        }

    events = [*_events(chunk("a", "stop"), chunk("b", "stop")), SSEEvent("[DONE]")]
    answer, problems = WIRES["openai"].audit_stream(events)
    assert problems == ["content after the finish_reason", "2 finish reasons (one expected)"]
    assert answer.text == "ab"


def test_the_audit_must_agree_with_louters_assembled_result() -> None:
    from louter.probes.wire import _mismatches

    events = events_of(sse_fixture("openai", "llama-chat.sse"))
    collector, failure = assemble("openai", events)
    assert failure is None
    assert _mismatches(Answer(text="something else"), collector) == [
        "the streamed text 'something else' differs from the assembled result "
        f"{collector.result().parts[0].text!r}"  # type: ignore[union-attr]
    ]


def test_a_stream_where_json_was_asked_and_json_where_a_stream_was() -> None:
    events = tuple(events_of(sse_fixture("openai", "llama-chat.sse")))
    seen = read(WIRES["openai"], Ask((User("q"),)), Reply(200, "text/event-stream", events=events))
    assert seen.problems[0] == "an event stream came back where one JSON answer was asked for"
    body = json.dumps({"choices": []}).encode()
    seen = read(
        WIRES["openai"], Ask((User("q"),), stream=True), Reply(200, "application/json", body)
    )
    assert seen.problems == ("a stream was asked for, got 'application/json'",)


# --------------------------------------------------------------------------- answers


def _response(dialect: str, name: str) -> Any:
    data = json.loads((FIXTURES / dialect / "responses" / name).read_text())
    return data.get("backend") or data.get("wire") or data["body"]


@pytest.mark.parametrize(
    ("dialect", "name", "text", "calls", "finish"),
    [
        ("openai", "llama-chat.json", True, 0, "stop"),
        ("openai", "llama-tool-call.json", False, 1, "tool_calls"),
        ("openai", "llama-length.json", True, 0, "length"),
        ("gemini", "synth-parallel-calls-with-ids.json", True, 2, "tool_calls"),
        ("gemini", "synth-max-tokens.json", True, 0, "length"),
        ("anthropic", "stub-text.json", True, 0, "stop"),
        ("anthropic", "stub-tool.json", False, 1, "tool_calls"),
        ("responses", "stub-text.json", True, 0, "stop"),
        ("responses", "stub-tool.json", False, 1, "tool_calls"),
        ("responses", "reasoning-parallel.json", True, 2, "tool_calls"),
        ("responses", "incomplete.json", True, 0, "length"),
    ],
)
def test_whole_answers_are_read(
    dialect: str, name: str, text: bool, calls: int, finish: str
) -> None:
    answer, problems = WIRES[dialect].read_answer(_response(dialect, name))
    assert problems == []
    assert (bool(answer.text), len(answer.calls), answer.finish) == (text, calls, finish)
    assert all(isinstance(json.loads(c.arguments), dict) for c in answer.calls)


@pytest.mark.parametrize(
    ("dialect", "body", "problems"),
    [
        ("openai", {"error": {"message": "bad", "type": "x"}}, []),
        (
            "openai",
            {"detail": "bad"},
            ["error is not an object", "error.message is not a string", "the error has no message"],
        ),
        ("gemini", {"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}}, []),
        (
            "gemini",
            {"error": {"code": 500, "message": "bad", "status": "X"}},
            ["error.code is 500, not the HTTP status 400"],
        ),
        (
            "anthropic",
            {"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}},
            [],
        ),
        ("responses", {"error": {"message": "bad", "type": "invalid_request_error"}}, []),
        (
            "responses",
            {"message": "bad"},
            ["error is not an object", "error.message is not a string", "the error has no message"],
        ),
        (
            "anthropic",
            {"error": {"message": "bad"}},
            ["the error body's type is None, not 'error'", "error.type is not a string"],
        ),
    ],
)
def test_error_envelopes(dialect: str, body: Any, problems: list[str]) -> None:
    seen = read(
        WIRES[dialect], Ask((User("q"),), kind=INVALID), Reply(400, "", json.dumps(body).encode())
    )
    assert list(seen.problems) == problems
    assert judge(Expect(REFUSED), TOOL_ASK, seen).passed is (not problems)


def test_an_error_status_where_an_answer_was_expected() -> None:
    body = json.dumps({"error": {"message": "image input is not supported"}}).encode()
    seen = read(WIRES["openai"], Ask((User("q"),)), Reply(500, "application/json", body))
    verdict = judge(Expect(TEXT), Ask((User("q"),)), seen)
    assert verdict.problems == ("HTTP 500: image input is not supported",)
    seen = read(WIRES["openai"], Ask((User("q"),)), Reply(502, "text/html", b"<html>"))
    assert (
        judge(Expect(TEXT), Ask((User("q"),)), seen)
        .problems[0]
        .startswith("HTTP 502, body not JSON")
    )


# --------------------------------------------------------------------------- verdicts


def _seen(**answer: Any) -> Seen:
    return Seen(200, Answer(**answer))


def test_text_verdicts() -> None:
    expect = Expect(TEXT, mock_text="Mock answer to: x")
    assert judge(expect, TOOL_ASK, _seen(text="Paris.", finish="stop")).passed
    assert judge(expect, TOOL_ASK, _seen(text="Paris.", finish="length")).passed
    mocked = judge(expect, TOOL_ASK, _seen(text="Mock answer to: y", finish="stop"))
    assert mocked.problems == ("the mock answers 'Mock answer to: x', got 'Mock answer to: y'",)
    assert not judge(expect, TOOL_ASK, _seen(text="Paris.", finish="stop"), mock=True).passed
    assert judge(expect, TOOL_ASK, _seen(text=" ", finish="stop")).problems == (
        "the answer has no text",
    )
    call = SeenCall("c", "get_weather", "{}")
    assert judge(expect, TOOL_ASK, _seen(text="a", calls=(call,), finish="stop")).problems == (
        "a tool call (get_weather) where text was expected",
    )


@pytest.mark.parametrize(
    ("call", "finish", "problems"),
    [
        (SeenCall("c", "get_weather", '{"city":"Paris"}'), "tool_calls", ()),
        (
            SeenCall("c", "get_time", "{}"),
            "tool_calls",
            ("the call names 'get_time', which was not declared (get_weather)",),
        ),
        (
            SeenCall("c", "get_weather", '{"city":'),
            "tool_calls",
            (
                "the arguments of get_weather are not JSON (unexpected end of data: "
                "line 1 column 9 (char 8)): '{\"city\":'",
            ),
        ),
        (
            SeenCall("c", "get_weather", "[]"),
            "tool_calls",
            ("the arguments of get_weather are not a JSON object",),
        ),
        (
            SeenCall("c", "get_weather", '{"town":"Paris"}'),
            "tool_calls",
            ("get_weather arguments lacks the required key 'city'",),
        ),
        (
            SeenCall("c", "get_weather", '{"city":7}'),
            "tool_calls",
            ("get_weather arguments.city should be string, got integer",),
        ),
        (
            SeenCall("c", "get_weather", '{"city":"Paris"}'),
            "stop",
            ("finish reason 'stop', expected tool_calls",),
        ),
    ],
)
def test_tool_call_verdicts(call: SeenCall, finish: str, problems: tuple[str, ...]) -> None:
    verdict = judge(Expect(TOOL_CALL), TOOL_ASK, _seen(calls=(call,), finish=finish))
    assert verdict.problems == problems


def test_the_mock_is_recognised_by_its_answers() -> None:
    expect = Expect(TOOL_CALL, mock_arguments={"city": "mock-city"})
    mock_like = _seen(
        calls=(SeenCall("c", "get_weather", '{"city":"mock-other"}'),), finish="tool_calls"
    )
    assert judge(expect, TOOL_ASK, mock_like).problems == (
        "the mock calls with {'city': 'mock-city'}, got {'city': 'mock-other'}",
    )
    assert judge(expect, TOOL_ASK, mock_like, mock=False).passed


def test_count_verdicts() -> None:
    expect = Expect(COUNTED, mock_count=7)
    assert judge(expect, TOOL_ASK, _seen(count=12)).passed
    assert not judge(expect, TOOL_ASK, _seen(count=12), mock=True).passed
    assert judge(expect, TOOL_ASK, _seen(count=0)).problems == (
        "no token count above zero (got 0)",
    )


def test_refusal_verdicts() -> None:
    ask = Ask((User("q"),), kind=INVALID)
    accepted = read(WIRES["gemini"], ask, Reply(200, "application/json", b"{}"))
    assert judge(Expect(REFUSED), ask, accepted).problems == (
        "HTTP 200: the bad request was accepted",
    )
    crashed = read(
        WIRES["openai"], ask, Reply(500, "application/json", b'{"error":{"message":"boom"}}')
    )
    assert judge(Expect(REFUSED), ask, crashed).problems == (
        "HTTP 500: a server error for a bad request (4xx expected)",
    )


# --------------------------------------------------------------------------- schema


@pytest.mark.parametrize(
    ("value", "schema", "problems"),
    [
        ({"a": 1}, {"type": "object", "properties": {"a": {"type": "integer"}}}, []),
        (
            {"a": 1.5},
            {"type": "OBJECT", "properties": {"a": {"type": "INTEGER"}}},
            ["arguments.a should be integer, got number"],
        ),
        (
            {"a": True},
            {"properties": {"a": {"type": "number"}}},
            ["arguments.a should be number, got boolean"],
        ),
        ({"a": None}, {"properties": {"a": {"type": ["string", "null"]}}}, []),
        ({"u": "c"}, {"properties": {"u": {"enum": ["c", "f"]}}}, []),
        (
            {"u": "k"},
            {"properties": {"u": {"enum": ["c", "f"]}}},
            ["arguments.u is 'k', not one of ['c', 'f']"],
        ),
        (
            {"x": 2},
            {"type": "object", "additionalProperties": False},
            ["arguments has an undeclared key 'x'"],
        ),
        (
            {"l": [1, "b"]},
            {"properties": {"l": {"type": "array", "items": {"type": "integer"}}}},
            ["arguments.l[1] should be integer, got string"],
        ),
        (
            {"v": 3},
            {"properties": {"v": {"anyOf": [{"type": "string"}, {"type": "boolean"}]}}},
            ["arguments.v matches none of the anyOf options"],
        ),
        ({"k": "x"}, {"properties": {"k": {"const": "y"}}}, ["arguments.k is 'x', not 'y'"]),
        ("text", None, []),
    ],
)
def test_schema(value: Any, schema: Any, problems: list[str]) -> None:
    assert violations(value, schema) == problems


def test_the_weather_schema() -> None:
    assert violations({"city": "Paris"}, WEATHER.parameters) == []
    assert violations({}, WEATHER.parameters) == ["arguments lacks the required key 'city'"]


# --------------------------------------------------------------------------- the matrix


def test_without_a_config_only_the_mock_is_probed() -> None:
    assert served_by_config(load_config(None, {}), "mock") == [Served("mock", "mock", ("mock",))]


def test_the_default_and_the_mapped_backends_are_probed() -> None:
    config = parse_config(
        '[backends.local]\nurl = "http://127.0.0.1:1"\n'
        '[backends.other]\nurl = "http://127.0.0.1:2"\n'
        '[backends.other.model_mapping]\n"a" = "x"\n"b" = "y"\n',
        path="t.toml",
        env={},
    )
    assert served_by_config(config, "local") == [
        Served("local", "openai", ("local",)),
        Served("other", "openai", ("a", "b")),
    ]
    assert served_by_config(config, "local", "other") == [Served("other", "openai", ("a", "b"))]
    assert served_by_config(config, "local", "gemini") == [Served("gemini", "gemini", ("gemini",))]
    with pytest.raises(ConfigError, match="unknown backend 'nope'; known backends: local, other"):
        served_by_config(config, "local", "nope")


def test_the_same_from_health() -> None:
    health = {
        "status": "ok",
        "default": "mock",
        "backends": {
            "mock": {"protocol": "mock", "models": []},
            "llama": {"protocol": "openai", "models": ["smol"]},
            "openai": {"protocol": "openai", "models": []},
        },
    }
    assert served_by_health(health) == [
        Served("mock", "mock", ("mock",)),
        Served("llama", "openai", ("smol",)),
    ]
    assert served_by_health(health, "openai") == [Served("openai", "openai", ("openai",))]
    with pytest.raises(ConfigError, match="is this louter"):
        served_by_health({"status": "ok"})


def test_plan_orders_doors_then_backends_then_models() -> None:
    served = [Served("mock", "mock", ("mock",)), Served("llama", "openai", ("a", "b"))]
    targets = plan("http://l", ["gemini", "openai"], served)
    assert [(t.dialect, t.backend, t.model, t.mock) for t in targets] == [
        ("gemini", "mock", "mock", True),
        ("gemini", "llama", "a", None),
        ("gemini", "llama", "b", None),
        ("openai", "mock", "mock", True),
        ("openai", "llama", "a", None),
        ("openai", "llama", "b", None),
    ]
    assert {t.url for t in targets} == {"http://l"}
