"""Sessions, in-chat commands and runtime routes (`[session]`).

    names.py     which session a request belongs to; `x-session-id` on every answer
    state.py     one session's settings
    book.py      sessions in the store (idle expiry, `max_sessions`)
    persist.py   `file_path`: in-process sessions and routes across restarts
    routes.py    runtime routes (`!/route-*`), read by the Router
    commands.py  what each command does
    stage.py     the pipeline stage that reads commands and applies settings
    metrics.py   sessions_evicted_total, sessions_live

`build_sessions` makes the `Sessions` of a context. Every answer carries `x-session-id`;
the stage (and with it any store call) exists unless `disable_interactive_commands`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from louter.proxy.sessions.book import SessionBook
from louter.proxy.sessions.metrics import SessionMetrics
from louter.proxy.sessions.names import tag
from louter.proxy.sessions.persist import SessionFile
from louter.proxy.sessions.routes import RuntimeRoutes
from louter.proxy.sessions.stage import SessionStage

if TYPE_CHECKING:
    from louter.config import Config, SessionConfig
    from louter.proxy.metrics import Metrics
    from louter.proxy.pipeline import Stage
    from louter.proxy.routing import Router
    from louter.proxy.served import Served
    from louter.proxy.store import Store

__all__ = ["Sessions", "build_sessions", "tag"]


@dataclass(slots=True)
class Sessions:
    config: SessionConfig
    book: SessionBook
    routes: RuntimeRoutes
    router: Router
    metrics: Metrics | None = None
    file: SessionFile | None = None
    saved: dict[str, Any] | None = field(default=None)  # the file's, restored on first use
    served: Served | None = None  # which models are served (`!/model(nope:x)` is refused)

    @property
    def commands(self) -> bool:
        return not self.config.disable_interactive_commands

    def stages(self) -> list[Stage]:
        return [SessionStage(self)] if self.commands else []

    def stale(self) -> bool:
        """The session file is not restored yet, or the runtime routes may be stale."""
        return self.saved is not None or self.routes.stale()

    async def ready(self) -> None:
        """Put back the session file's state (once), and refresh the runtime routes."""
        saved = self.saved
        if saved is not None:
            self.saved = None
            await self.book.restore(saved.get("sessions", {}))
            await self.routes.restore(saved.get("routes", {}))
        await self.routes.refresh()

    async def aclose(self) -> None:
        """At shutdown: the session file gets the sessions' last use times."""
        if self.file is not None and self.saved is None:
            await self.file.write(sessions=await self.book.snapshot())


def build_sessions(
    config: Config,
    store: Store,
    router: Router,
    metrics: Metrics | None = None,
    warn: Callable[[str], None] | None = None,
    served: Served | None = None,
) -> Sessions:
    """The sessions of a context; the Router reads its runtime routes from now on."""
    settings = config.session
    file = None
    saved = None
    if settings.file_path is not None:
        file = SessionFile(Path(settings.file_path), warn or _quiet)
        saved = file.read()
    backends = {backend.name: backend for backend in config.backends}
    shared = config.store is not None
    routes = RuntimeRoutes(store, backends, shared=shared, file=file)
    if settings.disable_interactive_commands:
        saved = None
    else:
        router.runtime = routes
    book = SessionBook(store, settings, file=file, shared=shared)
    if metrics is not None and not settings.disable_interactive_commands:
        metrics.sessions = SessionMetrics(book, shared=shared)
    return Sessions(settings, book, routes, router, metrics, file, saved, served)


def _quiet(message: str) -> None:
    """No one asked to hear about the session file (start-up problems are still handled)."""
