"""The serving command's arguments read without typer, for the common case.

typer (0.29 on) coerces every option through a pydantic `TypeAdapter`: importing pydantic
and building the adapters costs the serving process about 5 MiB of its 40 MiB budget, and
typer itself another 1.2 MiB, for a dozen options. `parse(argv, environ)` reads exactly
what the typer command in `louter.cli.commands` accepts (`--opt VALUE`, `--opt=VALUE`,
`-v`/`-vv`, `PROXY_BACKEND`), and gives up (None) on anything else: `--help`,
`--version`, an unknown option, a value it would have to judge (a port that is not a
number, a negative size, a log level not in the list). typer then reads the arguments
and says what is wrong in its own words, so an error reads the same either way.
`tests/cli/test_serve_argv.py` checks both readers agree, option by option.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from louter.cli.echo import LogLevel
from louter.cli.serve import ServeArgs

ENV_BACKEND = "PROXY_BACKEND"
_COUNT = re.compile(r"\d+")
_INTEGER = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(r"\d+(\.\d*)?|\.\d+")


def _count(text: str) -> int | None:
    """A number of 0 or more (`min=0` options)."""
    return int(text) if _COUNT.fullmatch(text) else None


def _integer(text: str) -> int | None:
    return int(text) if _INTEGER.fullmatch(text) else None


def _seconds(text: str) -> float | None:
    """Seconds of 0 or more, in plain decimal notation."""
    return float(text) if _DECIMAL.fullmatch(text) else None


def _path(text: str) -> Path | None:
    return Path(text) if text else None


def _level(text: str) -> str | None:
    """One of `--log-level`'s choices (`echo.LogLevel`)."""
    try:
        return LogLevel(text).value
    except ValueError:
        return None


# option -> (ServeArgs field, reader of its value: None when typer should judge it)
VALUED: dict[str, tuple[str, Callable[[str], object]]] = {
    "--backend": ("backend", str),
    "--default-backend": ("backend", str),
    "--host": ("host", str),
    "--port": ("port", _integer),
    "--config": ("config", _path),
    "--log-file": ("log_file", _path),
    "--log-max-bytes": ("log_max_bytes", _count),
    "--log-backups": ("log_backups", _count),
    "--drain-seconds": ("drain_seconds", _seconds),
    "--log-level": ("log_level", _level),
    "--workers": ("workers", str),
    "--worker": ("worker", str),
}
FLAGS = {"--disable-auth": "disable_auth"}
COUNTED = {"--verbose": "verbose"}  # and -v, -vv, ...


def parse(argv: Sequence[str], environ: Mapping[str, str]) -> ServeArgs | None:
    """The options in `argv` (the arguments after the program name), or None when typer
    should read them (see the module docstring)."""
    values: dict[str, object] = {}
    verbose = 0
    rest = list(argv)
    rest.reverse()
    while rest:
        arg = rest.pop()
        name, equals, inline = arg.partition("=")
        if name in VALUED:
            if not equals and not rest:
                return None  # an option without its value: typer says so
            text = inline if equals else rest.pop()
            field, read = VALUED[name]
            value = read(text)
            if value is None or (not equals and text.startswith("-")):
                return None
            values[field] = value
        elif arg in FLAGS:
            values[FLAGS[arg]] = True
        elif arg in COUNTED:
            verbose += 1
        elif len(arg) > 1 and arg.strip("v") == "-":  # -v, -vv, -vvv
            verbose += len(arg) - 1
        else:
            return None  # --help, --version, a positional, anything unknown
    if "backend" not in values and environ.get(ENV_BACKEND):
        values["backend"] = environ[ENV_BACKEND]
    return ServeArgs(**values, verbose=verbose)  # type: ignore[arg-type]
