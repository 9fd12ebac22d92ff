"""The loop guards (`louter/proxy/loop_guard.py`) through real HTTP and the official SDKs.

Text loops: a fake OpenAI upstream streams one paragraph forever; every front door's
SDK (Chat Completions passing through as bytes, Responses, Anthropic, Gemini and
legacy Completions converted) sees the text so far, the closing note and a normal
finish, and the upstream connection is closed within a bounded time. Whole answers are
cut the same way. Legitimate repetition (a 200-row table, a list of similar tests, code
with repeated lines) is not cut. Tool loops: a conversation with 3 identical calls in
each mode, an exempt tool, the switches (config, header). The journal and the metric.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import trio
from typer.testing import CliRunner

from louter.cli.log_parser import app as log_parser_app
from louter.config import parse_config
from louter.proxy.app import build_context, serve
from tests.fakes import FakeUpstream, SSEReply, chat_chunk, chat_completion, chat_stream
from tests.sdk import Clients, in_thread

PARAGRAPH = "I will now check the configuration file again to be sure it is right. "  # 71 chars
MODEL = "m"
LOOPS = """
[loop_detection]
min_pattern_length = 50
max_pattern_length = 500
min_repetitions = 3
"""
TOOLS = """
[tool_call_loop]
max_repeats = 3
mode = "{mode}"
exempt_tools = ["wait"]
"""


def _config(upstream: str, extra: str) -> str:
    return f'[backends.up]\nurl = "{upstream}"\nprotocol = "openai"\n' + extra


async def _start(nursery: trio.Nursery, fake: FakeUpstream, extra: str, log: Path | None = None):
    await nursery.start(fake.serve)
    config = parse_config(_config(fake.url, extra), path="t.toml", env={})
    ctx = build_context(config, default_backend="up", log_file=log)
    port = await nursery.start(serve, ctx, "127.0.0.1", 0)
    return f"http://127.0.0.1:{port}", ctx


def _forever(text: str, piece: int = 9) -> Iterator[bytes]:
    """An OpenAI stream of `text` again and again, `piece` characters a chunk, forever."""
    yield b"data: " + orjson.dumps(chat_chunk("", role="x")) + b"\n\n"
    for start in itertools.count(0, piece):
        at = start % len(text)
        chunk = (text + text)[at : at + piece]
        yield b"data: " + orjson.dumps(chat_chunk(chunk)) + b"\n\n"


def _stream_forever() -> SSEReply:
    return SSEReply(_forever(PARAGRAPH), pause=0.001)  # type: ignore[arg-type]


# One function per door: (sdk, base) -> (text, normal finish?), streamed
def _openai(sdk: Clients, base: str) -> tuple[str, bool]:
    client = sdk.openai(base)
    messages: Any = [{"role": "user", "content": "hi"}]
    with client.chat.completions.stream(model=MODEL, messages=messages) as events:
        final = events.get_final_completion()
    return final.choices[0].message.content or "", final.choices[0].finish_reason == "stop"


def _responses(sdk: Clients, base: str) -> tuple[str, bool]:
    with sdk.openai(base).responses.stream(model=MODEL, input="hi") as events:
        reply = events.get_final_response()
    return reply.output_text, reply.status == "completed"


def _anthropic(sdk: Clients, base: str) -> tuple[str, bool]:
    client = sdk.anthropic(base)
    messages: Any = [{"role": "user", "content": "hi"}]
    with client.messages.stream(model=MODEL, max_tokens=64, messages=messages) as events:
        reply = events.get_final_message()
    text = "".join(block.text for block in reply.content if block.type == "text")
    return text, reply.stop_reason == "end_turn"


def _gemini(sdk: Clients, base: str) -> tuple[str, bool]:
    chunks = list(sdk.gemini(base).models.generate_content_stream(model=MODEL, contents="hi"))
    text = "".join(chunk.text or "" for chunk in chunks)
    return text, str(chunks[-1].candidates[0].finish_reason) == "FinishReason.STOP"


def _completions(sdk: Clients, base: str) -> tuple[str, bool]:
    stream = sdk.openai(base).completions.create(model=MODEL, prompt="hi", stream=True)
    pieces, finish = [], None
    for chunk in stream:
        for choice in chunk.choices:
            pieces.append(choice.text)
            finish = choice.finish_reason or finish
    return "".join(pieces), finish == "stop"


DOORS: dict[str, Callable[[Clients, str], tuple[str, bool]]] = {
    "openai": _openai,
    "responses": _responses,
    "anthropic": _anthropic,
    "gemini": _gemini,
    "completions": _completions,
}


@pytest.mark.parametrize("door", list(DOORS))
async def test_an_endless_loop_ends_cleanly_in_every_door(
    nursery: trio.Nursery, sdk: Clients, door: str, tmp_path: Path
) -> None:
    fake = FakeUpstream(default=lambda request: _stream_forever())
    log = tmp_path / "log.jsonl"
    base, ctx = await _start(nursery, fake, LOOPS, log)
    with trio.fail_after(20):
        text, finished = await in_thread(lambda: DOORS[door](sdk, base))
        await fake.requests[0].connection.closed.wait()  # the upstream was let go
    assert finished
    body, _, note = text.rpartition("\n\n")
    assert note.startswith("[louter stopped this answer: the same text was repeated")
    assert "the configuration file" in note and "times" in note
    assert PARAGRAPH * 3 in body  # the text so far: three copies and a little more
    assert len(body) < len(PARAGRAPH) * 5
    entries = [orjson.loads(line) for line in log.read_bytes().splitlines()]
    found = [e for e in entries if e.get("type") == "loop_detected"]
    assert len(found) == 1 and found[0]["direction"] == "error"
    assert (found[0]["kind"], found[0]["action"], found[0]["count"]) == ("text", "cut", 3)
    assert "configuration file" in found[0]["pattern"]
    assert ctx.metrics is not None
    assert b'loop_detections_total{action="cut",backend="up",kind="text"} 1.0' in (
        ctx.metrics.render()
    )


async def test_the_passthrough_cut_keeps_ids_and_usage(nursery: trio.Nursery) -> None:
    """Same dialect: the bytes pass through; the closing chunks carry the upstream's id
    and model, the usage chunk when asked for, and [DONE]."""
    fake = FakeUpstream(default=lambda request: _stream_forever())
    base, _ = await _start(nursery, fake, LOOPS)
    body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "hi"}],
            "stream_options": {"include_usage": True}}  # fmt: skip
    async with httpx.AsyncClient() as client:
        reply = await client.post(base + "/v1/chat/completions", json=body)
    events = [line[6:] for line in reply.text.split("\n\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    assert {c["id"] for c in chunks} == {"chatcmpl-fake"}
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0
    assert [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]] == [chunks[-2]]


async def test_a_whole_answer_is_cut_too(nursery: trio.Nursery, sdk: Clients) -> None:
    looping = "Intro.\n" + PARAGRAPH * 12 + "\nThe end."
    fake = FakeUpstream(default=lambda request: _json(chat_completion(looping)))
    base, _ = await _start(nursery, fake, LOOPS)
    reply = await in_thread(
        lambda: sdk.openai(base).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}]
        )
    )
    text = reply.choices[0].message.content or ""
    assert text.startswith("Intro.\n" + PARAGRAPH * 3)
    assert "The end." not in text and "[louter stopped this answer" in text
    assert reply.choices[0].finish_reason == "stop"


def _json(body: Any) -> Any:
    from tests.fakes import JSONReply

    return JSONReply(body)


def _table() -> str:
    rows = "".join(f"| {i} | the same description of this row, it is long enough | ok |\n"
                   for i in range(200))  # fmt: skip
    rows += "".join("| x | the same description of this row, it is long enough | ok |\n"
                    for _ in range(50))  # fmt: skip
    return "Here is the table:\n\n| n | what | state |\n|---|---|---|\n" + rows + "\nDone.\n"


def _tests() -> str:
    body = "    client = make_client()\n    reply = client.get('/health')\n" * 3
    code = "".join(f"def test_health_{i}():\n{body}    assert reply.ok\n\n" for i in range(40))
    return "Here are the tests:\n\n```python\n" + code + "```\n\nAll similar on purpose.\n"


def _list() -> str:
    items = "".join("- check that the service answers with a 200 status code quickly\n"
                    for _ in range(30))  # fmt: skip
    return "Checklist:\n\n" + items + "\nThat is all.\n"


def _code_lines() -> str:
    return (
        "```\n" + "x = compute(a, b, c)  # the same statement, repeated on purpose\n" * 40 + "```\n"
    )


@pytest.mark.parametrize("text", [_table(), _tests(), _list(), _code_lines()],
                         ids=["table", "tests", "list", "code"])  # fmt: skip
@pytest.mark.parametrize("stream", [False, True])
async def test_legitimate_repetition_is_not_cut(
    nursery: trio.Nursery, sdk: Clients, text: str, stream: bool
) -> None:
    pieces = [text[i : i + 7] for i in range(0, len(text), 7)]
    fake = FakeUpstream(
        default=lambda request: (
            SSEReply([chat_stream(pieces)], pause=0) if stream else _json(chat_completion(text))
        )
    )
    base, ctx = await _start(nursery, fake, LOOPS)
    client = sdk.openai(base)
    messages: Any = [{"role": "user", "content": "hi"}]

    def ask() -> str | None:
        if not stream:
            reply = client.chat.completions.create(model=MODEL, messages=messages)
            return reply.choices[0].message.content
        with client.chat.completions.stream(model=MODEL, messages=messages) as events:
            return events.get_final_completion().choices[0].message.content

    got = await in_thread(ask)
    assert got == text
    assert ctx.metrics is not None and b"loop_detections_total" not in ctx.metrics.render()


async def test_the_header_turns_it_off(nursery: trio.Nursery) -> None:
    looping = PARAGRAPH * 8
    fake = FakeUpstream(default=lambda request: _json(chat_completion(looping)))
    base, _ = await _start(nursery, fake, LOOPS)
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(base_url=base) as client:
        off = await client.post("/v1/chat/completions", json=body,
                                headers={"x-louter-loop-detection": "off"})  # fmt: skip
        on = await client.post("/v1/chat/completions", json=body)
        bad = await client.post("/v1/chat/completions", json=body,
                                headers={"x-louter-loop-detection": "maybe"})  # fmt: skip
    assert off.json()["choices"][0]["message"]["content"] == looping
    assert on.json()["choices"][0]["message"]["content"] != looping
    assert bad.status_code == 400
    assert "x-louter-loop-detection" in bad.json()["error"]["message"]


async def test_enabled_false_is_idle_until_a_session_turns_it_on(nursery: trio.Nursery) -> None:
    """`enabled = false`: a looping answer passes whole; after
    `!/set(loop_detection_enabled=true)` the same answer in that session is cut (and
    `=false` in another session's config-on guard leaves it whole: the switch is per
    session)."""
    loop = [PARAGRAPH[i : i + 9] for i in range(0, len(PARAGRAPH), 9)] * 8
    events = [b"data: " + orjson.dumps(chat_chunk(piece)) + b"\n\n" for piece in loop]
    finish = b"data: " + orjson.dumps(chat_chunk(finish="stop")) + b"\n\ndata: [DONE]\n\n"
    fake = FakeUpstream(lambda recorded: SSEReply([*events, finish]))  # a chunk an event
    base, _ = await _start(nursery, fake, LOOPS + "enabled = false\n")

    async def ask(session: str, text: str) -> str:
        body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": text}]}
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            reply = await client.post(
                "/v1/chat/completions", json=body, headers={"x-session-id": session}
            )
        assert reply.status_code == 200, reply.text
        events = [line[6:] for line in reply.text.splitlines() if line.startswith("data: {")]
        chunks = [orjson.loads(e) for e in events]
        return "".join(
            c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]
        )

    assert (await ask("a", "hi")).count(PARAGRAPH) == 8  # idle: nothing cut
    said = await ask("a", "!/set(loop_detection_enabled=true)")
    assert "loop_detection_enabled" in said and "unknown" not in said, said
    cut = await ask("a", "hi")
    assert cut.count(PARAGRAPH) < 8 and len(fake.requests) == 2, cut  # the command: local
    assert (await ask("b", "hi")).count(PARAGRAPH) == 8  # another session: still idle


# --------------------------------------------------------------------------- tool loops


def _call(n: int, name: str = "read_file", args: str = '{"path": "a.txt"}') -> list[dict]:
    call = {"id": f"c{n}", "type": "function", "function": {"name": name, "arguments": args}}
    return [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": f"c{n}", "content": "hello"},
    ]


def _conversation(calls: int, name: str = "read_file") -> list[dict]:
    messages: list[dict] = [{"role": "user", "content": "read a.txt"}]
    for n in range(calls):  # the same call, with keys in another order every other time
        args = '{"path": "a.txt"}' if n % 2 else '{ "path" : "a.txt" }'
        messages += _call(n, name, args)
    return messages


TOOL_DECL = [{"type": "function", "function": {"name": "read_file", "parameters": {}}}]


async def _chat(base: str, messages: list[dict], stream: bool = False) -> httpx.Response:
    body = {"model": MODEL, "messages": messages, "tools": TOOL_DECL, "stream": stream}
    async with httpx.AsyncClient() as client:
        return await client.post(base + "/v1/chat/completions", json=body)


@pytest.mark.parametrize("stream", [False, True])
async def test_block_answers_locally(nursery: trio.Nursery, stream: bool, tmp_path: Path) -> None:
    fake = FakeUpstream(default=lambda request: _json(chat_completion("fine")))
    log = tmp_path / "log.jsonl"
    base, ctx = await _start(nursery, fake, TOOLS.format(mode="block"), log)
    assert (await _chat(base, _conversation(2))).status_code == 200  # two: not yet a loop
    reply = await _chat(base, _conversation(3), stream)
    assert len(fake.requests) == 1  # the third identical call never reached the backend
    assert reply.status_code == 200
    text = _text(reply, stream)
    assert "louter stopped this turn" in text and "read_file" in text and "3 times" in text
    entries = [orjson.loads(line) for line in log.read_bytes().splitlines()]
    found = [e for e in entries if e.get("type") == "loop_detected"]
    assert [(e["kind"], e["action"], e["count"]) for e in found] == [("tool_call", "block", 3)]
    assert ctx.metrics is not None
    metric = b'loop_detections_total{action="block",backend="up",kind="tool_call"} 1.0'
    assert metric in ctx.metrics.render()


def _text(reply: httpx.Response, stream: bool) -> str:
    if not stream:
        return reply.json()["choices"][0]["message"]["content"]
    events = [e[6:] for e in reply.text.split("\n\n") if e.startswith("data: ")]
    chunks = [orjson.loads(e) for e in events if e != "[DONE]"]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


async def test_warn_lets_it_through(nursery: trio.Nursery) -> None:
    fake = FakeUpstream(default=lambda request: _json(chat_completion("fine")))
    base, ctx = await _start(nursery, fake, TOOLS.format(mode="warn"))
    reply = await _chat(base, _conversation(3))
    assert reply.json()["choices"][0]["message"]["content"] == "fine"
    assert len(fake.requests) == 1
    assert fake.requests[0].json["messages"] == _conversation(3)  # unchanged
    assert ctx.metrics is not None
    assert b'action="warn",backend="up",kind="tool_call"} 1.0' in ctx.metrics.render()


async def test_chance_then_block(nursery: trio.Nursery) -> None:
    fake = FakeUpstream(default=lambda request: _json(chat_completion("fine")))
    base, ctx = await _start(nursery, fake, TOOLS.format(mode="chance_then_block"))
    first = await _chat(base, _conversation(3))  # the chance: steered, sent on
    assert first.json()["choices"][0]["message"]["content"] == "fine"
    sent = fake.requests[0].json["messages"]
    assert sent[-1]["role"] == "user" and "Do not call it again" in sent[-1]["content"]
    again = await _chat(base, _conversation(4))  # it called again anyway: blocked
    assert "louter stopped this turn" in again.json()["choices"][0]["message"]["content"]
    assert len(fake.requests) == 1
    assert ctx.metrics is not None
    rendered = ctx.metrics.render()
    assert b'action="steer",backend="up",kind="tool_call"} 1.0' in rendered
    assert b'action="block",backend="up",kind="tool_call"} 1.0' in rendered


async def test_exempt_tools_and_the_header(nursery: trio.Nursery) -> None:
    fake = FakeUpstream(default=lambda request: _json(chat_completion("fine")))
    base, _ = await _start(nursery, fake, TOOLS.format(mode="block"))
    exempt = await _chat(base, _conversation(5, name="wait"))
    assert exempt.json()["choices"][0]["message"]["content"] == "fine"
    body = {"model": MODEL, "messages": _conversation(3), "tools": TOOL_DECL}
    async with httpx.AsyncClient() as client:
        off = await client.post(base + "/v1/chat/completions", json=body,
                                headers={"x-louter-loop-detection": "off"})  # fmt: skip
    assert off.json()["choices"][0]["message"]["content"] == "fine"
    assert len(fake.requests) == 2


async def test_block_in_the_anthropic_door(nursery: trio.Nursery, sdk: Clients) -> None:
    """Claude Code's shape: tool_use / tool_result blocks, the block as a normal answer."""
    fake = FakeUpstream(default=lambda request: _json(chat_completion("fine")))
    base, _ = await _start(nursery, fake, TOOLS.format(mode="block"))
    messages: list[Any] = [{"role": "user", "content": "read a.txt"}]
    for n in range(3):
        use = {"type": "tool_use", "id": f"t{n}", "name": "read_file", "input": {"path": "a"}}
        messages.append({"role": "assistant", "content": [use]})
        result = {"type": "tool_result", "tool_use_id": f"t{n}", "content": "hello"}
        messages.append({"role": "user", "content": [result]})
    tools: Any = [{"name": "read_file", "input_schema": {"type": "object"}}]
    reply = await in_thread(
        lambda: sdk.anthropic(base).messages.create(
            model=MODEL, max_tokens=64, messages=messages, tools=tools
        )
    )
    assert reply.stop_reason == "end_turn"
    assert "louter stopped this turn" in reply.content[0].text  # type: ignore[union-attr]
    assert fake.requests == []


async def test_log_parser_stats_counts_the_detections(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    """A real log (a text loop cut, a tool loop blocked, one warned) read by `log-parser
    stats`, as JSON and as tables."""
    looping = PARAGRAPH * 8
    fake = FakeUpstream(default=lambda request: _json(chat_completion(looping)))
    log = tmp_path / "log.jsonl"
    base, _ = await _start(nursery, fake, LOOPS + TOOLS.format(mode="block"), log)
    await _chat(base, [{"role": "user", "content": "hi"}])  # text loop: cut
    await _chat(base, _conversation(3))  # tool loop: blocked
    result = await trio.to_thread.run_sync(
        lambda: CliRunner().invoke(log_parser_app, ["-f", str(log), "stats"])
    )
    assert result.exit_code == 0, result.output
    [stats] = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert stats["loops"] == {
        "total": 2,
        "by_kind": {"text": 1, "tool_call": 1},
        "by_action": {"block": 1, "cut": 1},
    }
    assert stats["errors"]["by_type"] == {"loop_detected": 2}
    pretty = await trio.to_thread.run_sync(
        lambda: CliRunner().invoke(log_parser_app, ["-f", str(log), "--pretty", "stats"])
    )
    assert "loops detected (2)" in pretty.stdout and "action block" in pretty.stdout


def test_a_stream_is_not_cut_inside_a_tool_call() -> None:
    """A loop found while a call's arguments stream ends the answer only after the call."""
    from louter.convert.loops import LoopSettings
    from louter.convert.model import TextDelta, ToolCallDelta, ToolCallEnd, ToolCallStart
    from louter.proxy.loop_guard import TextLoopObserver

    seen: list[str] = []

    def report(call: Any, kind: str, pattern: str, count: int, action: str) -> None:
        seen.append(action)

    observer = TextLoopObserver(LoopSettings(), "{count}", None, report)  # type: ignore[arg-type]
    assert observer.event(ToolCallStart(0, "c", "write_file"))
    assert observer.event(TextDelta(PARAGRAPH * 4))  # found, but a call is open
    assert observer.event(ToolCallDelta(0, '{"text": "'))
    assert not observer.event(ToolCallEnd(0))  # the call is whole: now it ends
    assert seen == ["cut"]
