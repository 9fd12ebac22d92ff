"""`backend:model` naming a backend that is not configured: a clear 400, unless the whole
name may be a model of its own.

Model names may hold `:` (`qwen3:8b` on Ollama), so a prefix that names no backend is
not an address by itself. A name is refused only when all of these hold:

- its part before the first `:` is not a configured backend (a built-in preset counts);
- config routes the whole name no other way (a `model_mapping` name, a runtime route);
- it is known NOT to be served (`Served.knows` is False: discovery read every default
  pool backend's model list and none has it, and no `[models."NAME"]` declares it).

When a pool backend's list is unknown (discovery off, a backend without a list API, a
read that failed) the name is passed on unchanged, as before: the backend answers it.
The check costs a `":" in model` test per request; names with a colon pay the model
list lookup (read once, then cached for `[catalog] discovery_ttl_seconds`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from louter.errors import ConversionError

if TYPE_CHECKING:
    from louter.proxy.routing import Router
    from louter.proxy.served import Served


def stray_backend(router: Router, model: str) -> str | None:
    """The prefix of `model` when it reads as `backend:model` but that backend is not
    configured and config routes the whole name no other way; None otherwise."""
    name, sep, _ = model.partition(":")
    if not sep or router.has_backend(name) or router.names(model):
        return None
    runtime = router.runtime
    if runtime is not None and model in runtime.table:
        return None
    return name


async def unknown_backend(router: Router, served: Served | None, model: str) -> str | None:
    """Why `model` names an unknown backend (the message of the 400), or None when it may
    be served as it is."""
    name = stray_backend(router, model)
    if name is None or served is None or await served.knows(model) is not False:
        return None
    names = ", ".join(router.backend_names())
    return f"unknown backend {name[:80]!r} in model {model[:256]!r}; backends: {names}"


async def check_address(router: Router, served: Served | None, model: str) -> None:
    """`ConversionError` (400, in the client's envelope) for a model that names an
    unknown backend (see the module docstring)."""
    problem = await unknown_backend(router, served, model)
    if problem is not None:
        raise ConversionError(problem)
