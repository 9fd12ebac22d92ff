"""Judging what a probe saw: content, not status codes. Pure functions over `Seen`.

Each `Expect.outcome` has one check (the `CHECKS` table):

- TEXT: a non-empty text answer, no tool call, finish `stop` or `length`.
- TOOL_CALL: at least one call; each names a declared tool and its arguments parse as a
  JSON object valid against that tool's schema; finish `tool_calls`.
- COUNTED: a token count greater than zero.
- REFUSED: a 4xx status carrying the dialect's error envelope with a message.

Wire problems (a malformed stream, an error status) always fail the probe. When the
backend is louter's mock the answers are known exactly (README "The mock backend") and
are compared too: `mock=True` says so, `mock=None` decides from the answer itself (the
mock's texts start with "Mock answer to", its generated string arguments with "mock-").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from louter.convert.probe.fields import load_json, short
from louter.convert.probe.model import LENGTH, STOP, TOOL_CALLS, Ask, Seen
from louter.probes.schema import violations

TEXT, TOOL_CALL, COUNTED, REFUSED = "text", "tool_call", "counted", "refused"
MOCK_PREFIX = "Mock answer to"


@dataclass(frozen=True, slots=True)
class Expect:
    outcome: str  # TEXT | TOOL_CALL | COUNTED | REFUSED
    mock_text: str | None = None  # the mock's exact answer
    mock_arguments: Mapping[str, Any] | None = None  # the mock's exact call arguments
    mock_count: int | None = None  # the mock's exact token count


@dataclass(frozen=True, slots=True)
class Verdict:
    problems: tuple[str, ...]
    detail: str  # what was seen, in one line

    @property
    def passed(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        """The first problem when it failed, what was seen when it passed."""
        return "; ".join(self.problems) if self.problems else self.detail


def judge(expect: Expect, ask: Ask, seen: Seen, mock: bool | None = None) -> Verdict:
    """Whether `seen` is a right answer to `ask`."""
    is_mock = looks_like_mock(seen) if mock is None else mock
    return CHECKS[expect.outcome](expect, ask, seen, is_mock)


def looks_like_mock(seen: Seen) -> bool:
    answer = seen.answer
    return answer.text.startswith(MOCK_PREFIX) or any('"mock-' in c.arguments for c in answer.calls)


def _failed(seen: Seen) -> Verdict | None:
    """An answer that is not one at all (an error status) is judged by that alone."""
    if seen.status == 200:
        return None
    return Verdict(seen.problems or (f"HTTP {seen.status}",), f"HTTP {seen.status}")


def check_text(expect: Expect, ask: Ask, seen: Seen, mock: bool) -> Verdict:
    failed = _failed(seen)
    if failed is not None:
        return failed
    answer = seen.answer
    problems = list(seen.problems)
    if answer.calls:
        problems.append(f"a tool call ({answer.calls[0].name}) where text was expected")
    if not answer.text.strip():
        problems.append("the answer has no text")
    allowed = (STOP,) if mock else (STOP, LENGTH)
    if answer.finish not in allowed:
        problems.append(f"finish reason {answer.finish!r}, expected {' or '.join(allowed)}")
    if mock and expect.mock_text is not None and answer.text != expect.mock_text:
        problems.append(f"the mock answers {expect.mock_text!r}, got {short(answer.text, 100)!r}")
    return Verdict(tuple(problems), repr(short(answer.text, 100)))


def _call_problems(name: str, arguments: str, ask: Ask) -> tuple[list[str], Any]:
    tools = {tool.name: tool for tool in ask.tools}
    if name not in tools:
        return [f"the call names {name!r}, which was not declared ({', '.join(tools)})"], None
    value, problem = load_json(arguments or "{}")
    if problem is not None:
        return [f"the arguments of {name} are {problem}: {short(arguments, 80)!r}"], None
    if not isinstance(value, dict):
        return [f"the arguments of {name} are not a JSON object"], value
    return violations(value, tools[name].parameters, f"{name} arguments"), value


def check_tool_call(expect: Expect, ask: Ask, seen: Seen, mock: bool) -> Verdict:
    failed = _failed(seen)
    if failed is not None:
        return failed
    answer = seen.answer
    problems = list(seen.problems)
    if not answer.calls:
        problems.append(f"no tool call (finish {answer.finish!r}, text {short(answer.text, 80)!r})")
    for call in answer.calls:
        call_problems, value = _call_problems(call.name, call.arguments, ask)
        problems += call_problems
        if mock and expect.mock_arguments is not None and value != expect.mock_arguments:
            problems.append(f"the mock calls with {dict(expect.mock_arguments)}, got {value}")
    if answer.calls and answer.finish != TOOL_CALLS:
        problems.append(f"finish reason {answer.finish!r}, expected tool_calls")
    detail = ", ".join(f"{c.name}({short(c.arguments, 80)})" for c in answer.calls)
    return Verdict(tuple(problems), detail or "no call")


def check_counted(expect: Expect, ask: Ask, seen: Seen, mock: bool) -> Verdict:
    failed = _failed(seen)
    if failed is not None:
        return failed
    problems = list(seen.problems)
    tokens = seen.answer.count
    if not tokens:
        problems.append(f"no token count above zero (got {tokens!r})")
    elif mock and expect.mock_count is not None and tokens != expect.mock_count:
        problems.append(f"the mock counts {expect.mock_count} tokens, got {tokens}")
    return Verdict(tuple(problems), f"{tokens} tokens")


def check_refused(expect: Expect, ask: Ask, seen: Seen, mock: bool) -> Verdict:
    problems = list(seen.problems)
    if seen.status >= 500:
        problems.append(f"HTTP {seen.status}: a server error for a bad request (4xx expected)")
    detail = f"HTTP {seen.status}: {short(seen.answer.error or '', 100)}"
    return Verdict(tuple(problems), detail)


CHECKS: Mapping[str, Callable[[Expect, Ask, Seen, bool], Verdict]] = {
    TEXT: check_text,
    TOOL_CALL: check_tool_call,
    COUNTED: check_counted,
    REFUSED: check_refused,
}
