"""Client-key auth (issue 18): built only when `config.auth.on` (a key is configured and
auth is not disabled); otherwise nothing here runs.

Two parts:

- `Gate.admit`, called by the app before an endpoint's handler (every endpoint but
  `/health` and `/metrics`, model lists included), before the body is read: the key from
  where the endpoint's dialect sends it (`Dialect.key_headers` / `key_query`), its SHA-256
  looked up and compared in constant time (`hmac.compare_digest`), expiry, and a per-address
  failure throttle. The key is then removed from the request, so it can never be forwarded
  upstream, and its config name recorded on the exchange (the journal names it). A louter
  key may also come in `x-louter-key` (any dialect): the dialect's own place then keeps the
  client's own key, forwarded only to backends with `forward_client_key = true`.
- `ModelAllowList`, a pipeline stage: the request's model against the key's `models` globs
  (403). In the pipeline only when some key has a list other than `["*"]`.

Refusals: 401 (missing, unknown, expired key), 403 (model), 429 with `Retry-After` (an
address blocked after repeated failures), each in the client's own error envelope.
"""

from __future__ import annotations

import hmac
import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

from louter.access import Auth, ClientKey, digest
from louter.convert.dialect import DIALECTS
from louter.errors import LouterError
from louter.proxy.door import client_key
from louter.proxy.pipeline import Call, Stage

if TYPE_CHECKING:
    from louter.convert.model import Response
    from louter.http.message import HttpRequest
    from louter.proxy.exchange import Exchange
    from louter.proxy.metrics import Metrics

INVALID = "invalid_api_key"  # OpenAI's `code` for a 401
LOUTER_HEADER = "x-louter-key"  # a louter key in any dialect, beside the client's own key
ANY = "*"  # `Gate.admit`'s dialect for paths every dialect's clients use
HEADERS = "headers"  # every dialect's key headers, never the query (its `key` is a filter)


@dataclass(frozen=True, slots=True)
class Places:
    """Where a key may come: headers in order ("authorization" = a Bearer token) and a
    query parameter."""

    headers: tuple[str, ...]
    query: str | None


def places_of(dialect: str) -> Places:
    found = DIALECTS[dialect]
    return Places(found.key_headers, found.key_query)


def any_places() -> Places:
    """Every dialect's places (paths shared by several dialects' clients: `/v1/models`)."""
    headers = dict.fromkeys(h for d in DIALECTS.values() for h in d.key_headers)
    queries = [d.key_query for d in DIALECTS.values() if d.key_query]
    return Places(tuple(headers), queries[0] if queries else None)


class Throttle:
    """Failed attempts per client address: `max_failures` within `window` seconds block the
    address for `block` seconds. At most `limit` addresses are tracked (oldest dropped)."""

    __slots__ = ("_auth", "_clock", "_table")

    def __init__(self, auth: Auth, clock: Callable[[], float]) -> None:
        self._auth = auth
        self._clock = clock
        # address -> [window start, failures in it, blocked until]
        self._table: OrderedDict[str, list[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._table)

    def blocked(self, address: str) -> float:
        """Seconds `address` stays blocked (0: not blocked)."""
        entry = self._table.get(address)
        return 0.0 if entry is None else max(0.0, entry[2] - self._clock())

    def failed(self, address: str) -> None:
        auth, now = self._auth, self._clock()
        entry = self._table.get(address)
        if entry is None or now - entry[0] > auth.failure_window_seconds:
            entry = [now, 0.0, 0.0]
        entry[1] += 1
        if entry[1] >= auth.max_failures:
            entry[2] = now + auth.block_seconds
        self._table[address] = entry
        self._table.move_to_end(address)
        while len(self._table) > auth.max_tracked_addresses:
            self._table.popitem(last=False)


class Gate:
    """Authenticates requests; see the module docstring."""

    def __init__(
        self,
        auth: Auth,
        wall: Callable[[], float],
        monotonic: Callable[[], float],
        metrics: Metrics | None,
    ) -> None:
        self._keys = {key.digest: key for key in auth.keys}
        self._places = {name: places_of(name) for name in DIALECTS}
        self._places[ANY] = any_places()
        self._places[HEADERS] = Places(self._places[ANY].headers, None)
        self._wall = wall
        self._metrics = metrics
        self.throttle = Throttle(auth, monotonic)

    def admit(self, http: HttpRequest, dialect: str, exchange: Exchange, peer: str) -> None:
        """Record the request's key on `exchange`, or raise the refusal. `dialect` says
        where the key is read (`ANY`: every dialect's places)."""
        places = self._places[dialect]
        if len(self.throttle) and (wait := self.throttle.blocked(peer)):
            self._count("throttled")
            raise LouterError(
                "too many requests with invalid API keys from this address; retry later",
                status_hint=429,
                headers=((b"retry-after", str(math.ceil(wait)).encode("ascii")),),
            )
        own = http.headers.pop(LOUTER_HEADER, None)  # louter's own place, any dialect
        presented = own or client_key(http, places.headers, places.query)
        if presented is None:
            self._refuse(peer, "missing", "missing API key")
        found = self._keys.get(given := digest(presented)) if presented else None
        if found is None or not hmac.compare_digest(found.digest, given):
            self._refuse(peer, "unknown", "incorrect API key provided")
        if found.expired(self._wall):
            self._refuse(peer, "expired", "API key expired")
        if own is None:  # else the dialect's place holds the client's own key (kept)
            _strip(http, places)
        exchange.key = found

    def _refuse(self, peer: str, reason: str, message: str) -> NoReturn:
        self.throttle.failed(peer)
        self._count(reason)
        raise LouterError(message, status_hint=401, code=INVALID)

    def _count(self, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.auth_failures[reason].inc()


def _strip(http: HttpRequest, places: Places) -> None:
    """Remove the louter key from the request: nothing downstream can forward it."""
    for name in places.headers:
        http.headers.pop(name, None)
    if places.query is not None and places.query in http.query:
        del http.query[places.query]


class ModelAllowList(Stage):
    """403 for a model outside the request key's `models` globs."""

    def __init__(self, metrics: Metrics | None) -> None:
        self._metrics = metrics

    async def on_request(self, call: Call) -> Response | None:
        allow_model(call.exchange, call.model, self._metrics)
        return None


def allow_model(exchange: Exchange, model: str, metrics: Metrics | None) -> None:
    """403 unless the request's key (if any) may use `model` (requests and lookups)."""
    key: ClientKey | None = exchange.key
    if key is not None and not key.allows(model):
        if metrics is not None:
            metrics.auth_failures["model"].inc()
        raise LouterError(
            f"this API key may not use model {model!r}",
            status_hint=403,
            code="model_not_allowed",
        )


def needs_allow_list(auth: Auth) -> bool:
    return any(key.models != ("*",) for key in auth.keys)
