"""Console scripts whose features are not built yet: they say so and exit non-zero."""

from __future__ import annotations

import sys

NOT_YET = {
    "log-parser": "analysing louter's JSONL logs",
    "test-runner": "probing a backend directly",
    "diagnostic": "running the feature matrix through every front door",
    "xml-tool-parse": "extracting Qwen-style XML tool calls",
}


def _pending(name: str) -> None:
    sys.stderr.write(
        f"{name}: not implemented yet ({NOT_YET[name]} is planned for a later release).\n"
    )
    raise SystemExit(3)


def log_parser() -> None:
    _pending("log-parser")


def test_runner() -> None:
    _pending("test-runner")


def diagnostic() -> None:
    _pending("diagnostic")


def xml_tool_parse() -> None:
    _pending("xml-tool-parse")
