"""The attempt loop (design §4): try a request's candidate backends until one answers.

Every front door does "route → upstream request → relay"; this module is the middle for
all of them. The door hands over the ordered candidates and a `MakePlan` callback that
builds the request for one candidate (the backend's model name and dialect differ per
candidate: a Gemini client may fail over from an OpenAI backend to an Anthropic one).

A failure before any byte reached the client — connect error, no first byte within
`timeout_seconds`, 5xx, 429 — is retryable: the same backend is tried again up to its
`max_retries` (after `retry_backoff_seconds`, doubling, or the upstream's `Retry-After`
when longer, never waiting past `timeout_seconds` since the request arrived), then the
next candidate. A backend whose breaker is open is skipped. Once an answer is being
relayed nothing is retried. A backend with a key pool (`api_keys`) starts each request
at its next key; a 401/403/429 from one key moves at once to the next key on the same
backend (each key once per request; the breaker counts only the last key's refusal),
then to the next candidate. When every candidate failed, the client gets the last
failure: the upstream's own error answer (relayed in the client's dialect, same status),
or the transport error (502/504); when every candidate was skipped, 503.

Each attempt is journaled (`backend_request` with its `attempt` number, and the ordered
`candidates` when there was more than one, and `key_index` with a key pool; a failed
attempt adds an `error` entry with backend, status and attempt) and counted in the
metrics.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, TypeVar

import trio

from louter.convert.dialect import DIALECTS
from louter.errors import LouterError, UpstreamError
from louter.http.message import HeaderList, Responder
from louter.http.upstream import UpstreamResponse
from louter.proxy.breaker import Breaker
from louter.proxy.exchange import Exchange
from louter.proxy.rate_limited import too_many
from louter.proxy.routing import Route
from louter.proxy.usage import estimate_output

if TYPE_CHECKING:
    from louter.proxy.context import ProxyContext
    from louter.proxy.metrics import Metrics

Estimate = Callable[[], int]  # the request's input tokens, estimated (for usage-less answers)


@dataclass(slots=True)
class Delivery:
    """How relaying an answer went, for the metrics and the breaker."""

    ttft: float | None = None  # seconds from arrival to the first answer byte sent
    tokens: tuple[int, int] | None = None  # (input, output) as the backend reported them
    text: str = ""  # the answer's text, to estimate output tokens when `tokens` is None
    error: str | None = None  # the answer failed after its head was sent (mid-stream)
    client_gone: bool = False


class Plan:
    """One candidate's upstream request, and how its answer reaches the client."""

    __slots__ = ("route", "dialect", "path", "headers", "body")

    def __init__(
        self, route: Route, dialect: str, path: str, headers: HeaderList, body: bytes
    ) -> None:
        self.route = route
        self.dialect = dialect  # spoken to the backend
        self.path = path
        self.headers = headers
        self.body = body

    async def relay(
        self,
        ctx: ProxyContext,
        exchange: Exchange,
        response: UpstreamResponse,
        responder: Responder,
    ) -> Delivery:
        raise NotImplementedError


MakePlan = Callable[[Route], Plan]


class Buffered:
    """A failed attempt's answer, read whole: relayed if it turns out to be the last."""

    def __init__(self, status: int, headers: HeaderList, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self._body = body

    ready = True  # the body is all here

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        yield self._body

    async def read(self) -> bytes:
        return self._body

    async def aclose(self) -> None:
        return None


async def without_keys(
    ctx: ProxyContext, exchange: Exchange, response: UpstreamResponse
) -> UpstreamResponse:
    """An upstream error answer without any configured key it repeats (some servers
    echo the key they refused): read whole, so the client and the log get it clean."""
    if not ctx.scrub.has_keys:
        return response
    body = ctx.scrub.keys_out(await exchange.read_body(response))
    return Buffered(response.status, response.headers, body)


@dataclass(slots=True)
class _Failure:
    plan: Plan
    message: str
    status: int
    response: Buffered | None = None
    error: UpstreamError | None = None
    retry_after: float | None = None
    key_index: int | None = None  # the pool key this attempt used
    more_keys: bool = False  # the pool has untried keys left for this request


async def run(
    ctx: ProxyContext,
    exchange: Exchange,
    responder: Responder,
    routes: Sequence[Route],
    make_plan: MakePlan,
    estimate: Estimate,
) -> None:
    """Try `routes` in order and relay the first answer (or the last failure)."""
    loop = _Attempts(ctx, exchange)
    loop.estimate = estimate
    answer = await loop.first_answer(routes, make_plan)
    if answer is None:
        await loop.relay_failure(responder)
    else:
        await loop.deliver(*answer, responder, estimate)


class _Attempts:
    def __init__(self, ctx: ProxyContext, exchange: Exchange) -> None:
        self.ctx = ctx
        self.exchange = exchange
        self.timeout = ctx.config.performance.timeout_seconds
        self.deadline = exchange.started + self.timeout
        self.failure: _Failure | None = None
        self.candidates: list[str] | None = None  # journaled when there is a choice
        self.estimate: Estimate = _no_estimate  # input tokens (a backend's tpm limit)
        self.limited: float | None = None  # a backend at its rate limit: when to retry

    async def first_answer(
        self, routes: Sequence[Route], make_plan: MakePlan
    ) -> tuple[Plan, UpstreamResponse, float] | None:
        """The first usable answer: (plan, response, attempt start). None when every
        candidate failed with an answer of its own (see `relay_failure`). Each backend
        gets up to 1 + max_retries attempts."""
        if self.exchange.logging and len(routes) > 1:
            self.candidates = [route.backend.name for route in routes]
        for route in routes:
            if self.ctx.backend_limits is not None and await self._at_limit(route.backend.name):
                continue
            answer = await self._turn(route, make_plan)
            if answer is not None:
                return answer
        self._no_answer(routes)
        return None

    def _no_answer(self, routes: Sequence[Route]) -> None:
        """No candidate answered: raise why (all skipped, or a transport error), or None
        when the last failure has an answer of its own to relay."""
        failure = self.failure
        if failure is None and self.limited is not None:
            raise too_many("every backend for this model is at its rate limit", self.limited)
        if failure is None:
            raise UpstreamError(_all_skipped(self.ctx, routes), status_hint=503)
        if failure.error is not None:
            raise failure.error
        return None

    async def _at_limit(self, name: str) -> bool:
        """Whether backend `name` is at its own rate limit (then skipped like an open
        breaker); its buckets are charged when it is not."""
        assert self.ctx.backend_limits is not None
        wait = await self.ctx.backend_limits.admit(name, self.estimate)
        if wait is None:
            return False
        self._decide(name, "skipped")
        self.limited = wait if self.limited is None else min(self.limited, wait)
        return True

    async def _turn(
        self, route: Route, make_plan: MakePlan
    ) -> tuple[Plan, UpstreamResponse, float] | None:
        """One candidate's tries: up to 1 + max_retries, plus, with a key pool, one more
        per key the upstream refused (401/403/429: the next key at once, each key once)."""
        backend = route.backend
        breaker = self.ctx.router.breakers[backend.name]
        pool = self.ctx.upstreams[backend.name].keys
        keys = None if pool is None else pool.order()
        plan: Plan | None = None
        retry, first = 0, True
        while True:
            if not breaker.allow():
                if first:
                    self._decide(backend.name, "skipped")
                return None
            first = False
            if plan is None:
                plan = (
                    _build_now(make_plan, route, breaker)
                    if not self.exchange.offload
                    else await _build(self.exchange, make_plan, route, breaker)
                )
            answer = await self._attempt(plan, breaker, keys)
            if answer is not None:
                return answer
            if keys is not None and _refused(self.failure):
                del keys[0]
                if keys:
                    continue
                return None
            delay = self._delay(route, retry)
            if retry == backend.max_retries or delay is None:
                return None
            await self._wait(delay)
            retry += 1

    async def _attempt(
        self, plan: Plan, breaker: Breaker, keys: list[int] | None = None
    ) -> tuple[Plan, UpstreamResponse, float] | None:
        """One try; `keys`: a key pool's untried indices, the first one used now."""
        exchange = self.exchange
        exchange.attempts += 1
        name = plan.route.backend.name
        exchange.backend = name
        exchange.backend_format = plan.dialect
        upstream = self.ctx.upstreams[name]
        headers = plan.headers
        if keys is not None and upstream.keys is not None:
            headers = upstream.keys.headers(headers, keys[0])
        if exchange.logging:
            extra: dict[str, Any] = {}
            if self.candidates is not None:
                extra["candidates"] = self.candidates
            if keys is not None:
                extra["key_index"] = keys[0]
            exchange.log(
                "backend_request",
                raw_payload=plan.body,
                dialect=plan.dialect,
                backend_model=plan.route.model,
                attempt=exchange.attempts,
                **extra,
            )
        metrics = self.ctx.metrics
        if metrics is not None:
            metrics.backends[name].in_flight.inc()
        started = time.perf_counter()
        try:
            try:
                response = await upstream.transport.request(
                    plan.path,
                    headers,
                    plan.body,
                    first_byte_timeout=plan.route.backend.timeout_seconds or self.timeout,
                )
            finally:
                exchange.upstream_wait += time.perf_counter() - started
            status = response.status
            if status < 500 and status != 429 and (keys is None or status not in KEY_REFUSED):
                # not retryable: this is the answer
                breaker.succeed()
                if metrics is not None:
                    metrics.backends[name].decisions["served"].value += 1
                return plan, response, started
            failure = await self._read_failure(plan, response)
        except UpstreamError as exc:
            clean = _scrubbed(self.ctx, exc, name)
            failure = _Failure(plan, clean.message, clean.status_hint, error=clean)
        except BaseException:  # cancelled (the client left): no outcome to record
            breaker.release()
            if metrics is not None:
                metrics.backends[name].in_flight.dec()
            raise
        if keys is not None:
            failure.key_index = keys[0]
            failure.more_keys = len(keys) > 1
        self._failed(failure, breaker, started)
        return None

    async def _read_failure(self, plan: Plan, response: UpstreamResponse) -> _Failure:
        body = await self.exchange.read_body(response)
        message = f"HTTP {response.status}: {DIALECTS[plan.dialect].error_message(body)}"
        message = self.ctx.scrub(message, plan.route.backend.name)
        return _Failure(
            plan,
            message,
            response.status,
            response=Buffered(response.status, response.headers, body),
            retry_after=retry_after(response.headers, self.ctx.clock()),
        )

    def _failed(self, failure: _Failure, breaker: Breaker, started: float) -> None:
        name = failure.plan.route.backend.name
        if failure.more_keys and _refused(failure):
            breaker.release()  # one key refused, not the backend failing: no breaker count
        else:
            breaker.fail(failure.message)
        self.failure = failure
        self._decide(name, "failed")
        metrics = self.ctx.metrics
        if metrics is not None:
            children = metrics.backends[name]
            children.in_flight.dec()
            label = str(failure.status) if failure.response is not None else "error"
            children.duration(label).observe(time.perf_counter() - started)
        extra: dict[str, Any] = {}
        if failure.key_index is not None:
            extra["key_index"] = failure.key_index
        self.exchange.log(
            "error",
            status=failure.status,
            error=failure.message,
            attempt=self.exchange.attempts,
            retryable=True,
            **extra,
        )

    def _delay(self, route: Route, retry: int) -> float | None:
        """The wait before retrying `route`'s backend; None when it would keep the client
        waiting beyond `timeout_seconds`."""
        delay: float = route.backend.retry_backoff_seconds * 2.0**retry
        failure = self.failure
        if failure is not None and failure.retry_after is not None:
            delay = max(delay, failure.retry_after)
        if time.perf_counter() + delay > self.deadline:
            return None
        return delay

    async def _wait(self, delay: float) -> None:
        started = time.perf_counter()
        try:
            await trio.sleep(delay)
        finally:
            self.exchange.upstream_wait += time.perf_counter() - started

    def _decide(self, backend: str, outcome: str) -> None:
        metrics = self.ctx.metrics
        if metrics is not None:
            metrics.backends[backend].decisions[outcome].inc()

    async def relay_failure(self, responder: Responder) -> None:
        """Every candidate failed with an answer: relay the last one, in the client's
        dialect, with its status (and `Retry-After`)."""
        failure = self.failure
        assert failure is not None and failure.response is not None
        await failure.plan.relay(self.ctx, self.exchange, failure.response, responder)
        metrics = self.ctx.metrics
        if metrics is not None:
            metrics.error("upstream_status", self.exchange.label)

    async def deliver(
        self,
        plan: Plan,
        response: UpstreamResponse,
        started: float,
        responder: Responder,
        estimate: Estimate,
    ) -> None:
        """Relay the answer; then settle the breaker and the metrics."""
        name = plan.route.backend.name
        metrics = self.ctx.metrics
        try:
            delivery = await plan.relay(self.ctx, self.exchange, response, responder)
        except BaseException as exc:
            # cancelled (louter stopping) or failed mid-answer: the upstream connection is
            # closed now, not left open to the collector (a stream still being read)
            with trio.CancelScope(shield=True):
                await response.aclose()
            if not isinstance(exc, LouterError):
                raise
            # the answer was unusable (e.g. not JSON), or broke off
            clean = _scrubbed(self.ctx, exc, name)
            self.ctx.router.breakers[name].fail(clean.message)
            if metrics is not None:
                metrics.backends[name].duration("error").observe(time.perf_counter() - started)
            if clean is exc:
                raise
            raise clean from exc
        finally:
            if metrics is not None:
                metrics.backends[name].in_flight.dec()
        if delivery.error is not None and not delivery.client_gone:
            self.ctx.router.breakers[name].fail(delivery.error)
        elif response.status < 400 and not delivery.client_gone:  # settles rate limits
            self.exchange.usage = delivery.tokens or (estimate(), estimate_output(delivery.text))
        if metrics is not None:
            _account(metrics, self.exchange, name, response.status, delivery, estimate)
            metrics.backends[name].duration(str(response.status)).observe(
                time.perf_counter() - started
            )


def _account(
    metrics: Metrics,
    exchange: Exchange,
    name: str,
    status: int,
    delivery: Delivery,
    estimate: Estimate,
) -> None:
    children = metrics.backends[name]
    if delivery.client_gone:
        metrics.error("client_disconnect", exchange.label)
    elif delivery.error is not None:
        metrics.error("stream", exchange.label)
    if status >= 400:
        metrics.error("upstream_status", exchange.label)
        return
    if delivery.ttft is not None:
        children.ttft.observe(delivery.ttft)
    tokens = delivery.tokens
    if tokens is None:
        tokens = (estimate(), estimate_output(delivery.text))
    children.input.inc(tokens[0])
    children.output.inc(tokens[1])


KEY_REFUSED = frozenset({401, 403, 429})  # with a key pool: try the next key


def _refused(failure: _Failure | None) -> bool:
    """Whether an upstream answered `failure` by refusing the key it was sent."""
    return failure is not None and failure.response is not None and failure.status in KEY_REFUSED


def _no_estimate() -> int:
    return 0


_E = TypeVar("_E", bound=LouterError)


def _scrubbed(ctx: ProxyContext, exc: _E, backend: str) -> _E:
    """`exc`, or a copy without backend addresses or keys in its message (transport
    errors name the address they failed on; clients, the log and /health see names)."""
    message = ctx.scrub(exc.message, backend)
    if message == exc.message:
        return exc
    return type(exc)(message, status_hint=exc.status_hint)


def _build_now(make_plan: MakePlan, route: Route, breaker: Breaker) -> Plan:
    """The plan for `route`, built inline (a small request: no thread, no checkpoint);
    a request that cannot be built frees the breaker slot it may have claimed."""
    try:
        return make_plan(route)
    except BaseException:
        breaker.release()
        raise


async def _build(exchange: Exchange, make_plan: MakePlan, route: Route, breaker: Breaker) -> Plan:
    """The plan for `route` (converting a large request in a worker thread: see
    `Exchange.in_thread`); a request that cannot be built (the client's fault) frees the
    breaker slot it may have claimed."""
    try:
        return await exchange.in_thread(make_plan, route)
    except BaseException:
        breaker.release()
        raise


def retry_after(headers: HeaderList, now: float) -> float | None:
    """`Retry-After` in seconds (delta-seconds or an HTTP date), or None."""
    value = next((v for n, v in headers if n == b"retry-after"), None)
    if value is None:
        return None
    text = value.decode("latin-1").strip()
    try:
        seconds = float(text)
    except ValueError:
        return _date_delay(text, now)
    return max(0.0, seconds)


def _date_delay(text: str, now: float) -> float | None:
    """The seconds until an HTTP date (RFC 9110 §10.2.3), or None when it is not one."""
    try:
        return max(0.0, parsedate_to_datetime(text).timestamp() - now)
    except (TypeError, ValueError):
        return None


def _all_skipped(ctx: ProxyContext, routes: Sequence[Route]) -> str:
    names = [route.backend.name for route in routes]
    wait = min(ctx.router.breakers[name].remaining() for name in names)
    return (
        f"no backend available: {', '.join(names)} cooling down after repeated failures"
        f" (next try in {wait:.0f}s)"
    )
