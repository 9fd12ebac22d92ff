"""`louter --workers N`: the supervisor's command line, and a worker's main loop.

The supervisor (louter/group/supervisor.py) starts each worker as this same program with
a hidden `--worker SPEC` (its slot, generation and the descriptors it inherits: the
listening sockets, its control channel and its log frames) plus the options that shape a
context (`Start.args`). Only this layer prints: the start-up table, signals, and the
supervisor's reports (restarts, reloads).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import trio

import louter
from louter.cli.screen import Screen, Summary
from louter.cli.start import Start, WorkerSpec
from louter.group.merge import snapshot
from louter.group.supervisor import StartFailed, Supervisor
from louter.http.drain import Drain
from louter.http.sockets import open_listeners
from louter.proxy.app import health_body, serve
from louter.proxy.context import ProxyContext
from louter.proxy.journal import Journal

ROOT = str(Path(louter.__file__).resolve().parent.parent)  # workers run this same code
BOOT = "import sys; sys.path.insert(0, sys.argv.pop(1)); from louter.cli.louter import main; main()"


@dataclass(frozen=True, slots=True)
class Group:
    start: Start
    count: int
    host: str
    port: int
    validate: Callable[[], str | None]  # the config as it is now: None, or why it is bad


def command(
    start: Start, slot: int, generation: int, listen: Sequence[int], control: int, log: int
) -> list[str]:
    spec = WorkerSpec(slot, generation, tuple(listen), control, log)
    return [sys.executable, "-c", BOOT, ROOT, "--worker", spec.text(), *start.args()]


# ---------------------------------------------------------------------- a worker


async def run_worker(ctx: ProxyContext, spec: WorkerSpec, drain: Drain) -> int:
    """Serve on the inherited sockets until drained; 1 after a second SIGTERM."""
    link = ctx.group
    assert link is not None
    listeners = [socket.socket(fileno=fd) for fd in spec.listen]
    for listener in listeners:
        listener.setblocking(False)
    metrics = ctx.metrics
    link.snapshots = {"health": lambda: health_body(ctx)[1]}
    if metrics is not None:
        link.snapshots["metrics"] = lambda: snapshot(metrics.collect())
    status = 0
    async with trio.open_nursery() as nursery:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:

            async def serving(task_status: trio.TaskStatus[int]) -> None:
                await serve(ctx, "", 0, drain=drain, listeners=listeners, task_status=task_status)
                if metrics is not None:  # what this worker counted outlives it
                    await link.say({"op": "final", "data": snapshot(metrics.collect())})
                nursery.cancel_scope.cancel()

            await nursery.start(link.run, drain)
            await nursery.start(serving)
            await link.say({"op": "ready"})
            async for signum in signals:
                if signum == signal.SIGHUP:
                    continue  # the supervisor reloads and owns the log file
                if drain.requested.is_set():
                    break
                drain.start()
            status = 1
            nursery.cancel_scope.cancel()
    return status


# ---------------------------------------------------------------------- the supervisor

Summarize = Callable[[ProxyContext, str, int], Summary]


def supervise(group: Group, ctx: ProxyContext, screen: Screen, summary: Summarize) -> int:
    """Run the supervisor until its workers stopped; the exit status."""
    return trio.run(_supervise, group, ctx, screen, summary)


async def _supervise(group: Group, ctx: ProxyContext, screen: Screen, summary: Summarize) -> int:
    start = group.start
    try:
        listeners = await open_listeners(group.host, group.port)
    except OSError as exc:
        screen.say(f"cannot listen on {group.host}:{group.port}: {exc}", "bold red")
        return 1
    try:
        journal = _journal(start, screen)
    except OSError as exc:
        screen.say(f"cannot open log file {start.log_file}: {exc}", "bold red")
        return 2
    supervisor = Supervisor(
        group.count,
        partial(command, start),
        listeners,
        journal=journal,
        report=screen.say,
        validate=group.validate,
    )
    port = listeners[0].getsockname()[1]
    failed: list[BaseException] = []
    try:
        await _serve(supervisor, group, ctx, screen, summary, port)
    except* StartFailed as group_error:
        failed.extend(group_error.exceptions)
    finally:
        if journal is not None:
            journal.close()
    if failed:
        screen.say(f"cannot start: {failed[0]}", "bold red")
        return 1
    return 1 if supervisor.forced else 0


def _journal(start: Start, screen: Screen) -> Journal | None:
    if start.log_file is None:
        return None
    return Journal(
        start.log_file,
        clock=time.time,
        report=partial(screen.say, style="bold red"),
        max_bytes=start.log_max_bytes,
        backups=start.log_backups,
    )


async def _serve(
    supervisor: Supervisor,
    group: Group,
    ctx: ProxyContext,
    screen: Screen,
    summary: Summarize,
    port: int,
) -> None:
    async with trio.open_nursery() as nursery:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:

            async def running(task_status: trio.TaskStatus[list[int]]) -> None:
                await supervisor.run(task_status=task_status)
                nursery.cancel_scope.cancel()

            pids = await nursery.start(running)
            shown = summary(ctx, group.host, port)
            shown.notes.append(
                f"workers: {group.count} (pids {', '.join(map(str, pids))}; supervisor "
                f"{os.getpid()}); SIGHUP reloads the config, SIGTERM drains"
            )
            screen.summary(shown)
            async for signum in signals:
                _on_signal(supervisor, nursery, signum, ctx, group, screen)


def _on_signal(
    supervisor: Supervisor,
    nursery: trio.Nursery,
    signum: int,
    ctx: ProxyContext,
    group: Group,
    screen: Screen,
) -> None:
    name = signal.Signals(signum).name
    if signum == signal.SIGHUP:
        screen.say("SIGHUP, reloading the config (and reopening the log file)")
        supervisor.reopen_log()
        nursery.start_soon(supervisor.reload)
    elif supervisor.stopping:
        screen.say(f"{name} again, stopping now")
        supervisor.stop()
    else:
        seconds = group.start.drain_seconds
        seconds = ctx.config.server.drain_seconds if seconds is None else seconds
        screen.say(
            f"{name}, stopping {len(supervisor.workers)} workers: no new connections, "
            f"up to {seconds:g}s for the answers in flight",
        )
        supervisor.stop()
