"""The JSONL log never takes louter down: a full disk, a file size limit, a file that
cannot be written; SIGHUP reopens it; `--log-max-bytes` rotates it (issue 16, issue 25).

The disk-full cases run louter as a subprocess against a real failing target: a small
tmpfs (needs root, as in CI) and RLIMIT_FSIZE (needs nothing)."""

from __future__ import annotations

import errno
import resource
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from louter.logs.reader import Follower
from louter.proxy.journal import Journal
from tests.cli.test_cli import clean_env
from tests.hardening import (
    Louter,
    log_entries,
    logged_ids,
    require_root_mount,
    wait_logged,
)

DIRECTIONS = ["client_request", "backend_request", "backend_response", "client_response"]
FAILED = "cannot write the log file"
RESUMED = "is written again"


def _fail_then_recover(louter: Louter, log: Path, make_room: Callable[[], None]) -> None:
    """Log until writes fail, keep being answered, make room, be logged again."""
    before = [louter.chat() for _ in range(2)]
    for _ in range(300):
        louter.chat("x" * 400)
        if louter.metric("log_write_errors_total") > 0:
            break
    else:
        pytest.fail("the log never failed to be written")
    failing = louter.metric("log_write_errors_total")
    unlogged = [louter.chat("y" * 2000) for _ in range(5)]  # larger: cannot fit either
    assert louter.metric("log_write_errors_total") >= failing + 5
    assert louter.stderr.count(FAILED) == 1, louter.stderr  # once, not per request
    assert RESUMED not in louter.stderr
    every_line = logged_ids(log)  # the file holds whole lines only, a torn one removed
    assert all(every_line[i] == DIRECTIONS for i in before)
    assert not set(unlogged) & set(every_line)

    make_room()
    after = [louter.chat() for _ in range(3)]
    logged = wait_logged(log, after)
    assert all(logged[i] == DIRECTIONS for i in after)
    assert louter.stderr.count(RESUMED) == 1, louter.stderr
    assert louter.stderr.count(FAILED) == 1
    assert louter.stop() == 0


def test_file_size_limit_efbig_then_lifted(tmp_path: Path) -> None:
    log = tmp_path / "louter.jsonl"

    def limit() -> None:  # in the child: writes past 24 KB fail with EFBIG, no SIGXFSZ
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (24 * 1024, resource.RLIM_INFINITY))

    with Louter(tmp_path, "--log-file", str(log), preexec_fn=limit) as louter:
        infinite = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
        pid = louter.proc.pid
        _fail_then_recover(
            louter, log, lambda: resource.prlimit(pid, resource.RLIMIT_FSIZE, infinite)
        )
    assert log.stat().st_size > 24 * 1024


@pytest.fixture
def mount_point(tmp_path: Path):  # type: ignore[no-untyped-def]
    point = tmp_path / "mnt"
    point.mkdir()
    yield point
    subprocess.run(["umount", str(point)], capture_output=True, check=False)


def test_full_tmpfs_then_room_again(tmp_path: Path, mount_point: Path) -> None:
    require_root_mount(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)])
    filler = mount_point / "filler"
    filler.write_bytes(b"\0" * 40 * 1024)
    log = mount_point / "louter.jsonl"
    with Louter(tmp_path, "--log-file", str(log)) as louter:
        _fail_then_recover(louter, log, filler.unlink)
        assert "No space left on device" in louter.stderr


def test_unwritable_file_then_writable(tmp_path: Path, mount_point: Path) -> None:
    """A log file that turns unwritable while louter has it open. (`mount -o remount,ro`
    is refused while a file is open for writing, so the file is made immutable instead,
    on a small ext4 image: writes fail with EPERM.)"""
    image = tmp_path / "log.img"
    with image.open("wb") as file:
        file.truncate(4 * 1024 * 1024)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, capture_output=True)
    require_root_mount(["mount", "-o", "loop", str(image), str(mount_point)])
    log = mount_point / "louter.jsonl"
    with Louter(tmp_path, "--log-file", str(log)) as louter:
        first = louter.chat()
        subprocess.run(["chattr", "+i", str(log)], check=True)
        try:
            unlogged = [louter.chat() for _ in range(4)]
            assert louter.metric("log_write_errors_total") == 4
            assert louter.stderr.count(FAILED) == 1, louter.stderr
            assert "Operation not permitted" in louter.stderr
        finally:
            subprocess.run(["chattr", "-i", str(log)], check=True)
        after = louter.chat()
        logged = wait_logged(log, [after])
        assert logged[first] == logged[after] == DIRECTIONS
        assert not set(unlogged) & set(logged)
        assert louter.stderr.count(RESUMED) == 1
        assert "4 exchange(s) could not be logged" in louter.stderr
        assert louter.stop() == 0


def test_journal_on_a_device_that_is_always_full() -> None:
    """In process: /dev/full fails every write with ENOSPC; nothing raises, one report."""
    reports: list[str] = []
    journal = Journal(Path("/dev/full"), clock=time.time, report=reports.append)
    for number in range(5):
        journal.write({"request_id": str(number), "direction": "client_request"})
    assert journal.write_errors.value == 5
    assert len(reports) == 1
    assert reports[0].startswith(f"{FAILED} /dev/full: [Errno {errno.ENOSPC}]")
    journal.close()


def test_sighup_reopens_the_log(tmp_path: Path) -> None:
    log = tmp_path / "louter.jsonl"
    moved = tmp_path / "louter.jsonl.1"
    with Louter(tmp_path, "--log-file", str(log)) as louter:
        old = [louter.chat() for _ in range(3)]
        log.rename(moved)
        between = louter.chat()  # still goes to the renamed file
        louter.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while "SIGHUP, log file reopened" not in louter.stderr:
            assert time.monotonic() < deadline, louter.stderr
            time.sleep(0.02)
        new = [louter.chat() for _ in range(3)]
        assert louter.proc.poll() is None
        assert louter.stop() == 0
    assert set(logged_ids(moved)) == {*old, between}
    assert set(logged_ids(log)) == set(new)
    assert all(d == DIRECTIONS for d in logged_ids(moved, log).values())


def test_sighup_without_log_file_is_harmless(tmp_path: Path) -> None:
    with Louter(tmp_path) as louter:
        louter.proc.send_signal(signal.SIGHUP)
        louter.chat()
        louter.proc.send_signal(signal.SIGHUP)
        assert louter.chat()
        assert louter.stop() == 0
        assert "SIGHUP, no log file" in louter.stderr


def test_rotation_keeps_whole_exchanges(tmp_path: Path) -> None:
    log = tmp_path / "louter.jsonl"
    args = ("--log-file", str(log), "--log-max-bytes", "9000", "--log-backups", "2")
    with Louter(tmp_path, *args) as louter:
        sent = [louter.chat("z" * (n * 37 % 500)) for n in range(40)]
        assert louter.stop() == 0
    files = sorted(tmp_path.glob("louter.jsonl*"))
    assert [f.name for f in files] == ["louter.jsonl", "louter.jsonl.1", "louter.jsonl.2"]
    kept: list[str] = []
    for path in (log.with_name("louter.jsonl.2"), log.with_name("louter.jsonl.1"), log):
        assert path.stat().st_size <= 9000
        ids = logged_ids(path)
        assert all(d == DIRECTIONS for d in ids.values())  # each exchange whole, once
        kept.extend(ids)
    assert len(kept) == len(set(kept))  # no exchange in two files
    assert kept == sent[-len(kept) :]  # the newest, none missing in between
    assert len(kept) >= 4

    # log-parser reads the rotated set (oldest first) as one log
    done = subprocess.run(
        ["log-parser", "--file", "-", "stats"],
        input=b"".join(p.read_bytes() for p in (files[2], files[1], files[0])),
        capture_output=True,
        env=clean_env(),
        check=True,
    )
    assert b'"bad_lines":0' in done.stdout.replace(b" ", b"")
    assert f'"lines":{4 * len(kept)}'.encode() in done.stdout.replace(b" ", b"")


async def test_follow_survives_rotation(tmp_path: Path) -> None:
    """In process: a follower of the log path reads every line across rotations, each
    once, in order (between two of its polls at most one rotation here)."""
    log = tmp_path / "louter.jsonl"
    journal = Journal(log, clock=time.time, max_bytes=600, backups=3)
    follower = Follower(log)
    seen: list[bytes] = []
    for number in range(30):
        journal.write({"request_id": f"r{number:03d}", "direction": "client_request"})
        seen.extend(follower.read())
        await trio.sleep(0)
    seen.extend(follower.read())
    follower.close()
    journal.close()
    assert [line.split(b'"')[3] for line in seen] == [f"r{n:03d}".encode() for n in range(30)]
    assert log.with_name("louter.jsonl.1").exists()
    assert log_entries(log)


def test_journal_reopen_failing_keeps_the_old_file(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    reports: list[str] = []
    journal = Journal(folder / "louter.jsonl", clock=time.time, report=reports.append)
    journal.write({"request_id": "a", "direction": "client_request"})
    folder.rename(tmp_path / "moved")  # the path cannot be opened again
    journal.reopen()
    journal.write({"request_id": "b", "direction": "client_request"})
    journal.close()
    assert len(reports) == 1
    assert reports[0].startswith("cannot reopen the log file")
    assert [e["request_id"] for e in log_entries(tmp_path / "moved" / "louter.jsonl")] == ["a", "b"]


def test_rotation_without_backups_starts_the_file_again(tmp_path: Path) -> None:
    log = tmp_path / "louter.jsonl"
    journal = Journal(log, clock=time.time, max_bytes=200, backups=0)
    for number in range(10):
        journal.write({"request_id": f"r{number}", "direction": "client_request"})
    journal.close()
    assert [p.name for p in tmp_path.iterdir()] == ["louter.jsonl"]
    kept = [e["request_id"] for e in log_entries(log)]
    assert kept[-1] == "r9"
    assert 1 <= len(kept) < 10
    assert log.stat().st_size <= 200
