"""One watchdog task for many deadlines, instead of a cancel scope per wait.

A trio cancel scope costs more than a whole socket call on the hot path (design §11), and
a proxy waits many times per request: for an upstream's first byte, between the chunks of
a stream. Whatever must not wait forever registers here with a `deadline` (a
`time.perf_counter()` reading; `math.inf` while it is not waiting) and an `expire()`
that ends the wait (closing a socket, cancelling a stream); the watchdog wakes a few
times per shortest timeout and expires what is overdue. Deadlines are therefore kept to
within a quarter of their timeout, which is what timeouts of seconds need.
"""

from __future__ import annotations

import time
from typing import Protocol

import trio


class Expiring(Protocol):
    deadline: float

    def expire(self) -> None:
        """The deadline passed: stop waiting (the waiter raises its own error)."""
        ...


class Deadlines:
    def __init__(self, shortest_timeout: float) -> None:
        self.interval = min(1.0, shortest_timeout / 4)
        self.items: set[Expiring] = set()

    def add(self, item: Expiring) -> None:
        self.items.add(item)

    def discard(self, item: Expiring) -> None:
        self.items.discard(item)

    async def run(self) -> None:
        while True:
            await trio.sleep(self.interval)
            self.check(time.perf_counter())

    def check(self, now: float) -> None:
        for item in [i for i in self.items if i.deadline < now]:
            item.expire()
