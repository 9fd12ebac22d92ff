"""`log-parser replay`: the logged client requests, rebuilt, re-sent or written as curl.

A request is rebuilt from its `client_request` entry: method, path (the logged target),
headers and body. Headers that describe the old connection (`host`, `content-length`,
...) are dropped, and so are secrets, which the journal redacted: supply fresh ones with
`extra_headers`. Query parameters the journal redacted (`?key=`) are dropped the same way.
The body is the logged payload: a JSON document is re-serialised (equal, not byte-equal),
a body that was not JSON was logged as text and is sent as that text. Every replayed
request carries `x-louter-replay-of: <original request id>`.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

Entry = dict[str, Any]

REDACTED = "[REDACTED]"
REPLAY_HEADER = "x-louter-replay-of"
DROPPED_HEADERS = frozenset(
    {"host", "content-length", "connection", "keep-alive", "transfer-encoding",
     "accept-encoding", "upgrade", "te", "trailer", "proxy-connection"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ReplayRequest:
    request_id: str
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes | None
    problem: str | None = None  # why it cannot be replayed faithfully, if it cannot


def _path(entry: Entry) -> str:
    target = str(entry.get("path") or entry.get("endpoint") or "/")
    path, sep, query = target.partition("?")
    kept = [item for item in query.split("&") if item and not item.endswith("=" + REDACTED)]
    return path + ("?" + "&".join(kept) if sep and kept else "")


def _body(entry: Entry) -> tuple[bytes | None, str | None]:
    if "payload" not in entry:
        length = str((entry.get("headers") or {}).get("content-length") or "0")
        if length not in ("", "0"):
            return None, "the body was not logged (log_requests = false)"
        return None, None
    payload = entry["payload"]
    if isinstance(payload, str):
        return payload.encode("utf-8"), None
    return orjson.dumps(payload), None


def build_request(entry: Entry, extra_headers: Iterable[tuple[str, str]] = ()) -> ReplayRequest:
    """The request to re-send for one `client_request` entry."""
    extra = tuple((name.lower(), value) for name, value in extra_headers)
    replaced = {name for name, _ in extra}
    logged = entry.get("headers") if isinstance(entry.get("headers"), dict) else {}
    headers = [
        (str(name).lower(), str(value))
        for name, value in (logged or {}).items()
        if str(name).lower() not in DROPPED_HEADERS | replaced and value != REDACTED
    ]
    request_id = str(entry.get("request_id") or "")
    headers += [*extra, (REPLAY_HEADER, request_id)]
    body, problem = _body(entry)
    method = str(entry.get("method") or ("POST" if body is not None else "GET"))
    return ReplayRequest(request_id, method, _path(entry), tuple(headers), body, problem)


def curl_command(request: ReplayRequest, base_url: str) -> str:
    """A shell command that sends `request` to `base_url`."""
    words = ["curl", "-sS", "-X", request.method, base_url.rstrip("/") + request.path]
    for name, value in request.headers:
        words += ["-H", f"{name}: {value}"]
    if request.body is not None:
        words += ["--data-binary", request.body.decode("utf-8", "replace")]
    return shlex.join(words)


def send(
    request: ReplayRequest,
    client: httpx.Client,
    base_url: str,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Any]:
    """Send one request (the answer is read whole) and report what happened."""
    report: dict[str, Any] = {
        "request_id": request.request_id,
        "method": request.method,
        "url": base_url.rstrip("/") + request.path,
    }
    if request.problem is not None:
        return report | {"status": None, "skipped": request.problem}
    started = clock()
    try:
        response = client.request(
            request.method, report["url"], headers=list(request.headers), content=request.body
        )
    except httpx.HTTPError as exc:
        return report | {"status": None, "error": f"{type(exc).__name__}: {exc}"}
    return report | {
        "status": response.status_code,
        "latency_ms": round((clock() - started) * 1000, 3),
        "replay_request_id": response.headers.get("x-louter-request-id"),
        "error": None,
    }
