"""`log-parser stats`: one pass over the entries, bounded state, one summary dict.

What is counted where:
- `entries`, `by_direction`: every entry.
- Per exchange, from its `client_response` entry (one per exchange, what the client got):
  `responses`, `by_format` (the client's dialect), `by_backend`, `by_model` (the client's
  model name), `by_status`, `streaming`, `latency` (`latency_ms`, end to end), `ttft`
  (streams only), `tokens` (the usage the client saw, in any dialect's shape) and
  `tool_calls` (calls the model made, by function name).
- `errors`: `error` entries by `error_type`; `failed_responses` counts client responses
  with a status of 400 or more (upstream errors relayed as they are have no error entry).
- `loops`: the loop guards' detections (`error` entries with `type: "loop_detected"`),
  by kind (text, tool_call) and by action (cut, warn, steer, block).

State is a few counters keyed by names (backends, models, statuses, tool names) plus two
`Sketch`es, so it stays small however long the log is. Percentiles are nearest-rank:
exact up to 10,000 values, then within 1 % relative error (see `louter.logs.sketch`);
each timing object says which (`method`).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from louter.logs.query import client_model
from louter.logs.sketch import Sketch
from louter.logs.tools import tool_use

Entry = dict[str, Any]

NONE = "-"  # the key for a missing backend, model or format
NUMBERS = (int, float)
SCALARS = frozenset({str, int, float, bool})
PERCENTILE_METHOD = (
    "nearest rank; exact up to 10000 values, past that a log-bucket sketch (DDSketch) "
    "within 1% relative error"
)

# (object key, input-tokens key, output-tokens key) per dialect, first match wins:
# OpenAI chat; Anthropic and OpenAI Responses; Gemini.
USAGE_SHAPES = (
    ("usage", "prompt_tokens", "completion_tokens"),
    ("usage", "input_tokens", "output_tokens"),
    ("usageMetadata", "promptTokenCount", "candidatesTokenCount"),
)


def usage_tokens(payload: Any) -> tuple[int, int] | None:
    """(input, output) tokens of a response payload in any dialect, or None."""
    if not isinstance(payload, dict):
        return None
    for key, tokens_in, tokens_out in USAGE_SHAPES:
        usage = payload.get(key)
        if isinstance(usage, dict) and (tokens_in in usage or tokens_out in usage):
            return _int(usage.get(tokens_in)), _int(usage.get(tokens_out))
    return None


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _key(value: Any) -> str:
    return NONE if value is None else str(value)


def _scalar(value: Any) -> Any:
    """`value` when it can key a counter as it is (the usual case), else its text: an
    entry holding a list where a name belongs must not stop the count."""
    return value if value is None or type(value) in SCALARS else str(value)


class Tokens:
    """Input/output token totals, overall and per backend and model."""

    def __init__(self) -> None:
        self.total = [0, 0]
        self.by_backend: dict[str, list[int]] = {}
        self.by_model: dict[str, list[int]] = {}

    def add(self, backend: str, model: str, tokens: tuple[int, int]) -> None:
        for sums in (self.total, _sums(self.by_backend, backend), _sums(self.by_model, model)):
            sums[0] += tokens[0]
            sums[1] += tokens[1]

    def result(self) -> dict[str, Any]:
        def pair(sums: list[int]) -> dict[str, int]:
            return {"in": sums[0], "out": sums[1]}

        return {
            "total": pair(self.total),
            "by_backend": {k: pair(v) for k, v in sorted(self.by_backend.items())},
            "by_model": {k: pair(v) for k, v in sorted(self.by_model.items())},
        }


def _sums(table: dict[str, list[int]], key: str) -> list[int]:
    sums = table.get(key)
    if sums is None:
        sums = table[key] = [0, 0]
    return sums


class Stats:
    """Feed entries one by one; `result()` is the summary (see the module docstring)."""

    def __init__(self) -> None:
        self.entries = 0
        # keyed by the raw values (None, ints): made strings once, in result()
        self.by_direction: Counter[Any] = Counter()
        self.by_format: Counter[Any] = Counter()
        self.by_backend: Counter[Any] = Counter()
        self.by_model: Counter[Any] = Counter()
        self.by_status: Counter[Any] = Counter()
        self.streaming: Counter[str] = Counter(stream=0, non_stream=0)
        self.errors: Counter[Any] = Counter()
        self.failed_responses = 0
        self.tool_calls: Counter[str] = Counter()
        self.loop_kinds: Counter[Any] = Counter()
        self.loop_actions: Counter[Any] = Counter()
        self.latency = Sketch()
        self.ttft = Sketch()
        self.tokens = Tokens()

    def feed(self, entry: Entry) -> None:
        self.entries += 1
        direction = _scalar(entry.get("direction"))
        self.by_direction[direction] += 1
        if direction == "client_response":
            self._response(entry)
        elif direction == "error":
            self.errors[_scalar(entry.get("error_type") or f"HTTP {entry.get('status')}")] += 1
            if entry.get("type") == "loop_detected":
                self.loop_kinds[_scalar(entry.get("kind"))] += 1
                self.loop_actions[_scalar(entry.get("action"))] += 1

    def _response(self, entry: Entry) -> None:
        get = entry.get
        backend, model, status = (
            _scalar(get("backend")),
            _scalar(client_model(entry)),
            _scalar(get("status")),
        )
        self.by_format[_scalar(get("format"))] += 1
        self.by_backend[backend] += 1
        self.by_model[model] += 1
        self.by_status[status] += 1
        if type(status) is int and status >= 400:
            self.failed_responses += 1
        self._timings(entry)
        payload = get("payload")
        tokens = usage_tokens(payload)
        if tokens is not None:
            self.tokens.add(_key(backend), _key(model), tokens)
        for call in tool_use(payload).calls:
            self.tool_calls[call["function"]["name"]] += 1

    def _timings(self, entry: Entry) -> None:
        latency = entry.get("latency_ms")
        if isinstance(latency, NUMBERS):
            self.latency.add(latency)
        if entry.get("stream"):
            self.streaming["stream"] += 1
            ttft = entry.get("ttft_ms")
            if isinstance(ttft, NUMBERS):
                self.ttft.add(ttft)
        else:
            self.streaming["non_stream"] += 1

    def result(self) -> dict[str, Any]:
        def table(counter: Counter[Any]) -> dict[str, int]:
            merged: Counter[str] = Counter()
            for key, count in counter.items():
                merged[_key(key)] += count
            return dict(sorted(merged.items(), key=lambda kv: (-kv[1], kv[0])))

        return {
            "entries": self.entries,
            "by_direction": table(self.by_direction),
            "responses": sum(self.by_status.values()),
            "by_format": table(self.by_format),
            "by_backend": table(self.by_backend),
            "by_model": table(self.by_model),
            "by_status": table(self.by_status),
            "streaming": dict(self.streaming),
            "latency": self.latency.summary(),
            "ttft": self.ttft.summary(),
            "tokens": self.tokens.result(),
            "errors": {
                "total": sum(self.errors.values()),
                "by_type": table(self.errors),
                "failed_responses": self.failed_responses,
            },
            "tool_calls": {
                "total": sum(self.tool_calls.values()),
                "by_name": table(self.tool_calls),
            },
            "loops": {
                "total": sum(self.loop_kinds.values()),
                "by_kind": table(self.loop_kinds),
                "by_action": table(self.loop_actions),
            },
            "percentiles": PERCENTILE_METHOD,
        }
