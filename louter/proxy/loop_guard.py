"""The loop guards (design §12): two pipeline stages, built only when configured.

- `TextLoopGuard` (`[loop_detection]`) watches the assistant text of every answer, whole
  or streamed (`louter.convert.loops`). On a loop it ends the answer cleanly: the text so
  far, a closing note, the dialect's normal finish and usage; the upstream request is
  cancelled. A stream is never cut inside a tool call. Its observers read only the text
  (`watches_text`): an OpenAI stream keeps passing through as bytes (`proxy/watch.py`).
- `ToolLoopGuard` (`[tool_call_loop]`) reads the conversation the agent resends
  (`louter.convert.tool_loops`) and, on a loop, warns (logs and counts, lets it through),
  blocks (a local answer telling the agent it is looping; no backend call), or with
  `chance_then_block` first adds a steering note and lets the model try once more,
  blocking when the conversation shows the call repeated again.

Each detection is an `error` journal entry with `type: "loop_detected"` (kind, pattern,
count, action) and a `loop_detections_total{kind,backend,action}` count.

What applies to one request comes from one function, `switches`: the config, then the
session's values (`session_values`, the hook for `!/set` keys), then the request header
`x-louter-loop-detection: off|on`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from louter.config import Config, LoopDetection, ToolCallLoop
from louter.convert.loops import Loop, LoopDetector, LoopSettings, find_loop
from louter.convert.model import (
    Message,
    Part,
    Response,
    StreamEvent,
    Text,
    TextDelta,
    ToolCall,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageUpdate,
)
from louter.convert.tokens import estimate_text
from louter.convert.tool_loops import ToolLoop, find_tool_loop
from louter.errors import ConversionError
from louter.proxy.metrics import Metrics
from louter.proxy.pipeline import Call, Stage

HEADER = "x-louter-loop-detection"
_HEADER_VALUES = {"off": False, "on": True}
NO_SESSION: Mapping[str, Any] = MappingProxyType({})
BLOCK_MESSAGE = (
    "louter stopped this turn: the tool call {call} was made {count} times in a row with "
    "the same arguments (a tool-call loop). Calling it again will not give a different "
    "result; try another approach, or ask the user how to continue."
)
STEERING_NOTE = (
    "[louter] You have called {call} {count} times with the same arguments and got the "
    "same kind of result. Do not call it again with these arguments: change approach, or "
    "answer with what you know."
)
Route = Callable[[str], str]  # client model -> the backend name it routes to


@dataclass(frozen=True, slots=True)
class Switches:
    """The loop guards' settings for one request."""

    text: bool
    tools: bool
    tool_max_repeats: int
    tool_mode: str


def session_values(call: Call) -> Mapping[str, Any]:
    """The `!/set` values of the call's session (`loop_detection_enabled`,
    `tool_loop_detection_enabled`, `tool_loop_max_repeats`, `tool_loop_mode`: declared in
    `louter/convert/commands/keys.py`); the session stage runs before the guards."""
    session = call.session
    return NO_SESSION if session is None else session.settings


def configured(config: Config) -> Switches:
    """What the config alone says."""
    text, tools = config.loop_detection, config.tool_call_loop
    return Switches(
        text=text is not None and text.enabled,
        tools=tools is not None and tools.enabled,
        tool_max_repeats=tools.max_repeats if tools else 3,
        tool_mode=tools.mode if tools else "block",
    )


def switches(base: Switches, call: Call, session: Mapping[str, Any] = NO_SESSION) -> Switches:
    """`base` (the config's), then the session's values, then the request's header (`off`
    turns both guards off for this request; `on` keeps what config and session say). A
    header value other than off/on is refused (400, in the client's envelope)."""
    found = base
    if session:
        found = Switches(
            text=bool(session.get("loop_detection_enabled", base.text)),
            tools=bool(session.get("tool_loop_detection_enabled", base.tools)),
            tool_max_repeats=int(session.get("tool_loop_max_repeats", base.tool_max_repeats)),
            tool_mode=str(session.get("tool_loop_mode", base.tool_mode)),
        )
    header = call.http.headers.get(HEADER)
    if header is None:
        return found
    wanted = _HEADER_VALUES.get(header.strip().lower())
    if wanted is None:
        raise ConversionError(f"{HEADER} must be 'off' or 'on', got {header[:40]!r}")
    return found if wanted else dataclasses.replace(found, text=False, tools=False)


class Reporter:
    """Journal entry and metric for one detection."""

    def __init__(self, metrics: Metrics | None, route: Route) -> None:
        self._metrics = metrics
        self._route = route

    def __call__(self, call: Call, kind: str, pattern: str, count: int, action: str) -> None:
        exchange = call.exchange
        backend = exchange.backend or self._route(call.model)
        message = f"{kind} loop detected ({count} repeats of {pattern!r}): {action}"
        exchange.log(
            "error",
            status=200,
            error=message,
            error_type="loop_detected",
            type="loop_detected",
            kind=kind,
            pattern=pattern,
            count=count,
            action=action,
        )
        if self._metrics is not None:
            self._metrics.loop_detected(kind, backend, action)


# --------------------------------------------------------------------------- text loops


class TextLoopGuard(Stage):
    needs_events = True
    watches_text = True

    def __init__(self, config: Config, report: Reporter) -> None:
        section = config.loop_detection
        assert section is not None
        self._base = configured(config)
        self._section = section
        self._settings = settings_of(section)
        self._report = report

    def observe(self, call: Call) -> TextLoopObserver | None:
        if call.kind != "generate" or not switches(self._base, call, session_values(call)).text:
            return None
        return TextLoopObserver(self._settings, self._section.closing_note, call, self._report)


def settings_of(section: LoopDetection) -> LoopSettings:
    return LoopSettings(
        min_length=section.min_pattern_length,
        max_length=section.max_pattern_length,
        repetitions=section.min_repetitions,
        ignore_markup=section.ignore_markup,
    )


class TextLoopObserver:
    """One answer: a detector over its text; ends a stream on a loop (outside tool
    calls), with the note and usage as `closing`."""

    __slots__ = ("_detector", "_settings", "_note", "_call", "_report", "_open", "_chars",
                 "_found", "_cut")  # fmt: skip

    def __init__(self, settings: LoopSettings, note: str, call: Call, report: Reporter) -> None:
        self._detector: LoopDetector | None = None  # made at the first text
        self._settings = settings
        self._note = note
        self._call = call
        self._report = report
        self._open = 0  # tool calls started and not ended
        self._chars = 0  # text characters seen (the output estimate)
        self._found: Loop | None = None
        self._cut = False  # the stream was ended here (reported once, when it is)

    def event(self, event: StreamEvent) -> bool:
        kind = type(event)
        if kind is TextDelta:
            text: str = event.text  # type: ignore[union-attr]
            self._chars += len(text)
            if self._found is None:
                detector = self._detector
                if detector is None:
                    detector = self._detector = LoopDetector(self._settings)
                self._found = detector.feed(text)
        elif kind is ToolCallStart:
            self._open += 1
        elif kind is ToolCallEnd:
            self._open = max(0, self._open - 1)
        found = self._found
        if found is None or self._open > 0:
            return True  # (a loop found inside a tool call ends the stream after it)
        if not self._cut:
            self._cut = True
            self._report(self._call, "text", found.excerpt(), found.count, "cut")
        return False

    def closing(self) -> Sequence[StreamEvent]:
        if self._found is None:
            return ()
        usage = Usage(self._call.lazy.estimate(), -(-self._chars // 4))  # 4 characters a token
        return (TextDelta("\n\n" + self.note(self._found)), UsageUpdate(usage))

    def note(self, loop: Loop) -> str:
        return self._note.format(pattern=loop.excerpt(), count=loop.count)

    def whole(self, response: Response) -> Response:
        found = find_loop(response.text(), self._settings)
        if found is None:
            return response
        loop, keep = found
        self._report(self._call, "text", loop.excerpt(), loop.count, "cut")
        parts = _cut_text(response.parts, keep) + (Text("\n\n" + self.note(loop)),)
        calls = any(isinstance(p, ToolCall) for p in parts)
        finish = response.finish_reason if calls else "stop"
        return dataclasses.replace(response, parts=parts, finish_reason=finish)


def _cut_text(parts: Sequence[Part], keep: int) -> tuple[Part, ...]:
    """The parts with their text cut after `keep` characters (other parts kept)."""
    out: list[Part] = []
    for part in parts:
        if isinstance(part, Text):
            if keep <= 0:
                continue
            part = Text(part.text[:keep]) if len(part.text) > keep else part
            keep -= len(part.text)
        out.append(part)
    return tuple(out)


# --------------------------------------------------------------------------- tool loops


class ToolLoopGuard(Stage):
    # Reads `call.request` (parsed on first use) but does not declare `needs_request`:
    # an unchanged request still passes through as bytes (a steer note rewrites it)

    def __init__(self, config: Config, report: Reporter) -> None:
        section = config.tool_call_loop
        assert section is not None
        self._base = configured(config)
        self._section: ToolCallLoop = section
        self._report = report

    async def on_request(self, call: Call) -> Response | None:
        if call.kind != "generate":
            return None
        switched = switches(self._base, call, session_values(call))
        if not switched.tools:
            return None
        request = call.request
        limit = switched.tool_max_repeats
        loop = find_tool_loop(
            request.messages,
            limit,
            self._section.exempt_tools,
            ttl_seconds=self._section.ttl_seconds,
        )
        if loop is None:
            return None
        action = _ACTIONS[switched.tool_mode](loop, limit)
        self._report(call, "tool_call", loop.excerpt(), loop.repeats, action)
        if action == "steer":
            steer = STEERING_NOTE.format(call=loop.excerpt(), count=loop.repeats)
            note = Message("user", (Text(steer),))
            call.replace(dataclasses.replace(request, messages=(*request.messages, note)))
        if action != "block":
            return None
        text = BLOCK_MESSAGE.format(call=loop.excerpt(), count=loop.repeats)
        usage = Usage(call.lazy.estimate(), estimate_text(text))
        return Response(id="", model=call.model, parts=(Text(text),), usage=usage)


def _chance(loop: ToolLoop, limit: int) -> str:
    """One steered try when the loop is first seen; blocked once it went on anyway."""
    return "steer" if loop.repeats <= limit else "block"


_ACTIONS: dict[str, Callable[[ToolLoop, int], str]] = {
    "warn": lambda loop, limit: "warn",
    "block": lambda loop, limit: "block",
    "chance_then_block": _chance,
}


def build_loop_guards(config: Config, metrics: Metrics | None, route: Route) -> list[Stage]:
    """The guards whose table is configured (none: none, no cost). A table with
    `enabled = false` still adds its guard, idle until a session turns it on
    (`!/set(loop_detection_enabled=true)`): what it costs then is one settings check."""
    report = Reporter(metrics, route)
    stages: list[Stage] = []
    if config.tool_call_loop is not None:
        stages.append(ToolLoopGuard(config, report))
    if config.loop_detection is not None:
        stages.append(TextLoopGuard(config, report))
    return stages
