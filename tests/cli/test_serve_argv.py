"""The serving command's fast argument reader (`louter.cli.serve_argv`) against typer's.

`louter [OPTIONS]` reads its arguments without typer (which would load pydantic into the
serving process); whatever it reads must come out exactly as the typer command reads it,
and whatever it cannot judge it leaves to typer (None), so messages stay typer's.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from louter.cli import commands
from louter.cli.serve import ServeArgs
from louter.cli.serve_argv import COUNTED, FLAGS, VALUED, parse

SAMPLES = [
    [],
    ["--port", "9000", "--host", "0.0.0.0"],
    ["--port=9000", "--host=::1", "--config", "louter.toml"],
    ["--config=dir/louter.toml", "--log-file", "x.jsonl", "--log-max-bytes", "1048576"],
    ["--log-backups", "0", "--log-max-bytes=0", "--drain-seconds", "2.5"],
    ["--drain-seconds=0", "--log-level", "debug", "-v"],
    ["--log-level=warning", "-vv", "--verbose", "-v"],
    ["--backend", "a", "--default-backend", "b"],
    ["--default-backend=x=y", "--disable-auth"],
    ["--workers", "auto", "--disable-auth", "--disable-auth"],
    ["--worker", "slot=0,generation=1,listen=3,control=4,log=-1", "--backend", "bench"],
    ["--port", "+80", "--drain-seconds", ".5", "--backend", ""],
]
LEFT_TO_TYPER = [
    ["--help"],
    ["--version"],
    ["--port"],
    ["--port", "http"],
    ["--port", "-1"],
    ["--log-max-bytes", "-5"],
    ["--drain-seconds", "1e3"],
    ["--log-level", "loud"],
    ["--config", ""],
    ["--host", "--port"],
    ["serve"],
    ["--no-such-option"],
    ["--verbose=2"],
    ["--disable-auth=yes"],
    ["-vx"],
    ["--", "--port", "1"],
]


def typer_reads(argv: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> ServeArgs:
    """What the typer command passes on for `argv` (serving replaced by a recorder)."""
    seen: list[ServeArgs] = []
    monkeypatch.setattr(commands, "run_serve", lambda args: seen.append(args) or 0)
    result = CliRunner(env={"PROXY_BACKEND": None, **env}).invoke(commands.app, argv)
    assert result.exit_code == 0, result.output
    assert len(seen) == 1
    return seen[0]


@pytest.mark.parametrize("argv", SAMPLES, ids=" ".join)
@pytest.mark.parametrize("env", [{}, {"PROXY_BACKEND": "from-env"}, {"PROXY_BACKEND": ""}])
def test_fast_reader_agrees_with_typer(
    argv: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = parse(argv, env)
    assert fast is not None
    assert fast == typer_reads(argv, env, monkeypatch)


@pytest.mark.parametrize("argv", LEFT_TO_TYPER, ids=" ".join)
def test_what_it_cannot_judge_is_left_to_typer(argv: list[str]) -> None:
    assert parse(argv, {}) is None


def test_values_are_typed() -> None:
    args = parse(["--config", "c.toml", "--port", "8", "--drain-seconds", "3"], {})
    assert args == ServeArgs(config=Path("c.toml"), port=8, drain_seconds=3.0)
    assert isinstance(args.drain_seconds, float)


def test_every_option_of_the_typer_command_is_known() -> None:
    """An option added to the typer command must be added to the fast reader too (or the
    fast reader would hand every command line that uses it to typer, silently)."""
    command = typer.main.get_command(commands.app)
    declared = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    known = set(VALUED) | set(FLAGS) | set(COUNTED) | {"-v", "--help", "--version"}
    assert declared - {"--help"} <= known
    assert set(VALUED) | set(FLAGS) | set(COUNTED) <= declared
