"""`louter`: start the proxy. Parses arguments, loads the config, renders the summary."""

from __future__ import annotations

import gc
import secrets
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Annotated

import trio
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from louter import __version__
from louter.access import KEY_PREFIX, NAME, digest
from louter.cli.echo import LogLevel, echo_to, level_of
from louter.cli.workers import Group, Start, WorkerSpec, run_worker, supervise, worker_count
from louter.config import Backend, Config, is_loopback
from louter.errors import ConfigError
from louter.group.worker import Link
from louter.http.drain import Drain
from louter.proxy.app import ROUTES, build_context, serve
from louter.proxy.context import ProxyContext

app = typer.Typer(add_completion=False, help="louter: translate and route between LLM APIs.")


def default_backend(config: Config, chosen: str | None) -> str:
    """--backend / PROXY_BACKEND, else the first configured backend, else `mock`."""
    if chosen:
        return chosen
    return config.backends[0].name if config.source else "mock"


def summary(ctx: ProxyContext, host: str, port: int, log_file: Path | None) -> Table:
    table = Table(title=f"louter {__version__} on http://{host}:{port}", title_justify="left")
    for column in ("backend", "protocol", "url", "key", "models"):
        table.add_column(column)
    for backend in ctx.config.backends:
        key = _key_text(backend)
        default = " (default)" if backend is ctx.router.default else ""
        models = ", ".join(f"{c} → {b}" for c, b in backend.model_mapping.items()) or "-"
        table.add_row(
            escape(backend.name) + default,
            backend.protocol,
            escape(backend.url or "in-process"),
            escape(key),
            escape(models),
        )
    table.caption = (
        f"endpoints: {', '.join(sorted(ROUTES))}\n"
        f"config: {escape(ctx.config.source or 'none (built-in presets)')}; "
        f"log file: {escape(str(log_file or 'none'))}\n"
        f"client auth: {escape(_auth_state(ctx.config))}"
    )
    table.caption_justify = "left"
    return table


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
    console: Console,
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
            console.print(summary(ctx, host, bound, log_file))
            await _on_signals(signals, ctx, drain, console, log_file)
            status = 1
            nursery.cancel_scope.cancel()
    return status


async def _on_signals(
    signals: AsyncIterator[int],
    ctx: ProxyContext,
    drain: Drain,
    console: Console,
    log_file: Path | None,
) -> None:
    """SIGHUP reopens the log file; the first SIGTERM/SIGINT starts the graceful stop,
    the second returns (stop at once)."""
    async for signum in signals:
        name = signal.Signals(signum).name
        if signum == signal.SIGHUP:
            ctx.journal.reopen()
            state = "log file reopened" if log_file else "no log file"
            console.print(f"louter: SIGHUP, {state}", soft_wrap=True)
        elif drain.requested.is_set():
            console.print(f"louter: {name} again, stopping now", soft_wrap=True)
            return
        else:
            console.print(
                f"louter: {name}, stopping: no new connections, "
                f"up to {drain.seconds:g}s for the answers in flight",
                soft_wrap=True,
            )
            drain.start()


def _complain(console: Console, message: str) -> None:
    """An error line on stderr: no markup parsing (messages contain `[table]`), no wrapping."""
    console.print(Text(f"louter: {message}", style="bold red"), soft_wrap=True)


def _warn_open(console: Console, config: Config, host: str) -> None:
    """Auth off on an address other machines can reach: say so on stderr."""
    if config.auth.on or is_loopback(host.strip("[]")):
        return
    why = "disabled" if config.auth.keys else "no [keys.NAME] configured"
    console.print(
        Text(
            f"louter: WARNING: client auth is OFF ({why}) and louter listens on {host}: "
            "anyone who can reach this address can use every backend and its keys. "
            "Configure [keys.NAME] (louter keys new NAME) or listen on 127.0.0.1.",
            style="bold red",
        ),
        soft_wrap=True,
    )


def _version(value: bool) -> None:
    if value:
        typer.echo(f"louter {__version__}")
        raise typer.Exit()


@app.command()
def main_command(
    backend: Annotated[
        str | None,
        typer.Option(
            "--backend",
            "--default-backend",
            envvar="PROXY_BACKEND",
            help="Default backend for unmapped models.",
        ),
    ] = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on [127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [8080].")] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="config.toml (none: built-in presets, mock by default)."),
    ] = None,
    log_file: Annotated[
        Path | None, typer.Option("--log-file", help="Append every exchange as JSONL here.")
    ] = None,
    log_max_bytes: Annotated[
        int,
        typer.Option(
            "--log-max-bytes", min=0, help="Rotate the log file before it exceeds this [0: never]."
        ),
    ] = 0,
    log_backups: Annotated[
        int,
        typer.Option("--log-backups", min=0, help="Rotated log files kept (FILE.1 ...) [5]."),
    ] = 5,
    drain_seconds: Annotated[
        float | None,
        typer.Option(
            "--drain-seconds",
            min=0,
            help="On SIGTERM/SIGINT, time for answers in flight [config, else 120].",
        ),
    ] = None,
    log_level: Annotated[
        LogLevel | None,
        typer.Option(
            "--log-level",
            help="Print exchanges to stderr: debug (with bodies), info, warning/error "
            "(errors only). Default: none.",
        ),
    ] = None,
    verbose: Annotated[
        int,
        typer.Option("--verbose", "-v", count=True, help="-v: --log-level info; -vv: debug."),
    ] = 0,
    disable_auth: Annotated[
        bool,
        typer.Option(
            "--disable-auth", help="Accept requests without a louter key even if keys are set."
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    workers: Annotated[
        str | None,
        typer.Option(
            "--workers",
            help="Worker processes sharing the port under a supervisor (SIGHUP reloads the "
            "config): a number, or auto (the cores louter may use) [none: one process].",
        ),
    ] = None,
    worker: Annotated[str | None, typer.Option("--worker", hidden=True)] = None,
) -> None:
    """Start the louter proxy (`louter keys new NAME`: make a client key)."""
    console = Console(stderr=True)
    level = level_of(log_level and log_level.value, verbose)
    start = Start(config, backend, disable_auth, log_file, log_max_bytes, log_backups,
                  drain_seconds, log_level and log_level.value, verbose)  # fmt: skip
    link = spec = None
    if worker is not None:
        spec = WorkerSpec.parse(worker)
        link = Link(socket.socket(fileno=spec.control))
    try:
        cfg = start.load()
        if workers is not None and spec is None:
            count = worker_count(workers)
            ctx = build_context(cfg, default_backend=default_backend(cfg, backend))
        else:
            ctx = _context(start, cfg, console, level, spec)
    except ConfigError as exc:
        _complain(console, exc.message)
        raise typer.Exit(2) from None
    except OSError as exc:
        _complain(console, f"cannot open log file {log_file}: {exc}")
        raise typer.Exit(2) from None
    drain = Drain(cfg.server.drain_seconds if drain_seconds is None else drain_seconds)
    listen_host = host or cfg.server.host
    listen_port = cfg.server.port if port is None else port
    if spec is not None and link is not None:
        gc.freeze()
        raise typer.Exit(trio.run(run_worker, replace(ctx, group=link), spec, drain))
    _warn_open(console, cfg, listen_host)
    if workers is not None:
        group = Group(start, count, listen_host, listen_port, partial(_check, start))
        raise typer.Exit(supervise(group, ctx, console, lambda c, h, p: summary(c, h, p, log_file)))
    # Everything alive now (modules, config, context) lives as long as the process: keep
    # it out of the cyclic collector's full passes, which would otherwise stall requests
    # for milliseconds whenever they scan the whole heap.
    gc.freeze()
    try:
        status = trio.run(_run, ctx, listen_host, listen_port, log_file, console, drain)
    except* CannotListen as group:  # trio reports a failed bind from inside its nursery
        reason = group.exceptions[0]
        _complain(console, f"cannot listen on {listen_host}:{listen_port}: {reason}")
        raise typer.Exit(1) from None
    if status:
        raise typer.Exit(status)


def _check(start: Start) -> str | None:
    """A reload's check of the config as it is now: None when it loads, else why not."""
    try:
        cfg = start.load()
        cfg.backend(default_backend(cfg, start.backend))
    except ConfigError as exc:
        return exc.message
    return None


def _context(
    start: Start, cfg: Config, console: Console, level: str | None, spec: WorkerSpec | None
) -> ProxyContext:
    """The proxy's context; a worker's log goes to its supervisor (`spec.log`)."""
    report = {"report": lambda message: _complain(console, message)}
    if spec is None:
        options = {**report, "max_bytes": start.log_max_bytes, "backups": start.log_backups}
    else:
        options = {**report, "sink": spec.log} if spec.log >= 0 else report
    return build_context(
        cfg,
        default_backend=default_backend(cfg, start.backend),
        log_file=start.log_file if spec is None else None,
        echo=None if level is None else echo_to(console, level),
        echo_payloads=level == "debug",
        log_options=options,
        warn=lambda message: _complain(console, message),
    )


keys_app = typer.Typer(add_completion=False, help="Client keys for \\[keys.NAME].")


@keys_app.callback()
def keys_group() -> None:
    """Client keys for [keys.NAME] tables."""


@keys_app.command("new")
def keys_new(name: Annotated[str, typer.Argument(help="The key's name in the config.")]) -> None:
    """Print a fresh client key (shown once: louter keeps only its SHA-256) and the config
    lines that accept it."""
    if NAME.fullmatch(name) is None:
        Console(stderr=True).print("louter: a key name is 1-64 letters, digits, '_', '.' or '-'")
        raise typer.Exit(2)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    typer.echo(f"key: {key}")
    typer.echo("")
    typer.echo(f"[keys.{name}]")
    typer.echo(f'key_sha256 = "{digest(key).hex()}"')
    typer.echo('models = ["*"]')


top_app = typer.Typer(add_completion=False)


@top_app.command()
def top_command(
    url: Annotated[str, typer.Argument(help="The louter to watch.")] = "http://127.0.0.1:8080",
    key: Annotated[
        str | None,
        typer.Option(envvar="LOUTER_KEY", help="An admin key (auth on: for the exchanges)."),
    ] = None,
) -> None:
    """A live dashboard of a running louter: per backend req/s, latency, TTFT, tokens/s,
    errors and state; rate-limited requests; budgets; the newest exchanges."""
    from louter.cli.top import run_top  # noqa: PLC0415 - textual loads only here

    run_top(url, key)


def main() -> None:
    if sys.argv[1:2] == ["keys"]:  # `louter keys ...`; every other argument list starts it
        keys_app(args=sys.argv[2:], prog_name="louter keys")
        return
    if sys.argv[1:2] == ["top"]:  # `louter top [URL]`
        top_app(args=sys.argv[2:], prog_name="louter top")
        return
    app()


if __name__ == "__main__":  # a worker of `louter --workers N` (louter/cli/workers.py)
    main()
