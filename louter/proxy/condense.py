"""`POST /api/condense {"messages", "max_tokens"}` -> `{"summary", "usage", "model"}`.

The conversation is written out as a transcript and summarised by the `[condense]
model = "backend:model"`: a neutral request sent through the normal attempt machinery
(the pipeline's request hooks, the backend's dialect, its breaker, retries and the
journal), answered to a capture in OpenAI's form and reshaped. Errors are in the OpenAI
envelope: 404 without `[condense]`, 400 for a bad body, the backend's own status when
it fails.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from louter.convert.dialect import DIALECTS
from louter.errors import ConversionError, LouterError
from louter.http.message import HttpRequest, Responder
from louter.proxy.attempts import run
from louter.proxy.bridge import conversation
from louter.proxy.context import ProxyContext
from louter.proxy.door import parse_body
from louter.proxy.doors import DOORS
from louter.proxy.exchange import Exchange
from louter.proxy.pipeline import Call
from louter.proxy.routing import Route
from louter.proxy.usage import LazyRequest

PROMPT = (
    "Summarise the conversation below so that it can be continued from the summary "
    "alone. Keep the user's goals, the decisions taken, facts, names, numbers, code "
    "identifiers and open questions; drop pleasantries and repetition. Write the summary "
    "only, without a preamble."
)
MAX_MESSAGES = 10_000
MAX_SUMMARY_TOKENS = 1_000_000


class _NoChannel:
    """The capture's channel: nothing is sent on it."""

    closed_by_peer = False
    hangup: Callable[[], None] | None = None
    stop: Callable[[str], None] | None = None

    async def send_all(self, data: bytes) -> None:
        raise LouterError("condense: the backend's answer was streamed (not expected)")

    def peer(self) -> str:
        return ""


class Captured(Responder):
    """A responder that keeps a whole answer instead of sending it."""

    __slots__ = ("body",)

    def __init__(self) -> None:
        super().__init__(_NoChannel(), True)
        self.body = b""

    async def send(self, status: int, headers: Any, body: bytes) -> None:
        self.status, self.body = status, body
        self.started = self.finished = True


def _text(content: Any) -> str:
    """A message's text: a string, or the text of its parts."""
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict)]
        return "\n".join(t for t in texts if isinstance(t, str))
    raise ConversionError("a message's 'content' must be a string, a list of parts or null")


def _calls(message: dict[str, Any]) -> str:
    calls = message.get("tool_calls")
    if not isinstance(calls, list):
        return ""
    named = [
        c["function"] for c in calls if isinstance(c, dict) and isinstance(c.get("function"), dict)
    ]
    shown = [f"\n[called {f.get('name')}({f.get('arguments', '')})]" for f in named]
    return "".join(shown)


def transcript(messages: Any) -> str:
    """`messages` (OpenAI's shape: role and content) as `role: text` paragraphs."""
    if not isinstance(messages, list) or not messages:
        raise ConversionError("'messages' must be a non-empty list of {role, content} objects")
    if len(messages) > MAX_MESSAGES:
        raise ConversionError(f"'messages' holds more than {MAX_MESSAGES} messages")
    lines = []
    for number, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise ConversionError(f"messages[{number}] must be an object with a string 'role'")
        lines.append(f"{message['role']}: {_text(message.get('content'))}{_calls(message)}")
    return "\n\n".join(lines)


def _max_tokens(body: dict[str, Any], default: int) -> int:
    value = body.get("max_tokens", default)
    if type(value) is not int or not 0 < value <= MAX_SUMMARY_TOKENS:
        raise ConversionError(f"'max_tokens' must be an integer from 1 to {MAX_SUMMARY_TOKENS}")
    return value


def _answer(captured: Captured, model: str) -> tuple[int, dict[str, Any]]:
    """The captured OpenAI answer reshaped (an error envelope is passed on as it is)."""
    answer = orjson.loads(captured.body)
    if captured.status != 200:
        return captured.status, answer
    choices = answer.get("choices") or [{}]
    summary = (choices[0].get("message") or {}).get("content")
    if not isinstance(summary, str) or not summary.strip():
        raise LouterError(f"condense: {model} answered without text", status_hint=502)
    usage = answer.get("usage") or {}
    keys = ("prompt_tokens", "completion_tokens", "total_tokens")
    counts = {k: usage.get(k) for k in keys}
    return 200, {"summary": summary.strip(), "usage": counts, "model": model}


async def condense(
    ctx: ProxyContext, exchange: Exchange, http: HttpRequest, responder: Responder
) -> None:
    settings = ctx.config.condense
    if settings is None:
        message = 'condensing is not configured (add [condense] model = "backend:model")'
        raise LouterError(message, status_hint=404)
    body = await parse_body(exchange, http)
    text = transcript(body.get("messages"))
    request_body = {
        "model": settings.model,
        "messages": [
            {"role": "system", "content": settings.prompt or PROMPT},
            {"role": "user", "content": text},
        ],
        "max_tokens": _max_tokens(body, settings.max_tokens),
    }
    exchange.model = settings.model
    parse = DIALECTS["openai"].parse_request
    lazy = LazyRequest(lambda: parse(request_body, model=settings.model, stream=False))
    call = Call("openai", http, request_body, settings.model, False, exchange, lazy)
    if ctx.pipeline.stages:  # limits, budgets and allow-lists apply as to any request
        exchange.call = call
        if await ctx.pipeline.before(call) is not None:
            raise LouterError("condense: a pipeline stage answered the request itself")
    route = Route(ctx.config.backend(settings.backend), settings.model)
    client = DOORS["openai"].client(ctx, call, lazy)
    captured = Captured()
    plan = lambda r: conversation(ctx, call.request, r, client)  # noqa: E731
    await run(ctx, exchange, captured, [route], plan, lazy.estimate)
    status, answer = _answer(captured, f"{settings.backend}:{settings.model}")
    await responder.send_json(status, answer)
