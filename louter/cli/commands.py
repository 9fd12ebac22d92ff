"""The typer commands of `louter`: serving (`louter [OPTIONS]`), `louter keys`, `louter top`.

`louter.cli.louter.main` reads the common serving arguments itself
(`louter.cli.serve_argv`) and loads this module only for what it leaves to typer: help,
the version, errors in the arguments, and the other commands.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from louter import __version__
from louter.access import KEY_PREFIX, NAME, digest
from louter.cli.echo import LogLevel
from louter.cli.serve import ServeArgs, run_serve

app = typer.Typer(add_completion=False, help="louter: translate and route between LLM APIs.")


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
    args = ServeArgs(backend, host, port, config, log_file, log_max_bytes, log_backups,
                     drain_seconds, log_level and log_level.value, verbose, disable_auth,
                     workers, worker)  # fmt: skip
    status = run_serve(args)
    if status:
        raise typer.Exit(status)


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
