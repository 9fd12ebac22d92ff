"""The dialect table and the one reading path every answer takes.

`WIRES` holds each dialect's probe wire (its writer and readers), by name: the `WIRE` of
the dialect package's `probe` module (`louter/convert/<name>/probe.py`), which nothing but
the probes imports (the proxy never loads them).
`read` turns a raw HTTP answer into `Seen`: an error status is read as the dialect's
error envelope, a stream is audited for its grammar and then also assembled by louter's
own conversion core (`louter.convert`'s StreamParser and StreamCollector): the text and
calls the audit found must equal that assembled result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from louter.convert.collect import StreamCollector, log_view
from louter.convert.dialect import DIALECTS
from louter.convert.model import Text, ToolCall
from louter.convert.probe.fields import compact, load_json, short
from louter.convert.probe.model import COUNT, INVALID, Answer, Ask, Seen, Wire
from louter.convert.sse import SSEEvent
from louter.errors import ConversionError


def _wire(dialect: str) -> Wire:
    wire: Wire = import_module(f"louter.convert.{dialect}.probe").WIRE
    return wire


WIRES: Mapping[str, Wire] = {name: _wire(name) for name in DIALECTS}


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer as received: the whole body, or the SSE events of a stream."""

    status: int
    content_type: str
    body: bytes = b""
    events: tuple[SSEEvent, ...] | None = None  # set when the answer was an event stream


def read(wire: Wire, ask: Ask, reply: Reply) -> Seen:
    """What `reply` says, and what is wrong with it as an answer to `ask`."""
    if reply.events is not None and reply.status == 200:
        return _read_stream(wire, ask, reply.events)
    body, problem = load_json(reply.body)
    if problem is not None:
        return Seen(
            reply.status, problems=(f"HTTP {reply.status}, body {problem}",), log=_text(reply)
        )
    if ask.kind == INVALID or reply.status != 200:
        return _read_error(wire, ask, reply.status, body)
    if ask.stream:
        return Seen(
            200, problems=(f"a stream was asked for, got {reply.content_type!r}",), log=body
        )
    answer, problems = (wire.read_count if ask.kind == COUNT else wire.read_answer)(body)
    return Seen(200, answer, tuple(problems), log=body)


def _text(reply: Reply) -> str:
    return reply.body.decode("utf-8", "replace")


def _read_error(wire: Wire, ask: Ask, status: int, body: Any) -> Seen:
    if 200 <= status < 300:
        return Seen(status, problems=(f"HTTP {status}: the bad request was accepted",), log=body)
    answer, problems = wire.read_error(status, body)
    if ask.kind != INVALID:  # an error where an answer was expected
        problems = [f"HTTP {status}: {short(answer.error or '(no message)')}", *problems]
    return Seen(status, answer, tuple(problems), log=body)


def _read_stream(wire: Wire, ask: Ask, events: Sequence[SSEEvent]) -> Seen:
    answer, problems = wire.audit_stream(events)
    collector, failure = assemble(wire.name, events)
    if not ask.stream:
        problems.insert(0, "an event stream came back where one JSON answer was asked for")
    if failure is not None and not problems:
        problems.append(f"louter's {wire.name} stream parser rejects it: {failure}")
    problems += _mismatches(answer, collector)
    view = log_view(collector.result())
    view.update(done=collector.done, error=collector.error.message if collector.error else None)
    return Seen(200, answer, tuple(problems), stream=True, chunks=len(events), log=view)


def assemble(dialect: str, events: Sequence[SSEEvent]) -> tuple[StreamCollector, str | None]:
    """The stream as louter's own parser assembles it, and why it gave up, if it did."""
    parser = DIALECTS[dialect].stream_parser(lambda n: f"call_{n}")
    collector = StreamCollector()
    try:
        for event in events:
            for neutral in parser.feed(event):
                collector.feed(neutral)
        for neutral in parser.flush():
            collector.feed(neutral)
    except ConversionError as exc:
        return collector, exc.message
    return collector, collector.error.message if collector.error else None


def _call_key(name: str, arguments: str) -> tuple[str, str]:
    """A call by name and arguments (parsed when they parse): calls are compared as a set,
    since louter numbers them in the order their names arrive."""
    value, problem = load_json(arguments or "{}")
    return name, arguments if problem is not None else compact(value)


def _mismatches(answer: Answer, collector: StreamCollector) -> list[str]:
    response = collector.result()
    text = "".join(p.text for p in response.parts if isinstance(p, Text))
    calls = sorted(
        _call_key(p.name, p.arguments) for p in response.parts if isinstance(p, ToolCall)
    )
    seen = sorted(_call_key(c.name, c.arguments) for c in answer.calls)
    problems = []
    if text != answer.text:
        problems.append(f"the streamed text {short(answer.text, 60)!r} differs from the "
                        f"assembled result {short(text, 60)!r}")  # fmt: skip
    if calls != seen:
        problems.append("the streamed tool calls differ from the assembled result")
    return problems
