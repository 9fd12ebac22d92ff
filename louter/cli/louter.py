"""`louter`: start the proxy (or `louter keys ...`, `louter top`).

The serving process reads its usual arguments itself (`louter.cli.serve_argv`) and never
loads typer or the pydantic typer uses to coerce them (6 MiB of a serving process); help,
the version, argument errors and the other commands go to the typer app in
`louter.cli.commands`.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from louter.cli.serve import default_backend, run_serve, summary
from louter.cli.serve_argv import parse

__all__ = ["default_backend", "main", "summary"]
_TYPER_NAMES = ("app", "keys_app", "top_app", "main_command")


def __getattr__(name: str) -> Any:
    """The typer apps, loaded when first asked for (`from louter.cli.louter import app`)."""
    if name in _TYPER_NAMES:
        from louter.cli import commands  # noqa: PLC0415 - typer loads only here

        return getattr(commands, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    if sys.argv[1:2] == ["keys"]:  # `louter keys ...`; every other argument list starts it
        from louter.cli.commands import keys_app  # noqa: PLC0415

        keys_app(args=sys.argv[2:], prog_name="louter keys")
        return
    if sys.argv[1:2] == ["top"]:  # `louter top [URL]`
        from louter.cli.commands import top_app  # noqa: PLC0415

        top_app(args=sys.argv[2:], prog_name="louter top")
        return
    args = parse(sys.argv[1:], os.environ)
    if args is not None:
        sys.exit(run_serve(args))
    from louter.cli.commands import app  # noqa: PLC0415

    app()


if __name__ == "__main__":  # a worker of `louter --workers N` (louter/cli/workers.py)
    main()
