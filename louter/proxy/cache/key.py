"""The cache key of a request for one candidate backend: a SHA-256 of what louter sends
that backend, with what else decides the answer.

    format version, scope, backend name, the dialect spoken to it, the backend's model
    name, its token-limit field, the client's `anthropic-beta`, and the body:
      - the client's own body as forwarded (a backend of the client's dialect, request
        unchanged), less the fields that cannot change the answer (`IGNORED`);
      - else the body louter writes from the neutral request (after the processors and
        the backend's defaults), written as for a whole answer.

`stream` never counts (a hit is served whole or streamed, in any dialect); every other
field does: `temperature`, tools, `seed`, `n`, a response format, reasoning settings.

The scope keeps keys apart: the client key's name (with `[auth]`), unless `shared`; a
client's own key forwarded to the backend (its credentials upstream: another account,
other models) always counts, as a digest, `shared` or not. A key louter neither checks
nor forwards (auth off, the backend has its own) means nothing and does not count.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import TYPE_CHECKING, Any

import orjson

from louter.convert.dialect import DIALECTS
from louter.proxy.bridge import apply_defaults, backend_dialect
from louter.proxy.cache.codec import FORMAT

if TYPE_CHECKING:
    from louter.proxy.pipeline import Call
    from louter.proxy.routing import Route

# Body fields that cannot change the answer (any dialect's spelling)
IGNORED = frozenset({"stream", "stream_options", "user", "metadata", "store"})


def cache_key(call: Call, route: Route, *, shared: bool, auth_on: bool) -> str:
    backend = route.backend
    dialect = backend_dialect(backend, call.dialect)
    if dialect == call.dialect and not call.rewritten and _unchanged_for(call, route):
        from louter.proxy.doors import DOORS  # noqa: PLC0415 - the doors import the pipeline

        sent = DOORS[call.dialect].same_body(call, route)
        body: Any = {name: value for name, value in sent.items() if name not in IGNORED}
        form = "forwarded"
    else:
        whole = dataclasses.replace(
            apply_defaults(call.request_for(route), backend), stream=False, include_usage=False
        )
        body = DIALECTS[dialect].emit_request(whole, route.model)
        form = "converted"
    material = [
        FORMAT,
        scope(call, route, shared=shared, auth_on=auth_on),
        backend.name,
        dialect,
        route.model,
        backend.max_tokens_field,
        call.http.headers.get("anthropic-beta"),
        form,
        body,
    ]
    return hashlib.sha256(orjson.dumps(material, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _unchanged_for(call: Call, route: Route) -> bool:
    """Whether `route`'s backend gets the client's request (no processor changed it for
    that backend); the neutral request is not parsed to know it when none could."""
    return call.per_route is None or call.request_for(route) is call.request


def scope(call: Call, route: Route, *, shared: bool, auth_on: bool) -> str:
    """Who may share an entry (see the module docstring)."""
    from louter.proxy.doors import DOORS  # noqa: PLC0415

    own = DOORS[call.dialect].key(call.http)
    forwarded = own is not None and route.backend.takes_client_key(auth_on)
    digest = hashlib.sha256(own.encode()).hexdigest()[:32] if own and forwarded else "-"
    key = call.exchange.key
    name = "*" if shared or key is None else key.name
    return f"{name}/{digest}"
