"""Every dialect of `DIALECTS` is wired all the way: a front door (`DOORS`), a POST route
to it, and a `diagnostic --skip-<name>-frontend` flag. The places "Adding a dialect" in
the README names; a forgotten one fails here, not silently."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from louter.cli.diagnostic import app as diagnostic
from louter.convert.dialect import DIALECTS
from louter.proxy.app import PREFIX_ROUTES, ROUTES
from louter.proxy.doors import DOORS

NAMES = sorted(DIALECTS)


def test_the_doors_are_the_dialects() -> None:
    assert sorted(DOORS) == NAMES
    assert all(spec.dialect == name for name, spec in DOORS.items())


@pytest.mark.parametrize("name", NAMES)
def test_every_dialect_has_a_post_route(name: str) -> None:
    """A fixed path, or a path prefix whose handler checks the method (Gemini's models/)."""
    endpoints = [*ROUTES.values(), *(endpoint for _, endpoint in PREFIX_ROUTES)]
    methods = {e.method for e in endpoints if e.dialect == name}
    assert methods & {"POST", "*"}, f"no POST route for {name}"


def test_every_door_can_be_skipped_by_diagnostic() -> None:
    result = CliRunner().invoke(diagnostic, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for name in NAMES:
        assert f"--skip-{name}-frontend" in result.stdout, name
