"""Reading and analysing louter's JSONL log (the engine behind `log-parser`).

I/O is confined to `reader` (files, gzip, stdin, following) and `replay.send` (an
injected `httpx.Client`); `query`, `tools`, `pairs`, `stats` and `sketch` are pure
reducers over entry dicts; `views` builds rich renderables and `browser` is the textual
TUI. Nothing here prints: the CLI (`louter.cli.log_parser`) renders.
"""

from __future__ import annotations

from louter.logs.pairs import Exchange, Pairer, pair_entries, select_exchanges
from louter.logs.query import Query, QueryError, build_query
from louter.logs.reader import LineCounts, LogFileError, follow_lines, open_log, parse_lines
from louter.logs.stats import Stats
from louter.logs.tools import ToolUse, function_record, tool_use

__all__ = [
    "Exchange",
    "LineCounts",
    "LogFileError",
    "Pairer",
    "Query",
    "QueryError",
    "Stats",
    "ToolUse",
    "build_query",
    "follow_lines",
    "function_record",
    "open_log",
    "pair_entries",
    "parse_lines",
    "select_exchanges",
    "tool_use",
]
