"""The journal batches lines per turn of trio's loop (issue 24): the exchanges finished in
one turn are written with one system call when the loop is about to wait, a batch past
`BATCH_BYTES` at once; `close` and `reopen` write what waits; a client served by the same
loop finds its exchange's lines as soon as it has the answer."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import trio

from louter.proxy.journal import BATCH_BYTES, Journal
from tests.conftest import StartLouter
from tests.hardening import Louter, log_entries, logged_ids

DIRECTIONS = ["client_request", "backend_request", "backend_response", "client_response"]


def _ids(path: Path) -> list[str]:
    return [entry["request_id"] for entry in log_entries(path)] if path.exists() else []


async def test_lines_of_one_turn_are_written_when_the_loop_waits(tmp_path: Path) -> None:
    log = tmp_path / "louter.jsonl"
    journal = Journal(log, clock=time.time)
    journal.batch_turns()
    try:
        for name in ("a", "b", "c"):
            journal.write({"request_id": name, "direction": "client_request"})
        assert log.read_bytes() == b""  # still this turn: nothing written yet
        await trio.sleep(0)  # the loop goes round: the batch is written before it waits
        assert _ids(log) == ["a", "b", "c"]
        journal.write({"request_id": "d", "direction": "client_request"})
        await trio.sleep(0)
        assert _ids(log) == ["a", "b", "c", "d"]
    finally:
        journal.close()


async def test_a_full_batch_is_written_at_once(tmp_path: Path) -> None:
    log = tmp_path / "louter.jsonl"
    journal = Journal(log, clock=time.time)
    journal.batch_turns()
    try:
        text = "x" * 1000
        count = 0
        while log.stat().st_size == 0:  # no checkpoint in this loop: the same turn
            journal.write({"request_id": f"r{count}", "direction": "error", "text": text})
            count += 1
            assert count * 1000 < 2 * BATCH_BYTES, "the batch was never written"
        assert log.stat().st_size >= BATCH_BYTES
        assert _ids(log) == [f"r{n}" for n in range(count)]
    finally:
        journal.close()


async def test_close_writes_the_batch_and_stops_batching(tmp_path: Path) -> None:
    log = tmp_path / "louter.jsonl"
    journal = Journal(log, clock=time.time)
    journal.batch_turns()
    journal.write({"request_id": "last", "direction": "client_response"})
    journal.close()  # no checkpoint in between
    assert _ids(log) == ["last"]
    await trio.sleep(0)  # the instrument is gone: nothing breaks when the loop waits
    assert _ids(log) == ["last"]


async def test_reopen_writes_the_batch_to_the_old_file(tmp_path: Path) -> None:
    log = tmp_path / "louter.jsonl"
    moved = tmp_path / "louter.jsonl.1"
    journal = Journal(log, clock=time.time)
    journal.batch_turns()
    try:
        journal.write({"request_id": "before", "direction": "client_response"})
        log.rename(moved)
        journal.reopen()  # SIGHUP: what was logged before it goes to the renamed file
        journal.write({"request_id": "after", "direction": "client_response"})
        await trio.sleep(0)
    finally:
        journal.close()
    assert _ids(moved) == ["before"]
    assert _ids(log) == ["after"]


async def test_a_failed_batch_counts_every_exchange_in_it() -> None:
    reports: list[str] = []
    journal = Journal(Path("/dev/full"), clock=time.time, report=reports.append)
    journal.batch_turns()
    try:
        for name in ("a", "b", "c"):
            journal.write({"request_id": name, "direction": "client_response"})
        await trio.sleep(0)
        assert journal.write_errors.value == 3  # as if each had been written alone
        assert len(reports) == 1
    finally:
        journal.close()


async def test_rotation_still_keeps_exchanges_whole_when_batched(tmp_path: Path) -> None:
    log = tmp_path / "louter.jsonl"
    journal = Journal(log, clock=time.time, max_bytes=600, backups=5)
    journal.batch_turns()
    try:
        for number in range(12):  # one turn: a single batch unless rotation splits it
            journal.write({"request_id": f"r{number:02d}", "direction": "client_request"})
    finally:
        journal.close()
    files = [log.with_name(f"louter.jsonl.{n}") for n in range(5, 0, -1)] + [log]
    kept = [i for path in files if path.exists() for i in _ids(path)]
    assert kept == [f"r{n:02d}" for n in range(12)]
    assert all(path.stat().st_size <= 600 for path in files if path.exists())


async def test_a_client_of_the_serving_loop_finds_its_lines_with_its_answer(
    start_louter: StartLouter, tmp_path: Path
) -> None:
    """Concurrent clients in louter's own loop read the file the moment they have their
    answer: their exchange is there, whole (it was written before their socket could
    be read)."""
    log = tmp_path / "louter.jsonl"
    base = await start_louter(log_file=log)
    missing: list[str] = []

    async def client(number: int) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            for turn in range(5):
                body = {"model": "m", "messages": [{"role": "user", "content": f"{number} {turn}"}]}
                answer = await http.post("/v1/chat/completions", json=body)
                assert answer.status_code == 200
                request_id = answer.headers["x-louter-request-id"]
                if logged_ids(log).get(request_id) != DIRECTIONS:
                    missing.append(request_id)

    async with trio.open_nursery() as nursery:
        for number in range(12):
            nursery.start_soon(client, number)
    assert missing == []
    assert len(logged_ids(log)) == 60


async def test_a_clean_stop_right_after_a_burst_loses_no_line(tmp_path: Path) -> None:
    """A louter process answers concurrent clients and gets SIGTERM the moment the last
    answer is in: every exchange is in the file, whole."""
    log = tmp_path / "louter.jsonl"
    ids: list[str] = []
    with Louter(tmp_path, "--log-file", str(log)) as louter:

        async def client(number: int) -> None:
            async with httpx.AsyncClient(base_url=louter.base, timeout=10) as http:
                for turn in range(4):
                    text = f"{number} {turn}"
                    body = {"model": "m", "messages": [{"role": "user", "content": text}]}
                    answer = await http.post("/v1/chat/completions", json=body)
                    assert answer.status_code == 200
                    ids.append(answer.headers["x-louter-request-id"])

        async with trio.open_nursery() as nursery:
            for number in range(10):
                nursery.start_soon(client, number)
        louter.proc.send_signal(signal.SIGTERM)
        assert louter.proc.wait(timeout=10) == 0
    logged = logged_ids(log)
    assert set(logged) == set(ids)
    assert all(directions == DIRECTIONS for directions in logged.values())
