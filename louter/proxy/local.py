"""Local answers: a neutral `Response` made by louter itself (a pipeline stage: commands,
a blocked tool loop, a cached answer) sent in the client's dialect, whole or as a real
multi-event stream, journaled as a `client_response` marked `local` (no backend)."""

from __future__ import annotations

from louter.convert.collect import events_of, log_view
from louter.convert.model import Response, StreamEvent, TextDelta
from louter.http.message import Responder
from louter.proxy.bridge import ClientSide, emit_whole
from louter.proxy.exchange import Exchange


async def answer_locally(
    exchange: Exchange,
    client: ClientSide,
    answer: Response,
    stream: bool,
    responder: Responder,
) -> None:
    """Send `answer` to the client: its dialect's whole body, or its stream (the opening,
    one event per text piece, the finish), ended as that dialect ends a stream."""
    request_id = (b"x-louter-request-id", exchange.request_id.encode("ascii"))
    if not stream:
        body = emit_whole(client, answer)
        exchange.log("client_response", status=200, payload=body, local=True)
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
    exchange.log("client_response", status=200, payload=log_view(answer), stream=True, local=True)


def _pieces(events: list[StreamEvent]) -> list[StreamEvent]:
    """Text split into word-sized deltas: a stream of many events, as a model's is."""
    out: list[StreamEvent] = []
    for event in events:
        if isinstance(event, TextDelta) and " " in event.text:
            words = event.text.split(" ")
            out += [TextDelta(w if i == 0 else " " + w) for i, w in enumerate(words) if w or i]
            continue
        out.append(event)
    return out
