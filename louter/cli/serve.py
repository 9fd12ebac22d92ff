"""Serving: what `louter [OPTIONS]` does once its options are read (by the typer command
in `louter.cli.commands`, or by `louter.cli.serve_argv`'s fast path, which spares the
serving process typer's parameter machinery). Loads the config, builds the context,
prints the summary and serves until stopped; returns the exit status."""

from __future__ import annotations

import gc
import signal
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import trio

from louter import __version__
from louter.cli.echo import echo_to, level_of
from louter.cli.screen import Screen, Summary
from louter.cli.start import Start, WorkerSpec, worker_count
from louter.config import Backend, Config, is_loopback
from louter.errors import ConfigError
from louter.http.drain import Drain
from louter.proxy.app import ROUTES, build_context, serve
from louter.proxy.context import ProxyContext


@dataclass(frozen=True, slots=True)
class ServeArgs:
    """The serving command's options, as the user gave them (None: not given)."""

    backend: str | None = None
    host: str | None = None
    port: int | None = None
    config: Path | None = None
    log_file: Path | None = None
    log_max_bytes: int = 0
    log_backups: int = 5
    drain_seconds: float | None = None
    log_level: str | None = None
    verbose: int = 0
    disable_auth: bool = False
    workers: str | None = None
    worker: str | None = None


def default_backend(config: Config, chosen: str | None) -> str:
    """--backend / PROXY_BACKEND, else the first configured backend, else `mock`."""
    if chosen:
        return chosen
    return config.backends[0].name if config.source else "mock"


def summary(ctx: ProxyContext, host: str, port: int, log_file: Path | None) -> Summary:
    rows = []
    for backend in ctx.config.backends:
        default = " (default)" if backend is ctx.router.default else ""
        models = ", ".join(f"{c} → {b}" for c, b in backend.model_mapping.items()) or "-"
        url = backend.url or "in-process"
        rows.append((backend.name + default, backend.protocol, url, _key_text(backend), models))
    notes = [
        f"endpoints: {', '.join(sorted(ROUTES))}",
        f"config: {ctx.config.source or 'none (built-in presets)'}; log file: {log_file or 'none'}",
        f"client auth: {_auth_state(ctx.config)}",
    ]
    return Summary(f"louter {__version__} on http://{host}:{port}", rows, notes)


def _key_text(backend: Backend) -> str:
    """Whether the backend has a key (a pool: how many), never the key."""
    missing = f"missing ({backend.key_env})" if backend.key_env else ""
    if backend.api_keys:
        count = len(backend.api_keys)
        return f"{count} key{'s' if count > 1 else ''}" + (f", {missing}" if missing else "")
    return "set" if backend.api_key else (missing or "-")


def _auth_state(config: Config) -> str:
    count = len(config.auth.keys)
    if config.auth.on:
        return f"on ({count} key{'s' if count > 1 else ''})"
    return "off (disabled)" if count else "off (no [keys.NAME])"


class CannotListen(Exception):
    """The listening socket could not be opened (its `OSError` is the cause)."""


async def _run(
    ctx: ProxyContext,
    host: str,
    port: int,
    log_file: Path | None,
    screen: Screen,
    drain: Drain,
) -> int:
    """Serve until stopped; the exit status: 0 after a graceful stop, 1 after a second
    SIGTERM/SIGINT cut the drain short."""
    status = 0
    async with trio.open_nursery() as nursery:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:

            async def serving(task_status: trio.TaskStatus[int]) -> None:
                await serve(ctx, host, port, drain=drain, task_status=task_status)
                nursery.cancel_scope.cancel()  # drained: stop listening for signals

            try:
                bound = await nursery.start(serving)
            except OSError as exc:
                raise CannotListen(str(exc)) from exc
            screen.summary(summary(ctx, host, bound, log_file))
            await _on_signals(signals, ctx, drain, screen, log_file)
            status = 1
            nursery.cancel_scope.cancel()
    return status


async def _on_signals(
    signals: AsyncIterator[int],
    ctx: ProxyContext,
    drain: Drain,
    screen: Screen,
    log_file: Path | None,
) -> None:
    """SIGHUP reopens the log file; the first SIGTERM/SIGINT starts the graceful stop,
    the second returns (stop at once)."""
    async for signum in signals:
        name = signal.Signals(signum).name
        if signum == signal.SIGHUP:
            ctx.journal.reopen()
            state = "log file reopened" if log_file else "no log file"
            screen.say(f"SIGHUP, {state}")
        elif drain.requested.is_set():
            screen.say(f"{name} again, stopping now")
            return
        else:
            screen.say(
                f"{name}, stopping: no new connections, "
                f"up to {drain.seconds:g}s for the answers in flight"
            )
            drain.start()


def complain(screen: Screen, message: str) -> None:
    """An error line on stderr (bold red on a terminal; never read as markup: messages
    contain `[table]`)."""
    screen.say(message, "bold red")


def _warn_open(screen: Screen, config: Config, host: str) -> None:
    """Auth off on an address other machines can reach: say so on stderr."""
    if config.auth.on or is_loopback(host.strip("[]")):
        return
    why = "disabled" if config.auth.keys else "no [keys.NAME] configured"
    screen.say(
        f"WARNING: client auth is OFF ({why}) and louter listens on {host}: "
        "anyone who can reach this address can use every backend and its keys. "
        "Configure [keys.NAME] (louter keys new NAME) or listen on 127.0.0.1.",
        "bold red",
    )


def run_serve(args: ServeArgs) -> int:
    """Start the proxy with these options and serve until stopped; the exit status (2: a
    bad config or log file, 1: cannot listen or a second signal cut the drain short)."""
    screen = Screen()
    level = level_of(args.log_level, args.verbose)
    start = Start(args.config, args.backend, args.disable_auth, args.log_file,
                  args.log_max_bytes, args.log_backups, args.drain_seconds, args.log_level,
                  args.verbose)  # fmt: skip
    link = spec = None
    if args.worker is not None:
        from louter.group.worker import Link  # noqa: PLC0415 - the worker group: loaded by it only

        spec = WorkerSpec.parse(args.worker)
        link = Link(socket.socket(fileno=spec.control))
    try:
        cfg = start.load()
        if args.workers is not None and spec is None:
            count = worker_count(args.workers)
            ctx = build_context(cfg, default_backend=default_backend(cfg, args.backend))
        else:
            ctx = _context(start, cfg, screen, level, spec)
    except ConfigError as exc:
        complain(screen, exc.message)
        return 2
    except OSError as exc:
        complain(screen, f"cannot open log file {args.log_file}: {exc}")
        return 2
    drain = Drain(cfg.server.drain_seconds if args.drain_seconds is None else args.drain_seconds)
    listen_host = args.host or cfg.server.host
    listen_port = cfg.server.port if args.port is None else args.port
    if spec is not None and link is not None:
        from louter.cli.workers import run_worker  # noqa: PLC0415

        _settle_heap()
        return trio.run(run_worker, replace(ctx, group=link), spec, drain)
    _warn_open(screen, cfg, listen_host)
    if args.workers is not None:
        from louter.cli.workers import Group, supervise  # noqa: PLC0415

        group = Group(start, count, listen_host, listen_port, partial(check, start))
        log_file = args.log_file
        return supervise(group, ctx, screen, lambda c, h, p: summary(c, h, p, log_file))
    _settle_heap()
    status = 1
    try:
        status = trio.run(_run, ctx, listen_host, listen_port, args.log_file, screen, drain)
    except* CannotListen as group:  # trio reports a failed bind from inside its nursery
        reason = group.exceptions[0]
        complain(screen, f"cannot listen on {listen_host}:{listen_port}: {reason}")
    return status


# The cyclic collector's youngest generation is collected whenever the container objects
# allocated since its last pass outnumber those freed by this many. At CPython's default
# (700) a server with requests in flight crosses that every few dozen requests from their
# own live objects (coroutines, frames, parsed bodies) going up and down, and each pass
# walks all of them to find next to no garbage (the request path leaves no reference
# cycles: tests/proxy/test_request_memory.py). Measured over 10,000 requests at 64
# connections: 535 passes taking 17 us a request on a small chat, 3,500 taking 72 us on
# a 50 KB one with tools (S4), against 3 and 4 passes with this threshold. Cycles an
# error path leaves still go within 20,000 objects (one pass over that many: ~8 ms).
GEN0_THRESHOLD = 20_000


def _settle_heap() -> None:
    """Before serving: everything alive now (modules, config, context) lives as long as the
    process, so it leaves the collector's passes (which would otherwise stall requests for
    milliseconds whenever they scan the whole heap); the youngest generation's threshold
    is raised past what requests in flight allocate."""
    gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD)


def check(start: Start) -> str | None:
    """A reload's check of the config as it is now: None when it loads, else why not."""
    try:
        cfg = start.load()
        cfg.backend(default_backend(cfg, start.backend))
    except ConfigError as exc:
        return exc.message
    return None


def _context(
    start: Start, cfg: Config, screen: Screen, level: str | None, spec: WorkerSpec | None
) -> ProxyContext:
    """The proxy's context; a worker's log goes to its supervisor (`spec.log`)."""
    report: dict[str, object] = {"report": lambda message: complain(screen, message)}
    if spec is None:
        options = {**report, "max_bytes": start.log_max_bytes, "backups": start.log_backups}
    else:
        options = {**report, "sink": spec.log} if spec.log >= 0 else report
    return build_context(
        cfg,
        default_backend=default_backend(cfg, start.backend),
        log_file=start.log_file if spec is None else None,
        echo=None if level is None else echo_to(screen, level),
        echo_payloads=level == "debug",
        log_options=options,
        warn=lambda message: complain(screen, message),
    )
