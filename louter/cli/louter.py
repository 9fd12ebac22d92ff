"""`louter`: start the proxy. Parses arguments, loads the config, renders the summary."""

from __future__ import annotations

import gc
import os
import signal
from pathlib import Path
from typing import Annotated

import trio
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from louter import __version__
from louter.cli.echo import LogLevel, echo_to, level_of
from louter.config import Config, load_config
from louter.errors import ConfigError
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
        key = (
            "set"
            if backend.api_key
            else (f"missing ({backend.key_env})" if backend.key_env else "-")
        )
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
        f"log file: {escape(str(log_file or 'none'))}"
    )
    table.caption_justify = "left"
    return table


async def _run(
    ctx: ProxyContext, host: str, port: int, log_file: Path | None, console: Console
) -> None:
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(serve, ctx, host, port)
        console.print(summary(ctx, host, bound, log_file))
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                console.print(f"louter: {signal.Signals(signum).name}, shutting down")
                nursery.cancel_scope.cancel()
                break


def _complain(console: Console, message: str) -> None:
    """An error line on stderr: no markup parsing (messages contain `[table]`), no wrapping."""
    console.print(Text(f"louter: {message}", style="bold red"), soft_wrap=True)


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
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Start the louter proxy."""
    console = Console(stderr=True)
    level = level_of(log_level and log_level.value, verbose)
    try:
        cfg = load_config(config, os.environ)
        ctx = build_context(
            cfg,
            default_backend=default_backend(cfg, backend),
            log_file=log_file,
            echo=None if level is None else echo_to(console, level),
            echo_payloads=level == "debug",
        )
    except ConfigError as exc:
        _complain(console, exc.message)
        raise typer.Exit(2) from None
    except OSError as exc:
        _complain(console, f"cannot open log file {log_file}: {exc}")
        raise typer.Exit(2) from None
    listen_host = host or cfg.server.host
    listen_port = cfg.server.port if port is None else port
    # Everything alive now (modules, config, context) lives as long as the process: keep
    # it out of the cyclic collector's full passes, which would otherwise stall requests
    # for milliseconds whenever they scan the whole heap.
    gc.freeze()
    try:
        trio.run(_run, ctx, listen_host, listen_port, log_file, console)
    except* OSError as group:  # trio reports a failed bind from inside its nursery
        reason = group.exceptions[0]
        _complain(console, f"cannot listen on {listen_host}:{listen_port}: {reason}")
        raise typer.Exit(1) from None


def main() -> None:
    app()
