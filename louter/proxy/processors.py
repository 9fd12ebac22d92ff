"""Request processors (`[[processors]]`, `louter/processor_config.py`) as one pipeline
stage, applied in config order to the neutral request, so they act the same in every
dialect and on passthrough traffic:

    system_prompt   inject, prepend, append or replace the system prompt
    validate        allowed models, a max_tokens cap (reject or clamp), max_messages,
                    max_input_tokens (louter's estimate): 400 naming the rule and limit
    override        set or remove sampling fields, max_tokens, stop, reasoning effort/budget
    redact          regexes in the chosen roles' text replaced (a count in the log)
    block           reject when a regex matches, with the processor's message

Cost: the request is parsed only when some processor's cheap conditions (model, key,
dialect, backend) hold, and replaced (`call.replace`: then sent written from the neutral
model) only when a processor changed it; an unchanged request still passes through as
bytes. That is why the stage does not declare `needs_request`, which would take every
answer through the neutral model.

`when.backend` needs the backend, which routing picks after the pipeline: processors
from the first backend-conditioned one on run per candidate backend (`call.per_route`),
so a failover backend gets the request as processed for it. Token counts get
system_prompt, override and redact (their counts match what is sent); validate and
block do not apply to them.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from louter.convert.model import Message, Part, Request, Text, ToolResult
from louter.convert.tokens import estimate_tokens
from louter.errors import LouterError
from louter.processor_config import (
    Action,
    Block,
    Override,
    Processor,
    Redact,
    SystemPrompt,
    Validate,
    When,
)
from louter.proxy.pipeline import Call, Stage

if TYPE_CHECKING:
    from louter.convert.model import Response
    from louter.proxy.routing import Route, Router

NOT_FOR_COUNTS = ("validate", "block")
Notes = list[dict[str, Any]]  # what applied, for the journal


class Rejected(LouterError):
    status_hint = 400


# --------------------------------------------------------------------------- conditions


def _cheap(when: When, call: Call, backend: str | None) -> bool:
    """The conditions that need no parsed request (`backend` None: not known yet)."""
    if when.models and not any(fnmatch.fnmatchcase(call.model, g) for g in when.models):
        return False
    if when.dialects and call.dialect not in when.dialects:
        return False
    if when.keys:
        key = call.exchange.key
        if key is None or key.name not in when.keys:
            return False
    return not when.backends or backend in when.backends


def _first_turn(request: Request) -> bool:
    return not any(m.role in ("assistant", "tool") for m in request.messages)


# --------------------------------------------------------------------------- actions


def _system_prompt(rule: SystemPrompt, request: Request, notes: Notes) -> Request:
    messages = list(request.messages)
    systems = [i for i, m in enumerate(messages) if m.role == "system"]
    new = Message("system", (Text(rule.text),))
    if rule.mode == "if_missing" and systems:
        return request
    if rule.mode == "replace":
        messages = [m for m in messages if m.role != "system"]
        messages.insert(0, new)
    elif not systems:
        messages.insert(0, new)
    else:
        at = systems[0]
        messages[at] = _joined(messages[at], rule.text, rule.mode == "prepend")
    return dataclasses.replace(request, messages=tuple(messages))


def _joined(message: Message, text: str, before: bool) -> Message:
    """`message` with `text` before or after its own, a blank line between."""
    if all(isinstance(p, Text) for p in message.parts):
        own = message.text()
        joined = f"{text}\n\n{own}" if before else f"{own}\n\n{text}"
        return Message(message.role, (Text(joined),))
    added = Text(text)
    return Message(message.role, (added, *message.parts) if before else (*message.parts, added))


def _validate(rule: Validate, request: Request, notes: Notes, call: Call) -> Request:
    if rule.allowed_models and not any(
        fnmatch.fnmatchcase(call.model, glob) for glob in rule.allowed_models
    ):
        allowed = ", ".join(rule.allowed_models)
        raise _reject(f"model {call.model!r} is not allowed (allowed_models: {allowed})")
    if rule.max_messages is not None:
        count = sum(1 for m in request.messages if m.role != "system")
        if count > rule.max_messages:
            raise _reject(f"{count} messages exceed the limit max_messages = {rule.max_messages}")
    if rule.max_input_tokens is not None:
        tokens = estimate_tokens(request)
        if tokens > rule.max_input_tokens:
            limit = rule.max_input_tokens
            raise _reject(
                f"the input is about {tokens} tokens, above the limit max_input_tokens = {limit}"
            )
    cap = rule.max_tokens
    if cap is None or (request.max_tokens is not None and request.max_tokens <= cap):
        return request
    if request.max_tokens is not None and rule.on_exceed == "reject":
        raise _reject(f"max_tokens = {request.max_tokens} exceeds the limit max_tokens = {cap}")
    notes[-1]["max_tokens"] = cap  # clamped, or set where the client gave none
    return dataclasses.replace(request, max_tokens=cap)


def _reject(message: str) -> Rejected:
    return Rejected(f"request rejected by louter's validation: {message}", code="invalid_request")


_EMPTY: dict[str, Any] = {"stop": ()}  # a removed field's value (others: None)


def _override(rule: Override, request: Request, notes: Notes) -> Request:
    changes = dict(rule.set)
    if "reasoning_effort" in changes:  # the operator's: sent to every backend that has it
        changes["effort_source"] = "operator"
    changes.update({name: _EMPTY.get(name) for name in rule.remove})
    if all(getattr(request, name) == value for name, value in changes.items()):
        return request
    return dataclasses.replace(request, **changes)


def _texts(request: Request, roles: Sequence[str], change: Callable[[str], str | None]) -> Request:
    """`request` with `change` applied to the text of messages of `roles` (tool results'
    text too); `change` returns None for a text it leaves alone."""
    messages = list(request.messages)
    touched = False
    for at, message in enumerate(messages):
        if message.role not in roles:
            continue
        parts = [_part(part, change) for part in message.parts]
        if any(new is not None for new in parts):
            touched = True
            kept = tuple(new or old for new, old in zip(parts, message.parts, strict=True))
            messages[at] = Message(message.role, kept)
    return dataclasses.replace(request, messages=tuple(messages)) if touched else request


def _part(part: Part, change: Callable[[str], str | None]) -> Part | None:
    if isinstance(part, Text):
        text = change(part.text)
        return None if text is None else Text(text, part.signature)
    if isinstance(part, ToolResult):
        content = [
            Text(t) if isinstance(c, Text) and (t := change(c.text)) is not None else None
            for c in part.content
        ]
        if all(c is None for c in content):
            return None
        kept = tuple(new or old for new, old in zip(content, part.content, strict=True))
        return dataclasses.replace(part, content=kept)
    return None


def _redact(rule: Redact, request: Request, notes: Notes) -> Request:
    replacement = rule.replacement.replace("\\", "\\\\")  # literal: no group references
    count = 0

    def change(text: str) -> str | None:
        nonlocal count
        before = count
        for pattern in rule.patterns:
            text, found = pattern.subn(replacement, text)
            count += found
        return text if count > before else None

    request = _texts(request, rule.roles, change)
    notes[-1]["redactions"] = count  # how many, never what
    return request


def _block(rule: Block, request: Request, notes: Notes) -> Request:
    def check(text: str) -> None:
        if any(pattern.search(text) for pattern in rule.patterns):
            raise LouterError(rule.message, status_hint=rule.status, code="request_blocked")

    _texts(request, rule.roles, check)
    return request


def _apply(processor: Processor, request: Request, notes: Notes, call: Call) -> Request:
    notes.append({"processor": processor.index, "kind": processor.kind})
    action: Action = processor.action
    if isinstance(action, Validate):
        return _validate(action, request, notes, call)
    return ACTIONS[type(action)](action, request, notes)


ACTIONS: dict[type, Callable[[Any, Request, Notes], Request]] = {
    SystemPrompt: _system_prompt,
    Override: _override,
    Redact: _redact,
    Block: _block,
}


# --------------------------------------------------------------------------- the stage


class Processors(Stage):
    """Every `[[processors]]` table, in order."""

    def __init__(self, processors: Sequence[Processor], router: Router) -> None:
        split = next((i for i, p in enumerate(processors) if p.when.backends), len(processors))
        self._early = tuple(processors[:split])  # decided before routing
        self._late = tuple(processors[split:])  # from the first `when.backend` on: per backend
        self._router = router

    async def on_request(self, call: Call) -> Response | None:
        notes: Notes = []
        request = _run(self._early, call, None, None, notes)
        if request is not None:
            call.replace(request)
        if self._late and call.kind == "count":  # counted for the first candidate
            backend = call.candidates(self._router)[0].backend.name
            request = _run(self._late, call, backend, None, notes)
            if request is not None:
                call.replace(request)
        elif self._late:
            call.per_route = _PerRoute(self._late, call)
        if notes:
            call.exchange.log("processor", applied=notes)
        return None


def _run(
    processors: Sequence[Processor],
    call: Call,
    backend: str | None,
    request: Request | None,
    notes: Notes,
) -> Request | None:
    """`processors` whose conditions hold, applied to `request` (None: `call.request`,
    parsed only if some processor applies); the changed request, or None if unchanged."""
    original = request
    for processor in processors:
        if call.kind == "count" and processor.kind in NOT_FOR_COUNTS:
            continue
        if not _cheap(processor.when, call, backend):
            continue
        current = request if request is not None else call.request
        first_turn = processor.when.first_turn
        if first_turn is not None and _first_turn(current) != first_turn:
            continue
        request = _apply(processor, current, notes, call)
    if request is None or request is (original or call.request):
        return None
    return request


class _PerRoute:
    """The backend-conditioned processors of one call, run once per candidate backend."""

    __slots__ = ("_processors", "_call", "_done")

    def __init__(self, processors: Sequence[Processor], call: Call) -> None:
        self._processors = processors
        self._call = call
        self._done: dict[str, Request] = {}

    def __call__(self, request: Request, route: Route) -> Request:
        name = route.backend.name
        found = self._done.get(name)
        if found is None:
            notes: Notes = []
            found = _run(self._processors, self._call, name, request, notes) or request
            if notes:
                self._call.exchange.log("processor", applied=notes, backend=name)
            self._done[name] = found
        return found


def build_processors(processors: Sequence[Processor], router: Router) -> list[Stage]:
    """The processors stage (`stages.processor_stages` asks for it when some are
    configured)."""
    return [Processors(processors, router)]
