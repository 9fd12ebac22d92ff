"""`bulk_array`: a block of `data: ` events as one JSON array text (issue 24: split as it
comes, only the first and last pieces trimmed). Every other shape is refused or gives an
array that does not decode to `count` values, so the caller's generic path decides."""

from __future__ import annotations

import pytest

from louter.convert.openai import chunks as typed
from louter.convert.openai.stream_parser import bulk_array

CASES = [  # (block, bulk_array's answer, whether it decodes to `count` chunks)
    (b"data: {}\n\n", (b"[{}]", 1, False), True),
    (b"data: {}", (b"[{}]", 1, False), True),
    (b"data: {}\n\ndata: {}\n\n", (b"[{},{}]", 2, False), True),
    (b"data: {}\n\ndata: [DONE]\n\n", (b"[{}]", 1, True), True),
    (b"data: {}\n\ndata: {}\n\ndata: [DONE]", (b"[{},{}]", 2, True), True),
    (b"data: [DONE]\n\n", (b"[]", 0, True), True),
    (b"data: [DONE]\n\n\n", (b"[]", 0, True), True),
    (b"data: \n\n", (b"[]", 1, False), False),  # one event, no value: the count tells
    (b"data: {}\n\ndata: \n\n", (b"[{},]", 2, False), False),
    (b"data: {} {}\n\n", (b"[{} {}]", 1, False), False),  # two values in one event
    (b"data: {}\n\nevent: x\ndata: {}\n\n", (b"[{}\n\nevent: x\ndata: {}]", 1, False), False),
    (b"data: [DONE]\n\ndata: {}\n\n", (b"[[DONE],{}]", 2, False), False),
]


@pytest.mark.parametrize(("block", "expected", "valid"), CASES)
def test_blocks(block: bytes, expected: tuple[bytes, int, bool], valid: bool) -> None:
    assert bulk_array(block) == expected
    array, count, _ = expected
    decoded = typed.usages(array)
    assert (decoded is not None and len(decoded) == count) == valid


OTHER = [b"", b"event: x\ndata: {}\n\n", b"data: {}\r\n\r\n", b": hi\n\n"]


@pytest.mark.parametrize("block", OTHER)
def test_other_shapes_are_refused(block: bytes) -> None:
    assert bulk_array(block) is None
