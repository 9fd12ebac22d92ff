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
- `record`: return a `Recorder` that gets the complete answer once the client has it
  (it cannot change it, so a same-dialect answer still passes through as bytes: its
  neutral form is assembled once at the end, from what the journal tap read);
- `after`: run once the exchange is over (accounting). It runs shielded from
  cancellation (a client that left must still be accounted for), unless the stage says
  it never waits (`after_awaits = False`: an in-process store), which saves the cancel
  scope (~10 µs here); a stage that does not override it costs nothing after;
- `run`: a background task for the life of the server (e.g. renewing leases), started
  by `serve` when a stage defines one.

A stage declares what it reads: `needs_request` (the neutral request) and `needs_events`
(neutral answers and stream events). Only when some stage does is a same-dialect request
parsed, and its answer taken through the neutral model (A -> neutral -> A) instead of
passing through as bytes (with `needs_events` alone: only for calls some stage returned
an observer for); without stages the pipeline costs one attribute test. A stage that
only reads complete answers (`record`) needs neither: a passed-through answer reaches
its recorder from what the journal tap or the log's parse assembled, once, at the end
(`louter/proxy/recording.py`). The JSON body itself (`call.body`) is parsed on first
use when the door read only its head (`DoorSpec.head`): a stage that can decide from
`call.raw`, the bytes, spares that parse (the session stage looks for its prefix there).

A stage whose observers read only the answer's text (`watches_text`, with `needs_events`)
lets a same-dialect stream whose door can watch it keep passing through as bytes: the
door's journal tap hands the observers the text (`TextDelta`s, a tool call's start) and,
if one ends the stream, the door writes the finish in the dialect (`proxy/watch.py`).
An observer that ends a stream may add events before the finish (`closing`: a note).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import orjson

from louter.errors import ConversionError
from louter.proxy.usage import LazyRequest

if TYPE_CHECKING:
    from collections.abc import Callable

    from louter.convert.model import Request, Response, StreamEvent
    from louter.http.message import HttpRequest
    from louter.proxy.exchange import Exchange
    from louter.proxy.routing import Route, Router
    from louter.proxy.sessions.state import Session


NOT_JSON = "request body is not valid JSON: {}"
NOT_OBJECT = "request body must be a JSON object"


def parse_object(raw: bytes) -> dict[str, Any]:
    """A request body as a JSON object; `ConversionError` (400) otherwise."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ConversionError(NOT_JSON.format(exc)) from None
    if not isinstance(data, dict):
        raise ConversionError(NOT_OBJECT)
    return data


class Body:
    """A request's JSON body, parsed on first use (`UnparsedCall`). Its own object, so
    that the lazily parsed neutral request can read it without referring to the call (a
    cycle the reference counts would not free)."""

    __slots__ = ("raw", "_parsed")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self._parsed: dict[str, Any] | None = None

    def __call__(self) -> dict[str, Any]:
        parsed = self._parsed
        if parsed is None:
            parsed = self._parsed = parse_object(self.raw)
        return parsed


class Call:
    """One client request as the stages see it."""

    __slots__ = (
        "dialect",
        "http",
        "body",
        "raw",
        "head",
        "model",
        "stream",
        "exchange",
        "rewritten",
        "lazy",
        "kind",
        "routes",
        "per_route",
        "marks",
        "session",
    )

    def __init__(
        self,
        dialect: str,
        http: HttpRequest,
        body: dict[str, Any] | None,
        model: str,
        stream: bool,
        exchange: Exchange,
        lazy: LazyRequest,
        *,
        kind: str = "generate",
        head: Any = None,
    ) -> None:
        self.kind = kind  # "generate" (answered, whole or streamed) or "count" (tokens)
        self.dialect = dialect  # the client's
        self.http = http  # headers, path, query as the client sent them
        # The parsed JSON body (read only: `edit` or `replace` to change it); not set yet
        # in an `UnparsedCall`
        if body is not None:
            self.body = body
        # The body's bytes as the client sent them, while the door has not parsed it and a
        # stage has not changed it (`edit`): a same-dialect backend may get them as they are
        self.raw: bytes | None = None
        self.head = head  # what the door read of the body unparsed (`DoorSpec.head`)
        self.model = model  # the client's model name: routing uses it (a stage may set it)
        self.stream = stream
        self.exchange = exchange
        self.rewritten = False  # a stage replaced the neutral request: it is sent
        self.lazy = lazy  # the neutral request, parsed on first use (`request`)
        # The candidate backends, once a stage needed them (`candidates`): the door then
        # tries these, so what a stage decided for the first one holds
        self.routes: Sequence[Route] | None = None
        # What changes the request per backend (processors with `when.backend`): None, or
        # (request, route) -> the request that backend gets (`request_for`)
        self.per_route: Callable[[Request, Route], Request] | None = None
        self.marks: dict[str, Any] | None = None  # journal fields for a local answer
        self.session: Session | None = None  # set by the session stage (its settings)

    @property
    def request(self) -> Request:
        """The neutral request, parsed on first use."""
        return self.lazy()

    def candidates(self, router: Router) -> Sequence[Route]:
        """The backends to try, in order, asked of `router` once per request (a
        round-robin pick is not made twice); a stage after this must not change `model`."""
        if self.routes is None:
            self.routes = router.candidates(self.model)
        return self.routes

    def request_for(self, route: Route) -> Request:
        """The request `route`'s backend gets: `request`, changed by `per_route`."""
        if self.per_route is None:
            return self.request
        return self.per_route(self.request, route)

    def replace(self, request: Request) -> None:
        """Send `request` instead of the client's (written out in the backend's dialect)."""
        self.lazy.set(request)
        self.rewritten = True

    def edit(self, body: dict[str, Any], request: Request) -> None:
        """Send `body` instead of the client's to a backend of the client's dialect (its
        answer may still pass through as bytes), and `request`, the same change in
        neutral form, to the others."""
        self.body = body
        self.raw = self.head = None  # the client's bytes no longer say what is sent
        self.lazy.set(request)


class UnparsedCall(Call):
    """A call whose body the door did not parse (`DoorSpec.head`): `body` is parsed by
    its first read (`__getattr__`, which runs only while the attribute is not set). A
    subclass of its own, because a class with `__getattr__` makes every attribute read
    slower (CPython cannot specialise them): ~8,000 instructions a request on `Call`."""

    __slots__ = ("_source",)

    def __init__(
        self,
        dialect: str,
        http: HttpRequest,
        source: Body,
        model: str,
        stream: bool,
        exchange: Exchange,
        lazy: LazyRequest,
        *,
        head: Any,
    ) -> None:
        super().__init__(dialect, http, None, model, stream, exchange, lazy, head=head)
        self._source = source
        self.raw = source.raw

    def __getattr__(self, name: str) -> Any:
        if name != "body":
            raise AttributeError(name)
        body = self.body = self._source()
        return body


class Observer(Protocol):
    """Sees one answer in the neutral model."""

    def whole(self, response: Response) -> Response:
        """A whole answer; the one returned is sent."""
        ...

    def event(self, event: StreamEvent) -> bool:
        """A stream event, before the client gets it; False ends the stream after it,
        cleanly (a normal finish in the client's dialect)."""
        ...


class Recorder(Protocol):
    """Gets one complete answer in the neutral model, after the client got it (not
    called for an answer that failed, broke off, or kept more than `limit` characters
    of text, reasoning and tool-call arguments)."""

    limit: int

    def answer(self, response: Response) -> None: ...


class Closing(Protocol):
    """An observer that ends streams may also say how (optional): the events the client
    gets before the finish (a note, the usage)."""

    def closing(self) -> Sequence[StreamEvent]: ...


class Stage:
    """A pipeline stage; every hook does nothing unless overridden."""

    needs_request: ClassVar[bool] = False  # reads `call.request` (passthrough parses)
    needs_events: ClassVar[bool] = False  # its observers read neutral answers/events
    after_awaits: bool = True  # `after` may wait (checkpoint): run it shielded
    run: Callable[[], Awaitable[None]] | None = None  # a background task, if any
    watches_text: ClassVar[bool] = False  # ... only their text: a watched passthrough will do

    async def on_request(self, call: Call) -> Response | None:
        """Rewrite `call`, answer it (a `Response`; only a "generate" `call.kind`),
        reject it (raise), or None."""
        return None

    def observe(self, call: Call) -> Observer | None:
        """An observer for this call's answer (only with `needs_events`)."""
        return None

    def record(self, call: Call) -> Recorder | None:
        """A recorder for this call's complete answer (costs passthrough no conversion)."""
        return None

    async def after(self, call: Call, status: int) -> None:
        """The exchange is over; `status` is what the client got (499: it left)."""
        return None


@dataclass(frozen=True, slots=True)
class Pipeline:
    """The stages, and what they need, decided once (read on every request)."""

    stages: tuple[Stage, ...] = ()
    finishing: tuple[Stage, ...] = field(init=False)  # the stages with an `after`
    shield_after: bool = field(init=False)  # some `after` may wait: shield them
    # Whether requests and answers must go through the neutral model (a stage that only
    # watches the text does not force it: see `watching`)
    neutral: bool = field(init=False)
    # Whether some stage watches answers' text (a passthrough must be watched)
    watching: bool = field(init=False)
    # Whether some stage reads every neutral request (then answers go through the neutral
    # model too); a stage that only observes answers needs it only for the calls it
    # returns an observer for
    reads: bool = field(init=False)
    requesting: tuple[Stage, ...] = field(init=False)  # the stages with an `on_request`
    observing: tuple[Stage, ...] = field(init=False)  # the stages with an `observe`
    recording: tuple[Stage, ...] = field(init=False)  # the stages with a `record`

    def __post_init__(self) -> None:
        stages = self.stages
        finishing = _overriding(stages, "after")
        decided = {
            "finishing": finishing,
            "shield_after": any(s.after_awaits for s in finishing),
            "neutral": any(
                s.needs_request or (s.needs_events and not s.watches_text) for s in stages
            ),
            "watching": any(s.watches_text for s in stages),
            "reads": any(s.needs_request for s in stages),
            "requesting": _overriding(stages, "on_request"),
            "observing": _overriding(stages, "observe"),
            "recording": _overriding(stages, "record"),
        }
        for name, value in decided.items():
            object.__setattr__(self, name, value)

    def tasks(self) -> list[Callable[[], Awaitable[None]]]:
        """The stages' background tasks (`Stage.run`)."""
        return [stage.run for stage in self.stages if stage.run is not None]

    @property
    def has_after(self) -> bool:
        """Whether some stage has an after-exchange hook (else none is awaited)."""
        return bool(self.finishing)

    async def before(self, call: Call) -> Response | None:
        """Run the request hooks in order; the first local answer ends the walk."""
        for stage in self.requesting:
            answer = await stage.on_request(call)
            if answer is not None:
                return answer
        return None

    def observers(self, call: Call) -> Observers | None:
        found = [o for stage in self.observing if (o := stage.observe(call)) is not None]
        return Observers(found) if found else None

    def recorders(self, call: Call) -> tuple[Recorder, ...]:
        return tuple(r for stage in self.recording if (r := stage.record(call)) is not None)

    async def after(self, call: Call, status: int) -> None:
        for stage in self.finishing:
            await stage.after(call, status)


def _overriding(stages: tuple[Stage, ...], hook: str) -> tuple[Stage, ...]:
    """The stages whose class overrides `Stage.<hook>` (the others' does nothing)."""
    default = getattr(Stage, hook)
    return tuple(s for s in stages if getattr(type(s), hook) is not default)


class Observers:
    """The observers of one answer, applied in stage order."""

    __slots__ = ("_all",)

    def __init__(self, observers: Sequence[Observer]) -> None:
        self._all = tuple(observers)

    def __iter__(self) -> Iterator[Observer]:
        return iter(self._all)

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
