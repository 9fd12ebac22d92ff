"""The request pipeline (design §12): an ordered list of stages, built once at start-up
(`build_context`) and run by the generic front door for every dialect, for passthrough
and converted traffic alike.

A stage may, for one request (a `Call`):

- `on_request`: inspect or rewrite it before routing (`call.model` routes; `call.replace`
  swaps the neutral request), answer it itself (return a neutral `Response`: the client
  gets it in its own dialect, whole or as a real stream), or reject it (raise
  `LouterError`: the client gets its dialect's error envelope and the status);
- `observe`: return an `Observer` that sees the answer (`whole`, or `event` by event for
  a stream) and may end a stream cleanly (`event` returns False: the client sees a normal
  finish in its dialect);
- `after`: run once the exchange is over (accounting).

A stage declares what it reads: `needs_request` (the neutral request) and `needs_events`
(neutral answers and stream events). Only when some stage does is a same-dialect request
parsed, and its answer taken through the neutral model (A -> neutral -> A) instead of
passing through as bytes; without stages the pipeline costs one attribute test.

A stage whose observers read only the answer's text (`watches_text`, with `needs_events`)
lets a same-dialect stream whose door can watch it keep passing through as bytes: the
door's journal tap hands the observers the text (`TextDelta`s, a tool call's start) and,
if one ends the stream, the door writes the finish in the dialect (`proxy/watch.py`).
An observer that ends a stream may add events before the finish (`closing`: a note).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from louter.proxy.usage import LazyRequest

if TYPE_CHECKING:
    from louter.convert.model import Request, Response, StreamEvent
    from louter.http.message import HttpRequest
    from louter.proxy.exchange import Exchange


class Call:
    """One client request as the stages see it."""

    __slots__ = (
        "dialect",
        "http",
        "body",
        "model",
        "stream",
        "exchange",
        "rewritten",
        "lazy",
        "kind",
    )

    def __init__(
        self,
        dialect: str,
        http: HttpRequest,
        body: dict[str, Any],
        model: str,
        stream: bool,
        exchange: Exchange,
        lazy: LazyRequest,
        *,
        kind: str = "generate",
    ) -> None:
        self.kind = kind  # "generate" (answered, whole or streamed) or "count" (tokens)
        self.dialect = dialect  # the client's
        self.http = http  # headers, path, query as the client sent them
        self.body = body  # the parsed JSON body (read only: `replace` to change it)
        self.model = model  # the client's model name: routing uses it (a stage may set it)
        self.stream = stream
        self.exchange = exchange
        self.rewritten = False  # a stage replaced the neutral request: it is sent
        self.lazy = lazy  # the neutral request, parsed on first use (`request`)

    @property
    def request(self) -> Request:
        """The neutral request, parsed on first use."""
        return self.lazy()

    def replace(self, request: Request) -> None:
        """Send `request` instead of the client's (written out in the backend's dialect)."""
        self.lazy.set(request)
        self.rewritten = True


class Observer(Protocol):
    """Sees one answer in the neutral model."""

    def whole(self, response: Response) -> Response:
        """A whole answer; the one returned is sent."""
        ...

    def event(self, event: StreamEvent) -> bool:
        """A stream event, before the client gets it; False ends the stream after it,
        cleanly (a normal finish in the client's dialect)."""
        ...


class Closing(Protocol):
    """An observer that ends streams may also say how (optional): the events the client
    gets before the finish (a note, the usage)."""

    def closing(self) -> Sequence[StreamEvent]: ...


class Stage:
    """A pipeline stage; every hook does nothing unless overridden."""

    needs_request: ClassVar[bool] = False  # reads `call.request` (passthrough parses)
    needs_events: ClassVar[bool] = False  # its observers read neutral answers/events
    watches_text: ClassVar[bool] = False  # ... only their text: a watched passthrough will do

    async def on_request(self, call: Call) -> Response | None:
        """Rewrite `call`, answer it (a `Response`; only a "generate" `call.kind`),
        reject it (raise), or None."""
        return None

    def observe(self, call: Call) -> Observer | None:
        """An observer for this call's answer (only with `needs_events`)."""
        return None

    async def after(self, call: Call, status: int) -> None:
        """The exchange is over; `status` is what the client got (499: it left)."""
        return None


@dataclass(frozen=True, slots=True)
class Pipeline:
    stages: tuple[Stage, ...] = ()

    @property
    def neutral(self) -> bool:
        """Whether requests and answers must go through the neutral model (a stage that
        only watches the text does not force it: see `watching`)."""
        return any(
            stage.needs_request or (stage.needs_events and not stage.watches_text)
            for stage in self.stages
        )

    @property
    def has_after(self) -> bool:
        """Whether some stage has an after-exchange hook (else none is awaited)."""
        return any(type(stage).after is not Stage.after for stage in self.stages)

    @property
    def watching(self) -> bool:
        """Whether some stage watches answers' text (a passthrough must be watched)."""
        return any(stage.watches_text for stage in self.stages)

    async def before(self, call: Call) -> Response | None:
        """Run the request hooks in order; the first local answer ends the walk."""
        for stage in self.stages:
            answer = await stage.on_request(call)
            if answer is not None:
                return answer
        return None

    def observers(self, call: Call) -> Observers | None:
        found = [o for stage in self.stages if (o := stage.observe(call)) is not None]
        return Observers(found) if found else None

    async def after(self, call: Call, status: int) -> None:
        for stage in self.stages:
            await stage.after(call, status)


class Observers:
    """The observers of one answer, applied in stage order."""

    __slots__ = ("_all",)

    def __init__(self, observers: Sequence[Observer]) -> None:
        self._all = tuple(observers)

    def whole(self, response: Response) -> Response:
        for observer in self._all:
            response = observer.whole(response)
        return response

    def event(self, event: StreamEvent) -> bool:
        keep = True
        for observer in self._all:  # every observer sees every event
            keep = observer.event(event) and keep
        return keep

    def closing(self) -> list[StreamEvent]:
        """The events to send before the finish of a stream an observer ended."""
        out: list[StreamEvent] = []
        for observer in self._all:
            closing = getattr(observer, "closing", None)  # optional (`Closing`)
            if closing is not None:
                out.extend(closing())
        return out


NO_STAGES = Pipeline()
