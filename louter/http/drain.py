"""Graceful stop: the server stops accepting, lets what is in flight finish, then ends it.

`Drain.start()` (a signal handler calls it) makes `serve` close its listening sockets
(new connections are refused) and hand its connections to `Drain.run`, which, a few
times a second until none is left or `seconds` have passed:

- marks every connection draining: it closes after the answer it is working on, and an
  answer not started yet says `connection: close`;
- closes connections waiting idle for their next request (keep-alive) once they have
  been idle for `IDLE_GRACE` and no request of theirs waits unread. A client that is
  using its connection sends its next request within that time and gets it answered
  with `connection: close`: closing under it would fail a request it already sent (a
  race no client can see coming), which a reload must not do.

At the deadline, streamed answers that registered a stop (`Responder.watch_hangup`'s
`stop`) are ended with the dialect's error event, and answers being sent get up to
`grace` seconds to finish; then `serve` cancels whatever is left (a whole answer still
awaited from its upstream: its connection closes unanswered, its exchange logs an error).
Nothing here runs while louter is not stopping.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Protocol

import trio

TICK = 0.05  # seconds between looks at the connections while draining
IDLE_GRACE = 0.5  # a keep-alive connection idle this long is closed (a busy one is told)
STOP_MESSAGE = "louter is shutting down; the answer was cut off"


class _Parser(Protocol):
    @property
    def in_message(self) -> bool: ...

    @property
    def ready(self) -> Collection[object]: ...


class _Answer(Protocol):
    started: bool
    keep_alive: bool


class Draining(Protocol):
    """What the drain needs of a server connection."""

    draining: bool
    scope: trio.CancelScope
    stop: Callable[[str], None] | None  # ends a streamed answer with an error event

    @property
    def waiting(self) -> _Answer | None:
        """The answer being worked on, if any."""

    @property
    def protocol(self) -> _Parser: ...

    def readable(self) -> bool:
        """Bytes from the client wait unread (a request on its way)."""

    def idle_for(self) -> float:
        """Seconds since the last answer (meaningful while idle between requests)."""

    def close_idle(self) -> None:
        """Close now, between two requests (its task then ends)."""


class Drain:
    def __init__(self, seconds: float, *, grace: float = 5.0) -> None:
        self.seconds = seconds
        self.grace = grace
        self.requested = trio.Event()

    def start(self) -> None:
        self.requested.set()

    async def run(self, connections: Collection[Draining]) -> None:
        """Until `connections` is empty or the time is up (see the module docstring)."""
        with trio.move_on_after(self.seconds):
            await _settle(connections, lambda: bool(connections))
        for connection in list(connections):
            if connection.stop is not None:
                connection.stop(STOP_MESSAGE)
        with trio.move_on_after(self.grace):  # while answers are being sent (error events)
            await _settle(connections, lambda: any(_sending(c) for c in connections))


def _sending(connection: Draining) -> bool:
    return connection.waiting is not None and connection.waiting.started


async def _settle(connections: Collection[Draining], busy: Callable[[], bool]) -> None:
    while busy():
        for connection in list(connections):
            _mark(connection)
        await trio.sleep(TICK)


def _mark(connection: Draining) -> None:
    connection.draining = True
    answer = connection.waiting
    if answer is not None:
        if not answer.started:
            answer.keep_alive = False
    elif not connection.protocol.in_message and not connection.protocol.ready:
        if connection.idle_for() >= IDLE_GRACE and not connection.readable():
            # In the same step as the look: a request that arrives in between would be
            # lost with the connection (not scheduled first, as a cancel would be)
            connection.close_idle()
