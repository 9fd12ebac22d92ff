"""log-parser's rich renderings (`louter.cli.log_views`), one of every record kind."""

from __future__ import annotations

import io

from rich.console import Console

from louter.cli import log_views as views
from louter.logs.pairs import pair_entries, to_dict
from louter.logs.stats import Stats
from louter.logs.tools import function_record
from tests.logs.test_log_parser_support import dialect_entries, responses_entries


def test_views_render_every_record_kind() -> None:
    console = Console(file=io.StringIO(), width=120, color_system=None)
    exchanges = list(pair_entries(dialect_entries()))
    record = function_record(responses_entries()[1])
    assert record is not None
    stats = Stats()
    for item in dialect_entries():
        stats.feed(item)
    console.print(views.function_line(record))
    console.print(views.pair_line(to_dict(exchanges[0])))
    console.print(views.stats_view(stats.result()))
    console.print(views.pair_view(exchanges[0]))
    console.print(views.replay_line({"request_id": "r", "status": None, "skipped": "why"}))
    console.print(views.replay_line({"request_id": "r", "status": None, "error": "refused"}))
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "call fc_2: shell({bad json)  (arguments are not valid JSON)" in out
    assert "gem-1 /v1beta/models/qwen3-coder:generateContent qwen3-coder → qwen 200" in out
    assert "tool calls (4)" in out and "percentiles: nearest rank" in out
    assert "functionDeclarations" in out and "skipped: why" in out and "refused" in out
