"""A worker's side of the supervisor link (`louter --workers N`).

`Link.run` says `ready` once the worker serves, answers the supervisor's `snapshot`
requests (this worker's metrics or health) and the answers to its own `gather`s. When
the supervisor goes away (the channel closes) the worker drains and exits: no orphan
keeps serving. `metrics()`/`health()` are what `/metrics` and `/health` answer with:
every worker's snapshot, summed (`merge`).
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import Callable
from typing import Any

import trio

from louter.errors import LouterError
from louter.group.channel import Channel, ChannelClosed
from louter.group.merge import merge, merge_health, render
from louter.http.drain import Drain

GATHER_TIMEOUT = 5.0  # the supervisor answers within its own 2 s per worker
MAX_PENDING = 64  # this worker's gathers in flight


class Link:
    def __init__(self, control: socket.socket) -> None:
        self._socket = control
        self._channel: Channel | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, list[Any]] = {}
        self._answered: dict[int, trio.Event] = {}
        # set by the worker once its context exists: kind -> this worker's snapshot
        self.snapshots: dict[str, Callable[[], Any]] = {}

    async def run(self, drain: Drain, task_status: trio.TaskStatus[None]) -> None:
        self._channel = Channel(trio.SocketStream(trio.socket.from_stdlib_socket(self._socket)))
        task_status.started()
        while True:
            try:
                message = await self._channel.receive()
            except ChannelClosed:
                drain.start()  # the supervisor is gone: stop serving, gracefully
                return
            if message.get("op") == "snapshot":
                await self._answer(message)
            elif message.get("op") == "gathered":
                self._gathered(message)

    async def say(self, message: dict[str, Any]) -> None:
        """Send one message to the supervisor (nothing when it is gone)."""
        if self._channel is None:
            return
        try:
            await self._channel.send(message)
        except ChannelClosed:
            pass

    async def _answer(self, message: dict[str, Any]) -> None:
        take = self.snapshots.get(message.get("kind", ""))
        data = take() if take is not None else None
        await self.say({"op": "snapshot", "id": message.get("id"), "data": data})

    def _gathered(self, message: dict[str, Any]) -> None:
        request_id = message.get("id")
        event = self._answered.get(request_id)  # type: ignore[arg-type]
        if event is None:
            return
        data = message.get("data")
        if isinstance(data, list):
            self._pending[request_id] = [data, message.get("extra") or []]  # type: ignore[index]
        event.set()

    async def gather(self, kind: str) -> tuple[list[Any], list[Any]]:
        """Every serving worker's snapshot of `kind` (and the supervisor's extras)."""
        if len(self._answered) >= MAX_PENDING:
            raise LouterError("too many /metrics or /health requests at once", status_hint=503)
        request_id = next(self._ids)
        event = self._answered[request_id] = trio.Event()
        try:
            await self.say({"op": "gather", "id": request_id, "kind": kind})
            with trio.move_on_after(GATHER_TIMEOUT):
                await event.wait()
            found = self._pending.pop(request_id, None)
        finally:
            del self._answered[request_id]
        if found is None:
            raise LouterError("the workers' snapshots did not arrive in time", status_hint=503)
        return found[0], found[1]

    async def metrics(self) -> bytes:
        workers, extra = await self.gather("metrics")
        return render(merge([*workers, *extra]), len(workers))

    async def health(self) -> tuple[int, dict[str, Any]]:
        workers, _ = await self.gather("health")
        return merge_health(workers, len(workers))
