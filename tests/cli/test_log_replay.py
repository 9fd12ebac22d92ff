"""`log-parser replay` (`louter.cli.log_replay`): requests rebuilt from the log, as curl,
and sent through an injected httpx client."""

from __future__ import annotations

import shlex

import httpx
import orjson

from louter.cli.log_replay import REPLAY_HEADER, build_request, curl_command, send

LOGGED = {
    "request_id": "r1",
    "direction": "client_request",
    "method": "POST",
    "path": "/v1beta/models/m:generateContent?key=[REDACTED]&alt=sse",
    "headers": {
        "host": "127.0.0.1:8080",
        "content-length": "99",
        "authorization": "[REDACTED]",
        "content-type": "application/json",
        "user-agent": "sdk/1.0",
    },
    "payload": {"contents": [{"parts": [{"text": 'it\'s "quoted"'}]}]},
}


def test_build_request_drops_connection_headers_and_secrets() -> None:
    request = build_request(LOGGED, [("X-Goog-Api-Key", "k2"), ("User-Agent", "replay")])
    assert request.method == "POST"
    assert request.path == "/v1beta/models/m:generateContent?alt=sse"
    assert request.headers == (
        ("content-type", "application/json"),
        ("x-goog-api-key", "k2"),
        ("user-agent", "replay"),
        (REPLAY_HEADER, "r1"),
    )
    assert orjson.loads(request.body or b"") == LOGGED["payload"]
    assert request.problem is None


def test_build_request_bodies() -> None:
    text = build_request({**LOGGED, "payload": "{bad"})
    assert text.body == b"{bad"
    unlogged = {k: v for k, v in LOGGED.items() if k != "payload"}
    assert build_request(unlogged).problem == "the body was not logged (log_requests = false)"
    get = build_request({"request_id": "g", "path": "/v1/models?key=[REDACTED]"})
    assert (get.method, get.path, get.body, get.problem) == ("GET", "/v1/models", None, None)


def test_curl_command_round_trips_through_the_shell() -> None:
    request = build_request(LOGGED)
    words = shlex.split(curl_command(request, "http://127.0.0.1:9/"))
    assert words[:5] == [
        "curl",
        "-sS",
        "-X",
        "POST",
        "http://127.0.0.1:9/v1beta/models/m:generateContent?alt=sse",
    ]
    assert words[-2] == "--data-binary"
    assert orjson.loads(words[-1]) == LOGGED["payload"]
    assert "x-louter-replay-of: r1" in words


def test_send_reports_status_and_transport_errors() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, headers={"x-louter-request-id": "new-1"})

    ticks = iter([1.0, 1.25])
    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        report = send(build_request(LOGGED), client, "http://louter", clock=lambda: next(ticks))
    assert report["status"] == 201 and report["replay_request_id"] == "new-1"
    assert report["latency_ms"] == 250.0
    assert report["url"] == "http://louter/v1beta/models/m:generateContent?alt=sse"
    assert seen[0].headers[REPLAY_HEADER] == "r1"
    assert orjson.loads(seen[0].content) == LOGGED["payload"]

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with httpx.Client(transport=httpx.MockTransport(refuse)) as client:
        failed = send(build_request(LOGGED), client, "http://louter")
        skipped = send(
            build_request({"request_id": "s", "headers": {"content-length": "5"}}),
            client,
            "http://louter",
        )
    assert failed["status"] is None and failed["error"] == "ConnectError: refused"
    assert skipped["skipped"].startswith("the body was not logged")
