"""The JSONL journal: lines written whole and in order, payloads spliced in unchanged."""

from __future__ import annotations

from pathlib import Path

import orjson

from louter.proxy.exchange import Exchange
from louter.proxy.journal import Journal


def read(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_large_payloads_with_line_breaks_are_written_whole(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    journal = Journal(path, clock=lambda: 1_700_000_000.5)
    body = {"messages": [{"role": "user", "content": "x" * 60_000}], "n": 1}
    pretty = orjson.dumps(body, option=orjson.OPT_INDENT_2)  # raw line breaks inside
    exchange = Exchange(journal, "r-1", "/v1/chat/completions", "openai")
    exchange.log("backend_request", raw_payload=pretty)
    exchange.log("client_response", status=200, raw_payload=b'{"ok":true}')
    journal.close()
    first, second = read(path)
    assert first["payload"] == body and first["direction"] == "backend_request"
    assert second["payload"] == {"ok": True}
    assert first["timestamp"] == "2023-11-14T22:13:20.500Z"


def test_many_entries_of_one_exchange_keep_their_order(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    journal = Journal(path, clock=lambda: 0.0)
    exchange = Exchange(journal, "r-2", "/v1/messages", "anthropic")
    big = orjson.dumps({"text": "y" * 20_000})
    for attempt in range(300):  # more pieces than one writev call takes
        exchange.log("error", status=502, raw_payload=big, attempt=attempt)
    exchange.flush()
    journal.close()
    entries = read(path)
    assert [e["attempt"] for e in entries] == list(range(300))
    assert all(e["payload"] == {"text": "y" * 20_000} for e in entries)
