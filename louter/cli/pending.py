"""Console scripts whose features are not built yet: they say so and exit non-zero."""

from __future__ import annotations

import sys

NOT_YET = {
    "test-runner": "probing a backend directly",
    "diagnostic": "running the feature matrix through every front door",
}


def _pending(name: str) -> None:
    sys.stderr.write(
        f"{name}: not implemented yet ({NOT_YET[name]} is planned for a later release).\n"
    )
    raise SystemExit(3)


def test_runner() -> None:
    _pending("test-runner")


def diagnostic() -> None:
    _pending("diagnostic")
