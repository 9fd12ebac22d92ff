"""Running wrk (Debian's `wrk`, one thread, closed loop) with `post.lua`, reading its summary.

The Lua script formats the request once and, in `done()`, writes a JSON summary to a
file, so wrk's own text output is never parsed. wrk takes whole seconds for `-d`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import orjson

from louter.bench.model import BenchError, WrkSummary
from louter.bench.processes import pinned

SCRIPT = Path(__file__).with_name("post.lua")
INSTALL_HINT = "install it with `apt-get install wrk` (Debian/Ubuntu)"
TIMEOUT_S = 10  # wrk's per-request timeout; a slower answer counts as an error


def locate(wrk: str) -> str:
    """The path of the wrk executable.

    Raises:
        BenchError (exit code 2): wrk is not installed.
    """
    found = shutil.which(wrk)
    if found is None:
        raise BenchError(f"{wrk} not found: {INSTALL_HINT}", exit_code=2)
    return found


def version(wrk: str) -> str:
    """wrk's version line (`wrk -v` prints it, then its usage, and exits 1)."""
    done = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10, check=False)
    first = (done.stdout or done.stderr).strip().splitlines()
    return first[0].split(" Copyright")[0] if first else "wrk"


def parse_summary(text: str) -> WrkSummary:
    """The summary post.lua's done() wrote.

    Raises:
        BenchError: the text is not such a summary.
    """
    try:
        return WrkSummary.from_json(orjson.loads(text))
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise BenchError(f"unreadable wrk summary {text[:200]!r}: {exc}") from None


def run(
    wrk: str,
    url: str,
    body: Path,
    summary: Path,
    *,
    connections: int,
    seconds: int,
    cpu: int | None,
) -> WrkSummary:
    """POST `body` to `url` (base URL and path) for `seconds` over `connections`
    keep-alive connections, wrk pinned to `cpu`.

    Raises:
        BenchError: wrk failed or wrote no summary.
    """
    base, _, path = url.partition("://")[2].partition("/")
    argv = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", f"--timeout={TIMEOUT_S}s"]
    argv += ["-s", str(SCRIPT), f"http://{base}"]
    env = os.environ | {
        "LOUTER_BENCH_BODY": str(body),
        "LOUTER_BENCH_PATH": f"/{path}",
        "LOUTER_BENCH_OUT": str(summary),
    }
    summary.unlink(missing_ok=True)
    try:
        done = subprocess.run(
            pinned(argv, cpu),
            env=env,
            capture_output=True,
            text=True,
            timeout=seconds + TIMEOUT_S + 30,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"wrk did not finish against {url}") from None
    if done.returncode != 0 or not summary.exists():
        detail = (done.stderr or done.stdout).strip()[-800:]
        raise BenchError(f"wrk failed (exit {done.returncode}) against {url}: {detail}")
    return parse_summary(summary.read_text())
