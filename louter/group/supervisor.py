"""The supervisor of `louter --workers N`: worker processes, restarts, reloads, one view.

It holds the listening sockets (bound once, passed to every worker) and, with a log
file, the log (each worker sends its exchanges' lines as frames; the supervisor writes
them with one system call each: the file's single writer). It never accepts a
connection itself.

- A worker that exits on its own is restarted in its slot after a back-off (0.25 s,
  doubling per quick death up to 30 s; reset once a worker lived 10 s), and reported.
- `stop()` closes the supervisor's sockets and sends SIGTERM to every worker (each
  drains: louter/http/drain.py); `stop()` again sends SIGTERM again (workers stop now).
- `reload()` starts a new generation of N workers; once all of them serve, the old
  generation is sent SIGTERM and drains, while the new one accepts on the same sockets
  (the kernel's queue of pending connections is never dropped). A config that does not
  load, or a new worker that exits before it serves, leaves the old generation serving.
- A worker asking to `gather` gets every serving worker's snapshot (metrics or health;
  bounded in time and in number).
"""

from __future__ import annotations

import itertools
import signal
import socket
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import trio

from louter.group.channel import Channel, ChannelClosed, FrameReader
from louter.group.merge import Snapshot, merge, retire
from louter.proxy.journal import Journal

FIRST_BACKOFF = 0.25
MAX_BACKOFF = 30.0
HEALTHY_AFTER = 10.0  # a worker that lived this long resets its slot's back-off
READY_TIMEOUT = 60.0  # a new worker must serve within this
GATHER_TIMEOUT = 2.0  # a worker's snapshot must arrive within this
MAX_GATHERS = 32  # gathers in flight (more: refused)
LOG_FRAME_LIMIT = 1024 * 1024 * 1024  # one exchange's log lines (bounded by the body limits)

# slot, generation, listener fds, control fd, log fd (-1: none) -> the worker's argv
Command = Callable[[int, int, Sequence[int], int, int], list[str]]


@dataclass(eq=False)
class Worker:
    slot: int
    generation: int
    process: trio.Process
    channel: Channel
    log: trio.SocketStream | None
    started: float
    ready: trio.Event = field(default_factory=trio.Event)
    exited: trio.Event = field(default_factory=trio.Event)
    stopping: bool = False  # asked to stop: its exit is expected
    final: bool = False  # sent its final snapshot (counted in `retired` from then on)
    status: int | None = None

    @property
    def pid(self) -> int:
        return self.process.pid


@dataclass(eq=False)
class _Gather:
    waiting: set[Worker]
    results: dict[Worker, Any] = field(default_factory=dict)
    done: trio.Event = field(default_factory=trio.Event)


class StartFailed(Exception):
    """A worker of the first generation exited before it served."""


class Supervisor:
    def __init__(
        self,
        count: int,
        command: Command,
        listeners: Sequence[socket.socket],
        *,
        journal: Journal | None,
        report: Callable[[str], None],
        validate: Callable[[], str | None],
    ) -> None:
        self.count = count
        self._command = command
        self._listeners = list(listeners)
        self._journal = journal
        self._report = report
        self._validate = validate  # the config as it is now: None if it loads, else why not
        self.generation = 1
        self.current: list[Worker] = []
        self.workers: set[Worker] = set()  # every worker process alive (all generations)
        self.stopping = False
        self._signalled = 0
        self._reloading = False
        self._backoff = [0.0] * count
        self._gathers: dict[int, _Gather] = {}
        self._ids = itertools.count(1)
        self._retired: Snapshot = []
        self._nursery: trio.Nursery | None = None
        self._all_exited = trio.Event()

    # ------------------------------------------------------------------ life cycle

    async def run(self, task_status: trio.TaskStatus[list[int]] = trio.TASK_STATUS_IGNORED) -> None:
        """Start the workers, report their pids once all serve, run until all stopped."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self.current = [await self._spawn(slot, 1) for slot in range(self.count)]
            failed = await self._wait_ready(self.current)
            if failed is not None:
                self.stopping = True
                self._terminate(self.current, signal.SIGKILL)
                raise StartFailed(f"worker {failed.slot + 1} (pid {failed.pid}) {_how(failed)}")
            task_status.started([w.pid for w in self.current])
            await self._all_exited.wait()

    def stop(self) -> None:
        """Graceful stop of every worker; called again: stop them now."""
        self._signalled += 1
        if not self.stopping:
            self.stopping = True
            for listener in self._listeners:
                listener.close()  # new connections are refused once the workers' copies close
        self._terminate(list(self.workers), signal.SIGTERM)
        if not self.workers:
            self._all_exited.set()

    def reopen_log(self) -> None:
        if self._journal is not None:
            self._journal.reopen()

    @property
    def forced(self) -> bool:
        return self._signalled > 1

    async def reload(self) -> None:
        """A new generation of workers with the config as it is now (see the module doc)."""
        if self.stopping or self._reloading:
            self._report("SIGHUP ignored: " + ("stopping" if self.stopping else "reloading"))
            return
        error = self._validate()
        if error is not None:
            self._report(f"reload refused, the running workers serve on: {error}")
            return
        self._reloading = True
        try:
            await self._replace()
        finally:
            self._reloading = False

    async def _replace(self) -> None:
        generation = self.generation + 1
        fresh = [await self._spawn(slot, generation) for slot in range(self.count)]
        failed = await self._wait_ready(fresh)
        if failed is not None or self.stopping:
            self._terminate(fresh, signal.SIGKILL)
            if failed is not None:
                why = f"worker {failed.slot + 1} of generation {generation} {_how(failed)}"
                self._report(f"reload failed ({why}); the running workers serve on")
            return
        old, self.current, self.generation = self.current, fresh, generation
        self._backoff = [0.0] * self.count
        self._terminate(old, signal.SIGTERM)
        pids = ", ".join(str(w.pid) for w in fresh)
        self._report(f"reloaded: generation {generation} serves (pids {pids}); the old drains")

    def _terminate(self, workers: Sequence[Worker], signum: int) -> None:
        for worker in workers:
            worker.stopping = True
            if worker.status is None:
                try:
                    worker.process.send_signal(signum)
                except ProcessLookupError:
                    pass

    async def _wait_ready(self, workers: Sequence[Worker]) -> Worker | None:
        """None when every worker serves; else the first that exited (or timed out)."""
        with trio.move_on_after(READY_TIMEOUT):
            while not all(w.ready.is_set() for w in workers):
                for worker in workers:
                    if worker.exited.is_set() and not worker.ready.is_set():
                        return worker
                await trio.sleep(0.02)
            return None
        return next(w for w in workers if not w.ready.is_set())

    # ------------------------------------------------------------------ one worker

    async def _spawn(self, slot: int, generation: int) -> Worker:
        assert self._nursery is not None
        control, control_child = socket.socketpair()
        log = log_child = None
        if self._journal is not None:
            log, log_child = socket.socketpair()
        fds = [listener.fileno() for listener in self._listeners]
        children = [control_child, *([log_child] if log_child else [])]
        args = self._command(
            slot, generation, fds, control_child.fileno(), log_child.fileno() if log_child else -1
        )
        try:
            process = await trio.lowlevel.open_process(
                args,
                pass_fds=[*fds, *(c.fileno() for c in children)],
                start_new_session=True,  # a terminal's Ctrl-C reaches the supervisor only
                stdin=subprocess.DEVNULL,
            )
        finally:
            for child in children:
                child.close()
        worker = Worker(
            slot, generation, process, Channel(_stream(control)),
            _stream(log) if log else None, trio.current_time(),
        )  # fmt: skip
        self.workers.add(worker)
        self._nursery.start_soon(self._watch, worker)
        return worker

    async def _watch(self, worker: Worker) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._listen, worker)
            if worker.log is not None:
                nursery.start_soon(self._pump_log, worker.log)
            worker.status = await worker.process.wait()
        worker.exited.set()
        self.workers.discard(worker)
        for gather in list(self._gathers.values()):
            _answered(gather, worker, None)
        if self.stopping and not self.workers:
            self._all_exited.set()
        elif not worker.stopping and worker in self.current:
            await self._restart(worker)

    async def _restart(self, dead: Worker) -> None:
        slot = dead.slot
        lived = trio.current_time() - dead.started
        delay = FIRST_BACKOFF if lived >= HEALTHY_AFTER else self._backoff[slot] or FIRST_BACKOFF
        self._backoff[slot] = min(MAX_BACKOFF, delay * 2)
        self._report(
            f"worker {slot + 1} (pid {dead.pid}) {_how(dead)}; restarting it in {delay:g}s"
        )
        await trio.sleep(delay)
        if self.stopping or dead not in self.current:
            return
        fresh = await self._spawn(slot, dead.generation)
        self.current[slot] = fresh
        failed = await self._wait_ready([fresh])
        if failed is None:
            self._report(f"worker {slot + 1} restarted (pid {fresh.pid})")

    async def _listen(self, worker: Worker) -> None:
        """The worker's control messages, until it closes the channel."""
        handlers = {
            "ready": self._on_ready,
            "gather": self._on_gather,
            "snapshot": self._on_snapshot,
            "final": self._on_final,
        }
        while True:
            try:
                message = await worker.channel.receive()
            except ChannelClosed:
                return
            handler = handlers.get(message.get("op", ""))
            if handler is not None:
                await handler(worker, message)

    async def _pump_log(self, stream: trio.SocketStream) -> None:
        """Frames of whole lines from one worker, each written with one system call."""
        assert self._journal is not None
        reader = FrameReader(stream, LOG_FRAME_LIMIT)
        while True:
            try:
                lines = await reader.receive()
            except (ChannelClosed, trio.BrokenResourceError, trio.ClosedResourceError):
                return
            self._journal.write_lines([lines])

    # ------------------------------------------------------------------ messages

    async def _on_ready(self, worker: Worker, message: dict[str, Any]) -> None:
        worker.ready.set()

    async def _on_final(self, worker: Worker, message: dict[str, Any]) -> None:
        data = message.get("data")
        if isinstance(data, list) and not worker.final:
            worker.final = True
            self._retired = merge([self._retired, retire(data)])
            for gather in self._gathers.values():  # counted once: in `retired`
                gather.results.pop(worker, None)
                _answered(gather, worker, None)

    async def _on_snapshot(self, worker: Worker, message: dict[str, Any]) -> None:
        gather = self._gathers.get(message.get("id", 0))
        if gather is not None:
            _answered(gather, worker, message.get("data"))

    async def _on_gather(self, worker: Worker, message: dict[str, Any]) -> None:
        assert self._nursery is not None
        if len(self._gathers) >= MAX_GATHERS:
            await _send(worker, {"op": "gathered", "id": message.get("id"), "data": None})
            return
        self._nursery.start_soon(self._gather, worker, message.get("id"), message.get("kind"))

    async def _gather(self, asking: Worker, request_id: Any, kind: Any) -> None:
        serving = {w for w in self.workers if w.ready.is_set() and not w.final}
        gather_id = next(self._ids)
        gather = self._gathers[gather_id] = _Gather(set(serving))
        try:
            for worker in serving:
                await _send(worker, {"op": "snapshot", "id": gather_id, "kind": kind})
            with trio.move_on_after(GATHER_TIMEOUT):
                await gather.done.wait()
        finally:
            del self._gathers[gather_id]
        extra = [self._retired] if kind == "metrics" and self._retired else []
        data = list(gather.results.values())
        answer = {"op": "gathered", "id": request_id, "data": data, "extra": extra}
        await _send(asking, answer)


def _answered(gather: _Gather, worker: Worker, data: Any) -> None:
    if worker in gather.waiting:
        gather.waiting.discard(worker)
        if data is not None and not worker.final:
            gather.results[worker] = data
        if not gather.waiting:
            gather.done.set()


async def _send(worker: Worker, message: dict[str, Any]) -> None:
    try:
        await worker.channel.send(message)
    except ChannelClosed:
        pass  # the worker is gone; its watcher sees it exit


def _stream(sock: socket.socket) -> trio.SocketStream:
    return trio.SocketStream(trio.socket.from_stdlib_socket(sock))


def _how(worker: Worker) -> str:
    status = worker.status
    if status is None:
        return "did not start serving in time"
    if status < 0:
        return f"was killed by {signal.Signals(-status).name}"
    return f"exited with status {status}"
