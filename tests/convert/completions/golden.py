"""Shared helpers of the Completions converter tests: the golden fixtures in
tests/fixtures/completions/ and the neutral objects' JSON notation.

`LOUTER_REGEN=1 pytest tests/convert/completions` rewrites the expected parts of the
fixtures from the code; the git diff is the review.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from louter.convert.model import Part, ResponseMeta, StreamEvent
from louter.convert.sse import SSEDecoder, SSEEvent

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "completions"
REGEN = os.environ.get("LOUTER_REGEN") == "1"
BACKEND_MODEL = "backend-model"
META = ResponseMeta(id="cmpl-louter-1", model="client-model", created=1700000000)
USAGE_META = dataclasses.replace(META, include_usage=True)


def ids(n: int) -> str:
    return f"call_louter_{n}"


def neutral_json(value: Any) -> Any:
    """A neutral object as JSON: parts and stream events tagged with their class name,
    None fields left out."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        if isinstance(value, Part | StreamEvent):
            out["type"] = type(value).__name__
        for field in dataclasses.fields(value):
            item = getattr(value, field.name)
            if item is not None:
                out[field.name] = neutral_json(item)
        return out
    if isinstance(value, tuple | list):
        return [neutral_json(item) for item in value]
    return value


def load_cases(kind: str, pattern: str = "*.json") -> list[Any]:
    paths = sorted((FIXTURES / kind).glob(pattern))
    assert paths, f"no fixtures in {kind}"
    return [pytest.param(path, id=path.stem) for path in paths]


def write_case(path: Path, case: dict[str, Any]) -> None:
    path.write_bytes(orjson.dumps(case, option=orjson.OPT_INDENT_2) + b"\n")


def splits(raw: bytes) -> Iterator[list[bytes]]:
    """Whole, byte by byte, and cut in two at every offset."""
    yield [raw]
    yield [raw[i : i + 1] for i in range(len(raw))]
    for i in range(1, len(raw)):
        yield [raw[:i], raw[i:]]


def sse_events(chunks: Iterable[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    out: list[SSEEvent] = []
    for chunk in chunks:
        out.extend(decoder.feed(chunk))
    return out + decoder.flush()
