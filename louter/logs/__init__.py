"""Reading and analysing louter's JSONL log (the engine behind `log-parser`).

Records and reducers only: `reader` reads the log (files, gzip, stdin, following);
`query`, `tools`, `pairs`, `stats` and `sketch` are pure reducers over entry dicts.
Nothing here renders or talks HTTP (tests/test_layers.py pins it): the rich views, the
textual browser and the httpx replay live in `louter.cli` (`log_views`, `log_browser`,
`log_replay`), which also prints.
"""

from __future__ import annotations

from louter.logs.pairs import Pair, Pairer, pair_entries, select_pairs
from louter.logs.query import Query, QueryError, build_query
from louter.logs.reader import LineCounts, LogFileError, follow_lines, open_log, parse_lines
from louter.logs.stats import Stats
from louter.logs.tools import ToolUse, function_record, tool_use

__all__ = [
    "Pair",
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
    "select_pairs",
    "tool_use",
]
