"""The stream idle timeout (`stream_idle_timeout_seconds`): one watchdog task for all
streams instead of a cancel scope per chunk read (design §11: a scope costs ~17 µs, and a
stream reads hundreds of chunks).

A relayed stream registers itself while it runs and stamps `waiting_since` (a
`time.perf_counter()` reading, 0.0 when not waiting) around each upstream read; the
watchdog wakes a few times per timeout and stalls the streams silent for longer. Time the
client takes to read does not count: only waiting on the upstream does, so a long
healthy stream, however slow the client, is never cut.
"""

from __future__ import annotations

import time
from typing import Protocol

import trio


class Watched(Protocol):
    waiting_since: float

    def stall(self) -> None:
        """The upstream has been silent too long: end the stream with an error."""
        ...


class StallWatch:
    def __init__(self, idle_timeout: float) -> None:
        self.idle_timeout = idle_timeout
        self.interval = min(1.0, idle_timeout / 4)
        self.streams: set[Watched] = set()

    async def run(self) -> None:
        while True:
            await trio.sleep(self.interval)
            self.check(time.perf_counter())

    def check(self, now: float) -> None:
        limit = now - self.idle_timeout
        for stream in [s for s in self.streams if 0.0 < s.waiting_since < limit]:
            stream.stall()
