"""Local answers: a neutral `Response` made by louter itself (a pipeline stage: commands,
a blocked tool loop, a cached answer) sent in the client's dialect, whole or as a real
multi-event stream, journaled as a `client_response` marked `local` (no backend)."""

from __future__ import annotations

from typing import Any

from louter.convert.collect import events_of, log_view
from louter.convert.model import ReasoningDelta, Response, StreamEvent, TextDelta
from louter.http.message import Responder
from louter.proxy.bridge import ClientSide, emit_whole
from louter.proxy.exchange import Exchange


async def answer_locally(
    exchange: Exchange,
    client: ClientSide,
    answer: Response,
    stream: bool,
    responder: Responder,
    marks: dict[str, Any] | None = None,
) -> None:
    """Send `answer` to the client: its dialect's whole body, or its stream (the opening,
    one event per text or reasoning piece, each tool call, the finish with the usage),
    ended as that dialect ends a stream. `marks` are added to the journal entry (a cached
    answer: `cached`, `cache_age`)."""
    request_id = (b"x-louter-request-id", exchange.request_id.encode("ascii"))
    marks = marks or {}
    if not stream:
        body = emit_whole(client, answer)
        exchange.log("client_response", status=200, payload=body, local=True, **marks)
        await responder.send_json(200, body, [request_id])
        return
    emitter = client.emitter()
    await responder.start(200, [*client.stream_headers, request_id])
    await responder.write(emitter.prelude())  # the opening (MessageStart; Anthropic's ping)
    for event in _pieces(events_of(answer)[1:]):
        data = emitter.feed(event)
        if data:
            await responder.write(data)
    await responder.write(emitter.flush())
    await responder.end()
    view = log_view(answer)
    exchange.log("client_response", status=200, payload=view, stream=True, local=True, **marks)


def _pieces(events: list[StreamEvent]) -> list[StreamEvent]:
    """Text and reasoning split into word-sized deltas: a stream of many events, as a
    model's is. A signature stays on the last piece of its run (it signs the whole run);
    opaque (redacted) reasoning stays whole."""
    out: list[StreamEvent] = []
    for event in events:
        if isinstance(event, TextDelta) and " " in event.text:
            words = _words(event.text)
            out += [TextDelta(w) for w in words[:-1]]
            out.append(TextDelta(words[-1], event.signature))
        elif isinstance(event, ReasoningDelta) and event.redacted is None and " " in event.text:
            words = _words(event.text)
            out += [ReasoningDelta(w) for w in words[:-1]]
            out.append(ReasoningDelta(words[-1], event.signature))
        else:
            out.append(event)
    return out


def _words(text: str) -> list[str]:
    """`text` in pieces that join back to it exactly, each word with its leading space."""
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words) if w or i]
