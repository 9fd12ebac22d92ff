"""Tool-call loops (`[tool_call_loop]`), judged from the conversation an agent resends.

Stateless: everything is read from the request itself, so it needs no shared state and
gives the same verdict on every louter instance.

- A *turn* is an assistant message with tool calls; its *signature* is its calls as
  (name, canonical arguments) pairs, in order. Arguments are canonical when parsed and
  written back with sorted keys, so `{"a":1,"b":2}` equals `{ "b": 2, "a": 1 }`. Calls to
  exempt tools are left out; a turn of exempt calls only breaks a run.
- `repeats` is how many turns in a row, counted back from the last one, have the last
  turn's signature (text between them does not matter; a different call does).
- Besides calls in a row, the same call getting the same result again and again is a
  loop too, even with other calls in between (A, B, A, B, A): `repeats` is then the
  number of times the last turn's call was answered with the same result.
- `timestamps` (seconds, one per message, None where unknown) limit both counts to
  turns within `ttl_seconds` of the last one; the five wire formats carry none today,
  so without them every turn counts.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import orjson

from louter.convert.model import Message, ToolCall, ToolResult

__all__ = ["ToolLoop", "canonical_arguments", "find_tool_loop"]

Signature = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ToolLoop:
    """The repeated call (the last turn's first one) and how many times it came."""

    name: str
    arguments: str  # canonical JSON
    repeats: int
    same_result: bool  # counted as the same call answered the same way (not in a row)

    def excerpt(self, size: int = 80) -> str:
        shown = f"{self.name}({self.arguments})"
        return shown if len(shown) <= size else shown[: size - 1] + "…"


def canonical_arguments(arguments: str) -> str:
    """Arguments JSON text with sorted keys and no spaces; text that is not JSON is
    returned stripped."""
    try:
        return orjson.dumps(orjson.loads(arguments or "{}"), option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONDecodeError:
        return arguments.strip()


def find_tool_loop(
    messages: Sequence[Message],
    max_repeats: int,
    exempt: Collection[str] = (),
    *,
    ttl_seconds: float | None = None,
    timestamps: Sequence[float | None] | None = None,
) -> ToolLoop | None:
    """The loop the conversation ends in (`repeats >= max_repeats`), or None."""
    turns = _turns(messages, exempt, ttl_seconds, timestamps)
    if not turns:
        return None
    last = turns[-1][0]
    if not last:
        return None
    in_row = 0
    for signature, _ in reversed(turns):
        if signature != last:
            break
        in_row += 1
    name, arguments = last[0]
    if in_row >= max_repeats:
        return ToolLoop(name, arguments, in_row, False)
    same = _same_results(turns, last[0])
    return ToolLoop(name, arguments, same, True) if same >= max_repeats else None


Turn = tuple[Signature, tuple[str | None, ...]]  # calls, and each call's result text


def _turns(
    messages: Sequence[Message],
    exempt: Collection[str],
    ttl_seconds: float | None,
    timestamps: Sequence[float | None] | None,
) -> list[Turn]:
    results = _results(messages)
    latest = _latest(timestamps)
    turns: list[Turn] = []
    for position, message in enumerate(messages):
        if message.role != "assistant":
            continue
        calls = [p for p in message.parts if isinstance(p, ToolCall) and p.name not in exempt]
        if not calls and not any(isinstance(p, ToolCall) for p in message.parts):
            continue  # plain text between calls: does not break a run
        if _expired(position, timestamps, latest, ttl_seconds):
            continue
        signature = tuple((c.name, canonical_arguments(c.arguments)) for c in calls)
        turns.append((signature, tuple(results.get(c.id) for c in calls)))
    return turns


def _results(messages: Sequence[Message]) -> dict[str, str]:
    return {
        part.call_id: part.text()
        for message in messages
        for part in message.parts
        if isinstance(part, ToolResult) and part.call_id
    }


def _same_results(turns: list[Turn], call: tuple[str, str]) -> int:
    """How many times `call` got the result it got last (0 when it has none yet)."""
    answered = [
        result
        for signature, results in turns
        for made, result in zip(signature, results, strict=True)
        if made == call and result is not None
    ]
    if not answered:
        return 0
    return answered.count(answered[-1])


def _latest(timestamps: Sequence[float | None] | None) -> float | None:
    known = [t for t in timestamps or () if t is not None]
    return max(known) if known else None


def _expired(
    position: int,
    timestamps: Sequence[float | None] | None,
    latest: float | None,
    ttl_seconds: float | None,
) -> bool:
    if ttl_seconds is None or latest is None or timestamps is None:
        return False
    stamp = timestamps[position] if position < len(timestamps) else None
    return stamp is not None and latest - stamp > ttl_seconds
