#!/usr/bin/env python3
"""A stand-in for a cloud OpenAI-compatible API, so the tutorials run without an account.

    python3 tutorials/stand_in_cloud.py [--port 9901] [--name Cloud] [--key KEY ...]

It speaks the OpenAI Chat Completions API (`POST /v1/chat/completions`, JSON and SSE,
tool calls, usage) plus `GET /v1/models` and `GET /health`, on 127.0.0.1, using only the
Python standard library. Its answers are deterministic:

- plain request: `<name> answer to: "<last user text>"`;
- tools declared and the last message is the user's: one call to the tool that
  `tool_choice` names, else the first tool whose name appears in the user's text, else
  the first tool. Its arguments follow the tool's JSON schema: a string is the user's
  text after its last colon (the whole text when it has none), integers 1, numbers 1.5,
  booleans true, enums their first value;
- last message is a tool result: `<name> answer to tool result: "<result>"`.

With `--key` (repeatable) a request must carry `Authorization: Bearer <one of them>`,
else it gets OpenAI's 401. Each request is logged as one line on stderr, the key masked.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def mask(key: str) -> str:
    return key if len(key) <= 8 else f"{key[:3]}…{key[-4:]}"


def value_for(schema: dict[str, Any], text: str) -> Any:
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type", "string")
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if kind == "array":
        return [value_for(schema.get("items", {}), text)]
    if kind == "object":
        return {k: value_for(v, text) for k, v in schema.get("properties", {}).items()}
    return text.rsplit(":", 1)[-1].strip()


def pick_tool(body: dict[str, Any], text: str) -> dict[str, Any]:
    tools = [t.get("function", t) for t in body["tools"]]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        name = choice.get("function", {}).get("name")
        return next((t for t in tools if t.get("name") == name), tools[0])
    return next((t for t in tools if t.get("name", "").lower() in text.lower()), tools[0])


class Cloud:
    def __init__(self, name: str, keys: list[str]) -> None:
        self.name = name
        self.keys = keys
        self.count = 0
        self.lock = threading.Lock()

    def answer(self, body: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
        """(text, tool call or None) for a chat request."""
        messages = body["messages"]
        last = messages[-1]
        if last.get("role") == "tool":
            results: list[str] = []
            for message in reversed(messages):
                if message.get("role") != "tool":
                    break
                results.insert(0, text_of(message.get("content")))
            return f'{self.name} answer to tool result: "{" | ".join(results)}"', None
        user: dict[str, Any] = next((m for m in reversed(messages) if m.get("role") == "user"), {})
        text = text_of(user.get("content"))
        if body.get("tools") and body.get("tool_choice") != "none":
            tool = pick_tool(body, text)
            args = value_for({"type": "object", **tool.get("parameters", {})}, text)
            return "", {"name": tool["name"], "arguments": json.dumps(args)}
        return f'{self.name} answer to: "{text}"', None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    cloud: Cloud

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        pass

    def _log(self, status: int, note: str = "") -> None:
        auth = self.headers.get("authorization", "")
        key = mask(auth.removeprefix("Bearer ").strip()) if auth else "none"
        sys.stderr.write(
            f"[{self.cloud.name}] {self.command} {self.path} {status} key={key}{note}\n"
        )

    def _json(self, status: int, payload: Any) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _error(self, status: int, message: str, kind: str, code: str | None = None) -> None:
        self._log(status)
        self._json(
            status, {"error": {"message": message, "type": kind, "param": None, "code": code}}
        )

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if self.path == "/health":
            self._json(200, {"status": "ok"})
        elif self.path in ("/v1/models", "/models"):
            model = {"id": "stand-in", "object": "model", "created": 0, "owned_by": self.cloud.name}
            self._json(200, {"object": "list", "data": [model]})
        else:
            self._error(404, f"unknown path {self.path}", "invalid_request_error")

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        raw = self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.path not in ("/v1/chat/completions", "/chat/completions"):
            return self._error(404, f"unknown path {self.path}", "invalid_request_error")
        auth = self.headers.get("authorization", "")
        if self.cloud.keys and auth.removeprefix("Bearer ").strip() not in self.cloud.keys:
            return self._error(401, "Incorrect API key provided.", "invalid_request_error",
                               "invalid_api_key")  # fmt: skip
        try:
            body = json.loads(raw)
            assert isinstance(body.get("messages"), list) and body["messages"]
        except (ValueError, AssertionError):
            return self._error(
                400, "a non-empty messages list is required", "invalid_request_error"
            )
        with self.cloud.lock:
            self.cloud.count += 1
            number = self.cloud.count
        text, call = self.cloud.answer(body)
        prompt = sum(len(text_of(m.get("content")).split()) for m in body["messages"])
        done = len((call["arguments"] if call else text).split()) or 1
        usage = {"prompt_tokens": prompt, "completion_tokens": done, "total_tokens": prompt + done}
        base = {"id": f"chatcmpl-{self.cloud.name.lower()}-{number}", "created": int(time.time()),
                "model": body.get("model", "stand-in")}  # fmt: skip
        calls = [{"id": f"call_{number}_0", "type": "function", "function": call}] if call else None
        finish = "tool_calls" if call else "stop"
        self._log(200, f" model={base['model']} stream={bool(body.get('stream'))}")
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": None if call else text}
            if calls:
                message["tool_calls"] = calls
            choice = {"index": 0, "message": message, "finish_reason": finish}
            self._json(
                200, {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
            )
            return None
        self._stream(base, text, calls, finish, usage, body)
        return None

    def _stream(self, base: dict[str, Any], text: str, calls: list[dict[str, Any]] | None,
                finish: str, usage: dict[str, Any], body: dict[str, Any]) -> None:  # fmt: skip
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()

        def chunk(delta: dict[str, Any], reason: str | None = None, **extra: Any) -> None:
            choice = {"index": 0, "delta": delta, "finish_reason": reason}
            event = {**base, "object": "chat.completion.chunk", "choices": [choice], **extra}
            self._send(b"data: " + json.dumps(event).encode() + b"\n\n")

        chunk({"role": "assistant", "content": ""})
        if calls:
            call = calls[0]
            head = {**call, "function": {"name": call["function"]["name"], "arguments": ""}}
            chunk({"tool_calls": [{"index": 0, **head}]})
            args = {"arguments": call["function"]["arguments"]}
            chunk({"tool_calls": [{"index": 0, "function": args}]})
        else:
            words = text.split(" ")
            for i, word in enumerate(words):
                chunk({"content": word if i == len(words) - 1 else word + " "})
        chunk({}, finish)
        if (body.get("stream_options") or {}).get("include_usage"):
            event = {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}
            self._send(b"data: " + json.dumps(event).encode() + b"\n\n")
        self._send(b"data: [DONE]\n\n")
        self._send(b"")

    def _send(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9901)
    parser.add_argument("--name", default="Cloud", help="named in every answer")
    parser.add_argument("--key", action="append", default=[], help="accepted API key")
    args = parser.parse_args()
    Handler.cloud = Cloud(args.name, args.key)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    sys.stderr.write(f"[{args.name}] stand-in cloud on http://{args.host}:{args.port}\n")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
