"""`read_head` and `with_model`: what the Chat Completions door reads of a body without
parsing it whole, and the body with another model name written into its bytes."""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from louter.convert.openai.head import read_head, with_model


def test_the_head_holds_what_the_door_reads() -> None:
    body = b'{"model": "m", "stream": true, "messages": [], "tools": [{"type": "function"}],'
    body += b' "max_tokens": null, "x": {"model": "inner"}}'
    head = read_head(body)
    assert head is not None
    assert (head.model, head.stream, head.has_tools) == ("m", True, True)
    assert head.has("max_tokens") and not head.has("max_completion_tokens")
    assert not head.has("temperature")


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'["model", "m"]',  # not an object
        b'{"model": "m", "tools": {}}',  # tools of another shape: the full parse decides
        b'{"model": "m", "x": "\xff"}',  # not UTF-8 (msgspec skips it unchecked)
        b'{"model": "m"} trailing',
    ],
)
def test_what_the_head_cannot_read_is_left_to_the_full_parse(body: bytes) -> None:
    assert read_head(body) is None


def test_the_top_level_model_changes_and_a_nested_one_does_not() -> None:
    body = b'{"model": "m", "meta": {"model": "m"}}'
    assert with_model(body, "m", "n") == b'{"model": "n", "meta": {"model": "m"}}'


def test_only_the_model_value_changes() -> None:
    body = b'{ "stream":false,"model" :\t"m",  "n": 1.0e2, "s": "a\\u00e9\\/b", "t": [ ] }'
    out = with_model(body, "m", "upstream/m-2")
    assert out == body.replace(b'"m",', b'"upstream/m-2",')


@pytest.mark.parametrize(
    "body",
    [
        b'{"model": "m", "model": "m"}',  # a duplicate key: the upstream would read either
        b'{"meta": {"model": "m"}, "model": "m"}',  # the first found is a nested one
        b'{"mod\\u0065l": "m", "meta": {"model": "m"}}',  # the top-level one is escaped
        b'{"x \\"model": "m", "model": "m"}',  # the first is in another key
    ],
)
def test_a_body_that_cannot_be_changed_in_place_is_refused(body: bytes) -> None:
    head = read_head(body)
    assert head is not None and head.model == "m"
    assert with_model(body, "m", "other") is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)
model_names = st.text(alphabet="abcAB09.-_:/@+", min_size=1, max_size=12)


@given(
    rest=st.dictionaries(st.sampled_from(["model", "meta", "x", "messages"]), json_values),
    model=model_names,
    new=model_names,
    ascii_only=st.booleans(),
    escape_key=st.booleans(),
)
def test_with_model_is_right_or_declines(
    rest: dict[str, Any], model: str, new: str, ascii_only: bool, escape_key: bool
) -> None:
    document = {**rest, "model": model}
    body = json.dumps(document, ensure_ascii=ascii_only).encode()
    if escape_key:  # the top-level key written with an escape (no other escapes of it)
        body = body.replace(b'"model": ', b'"mod\\u0065l": ', 1)
    head = read_head(body)
    assert head is not None
    top = orjson.loads(body)["model"]
    out = with_model(body, top, new)
    if out is not None:
        assert orjson.loads(out) == {**orjson.loads(body), "model": new}
    elif not escape_key:  # one plain top-level key and no other: it must be done in place
        assert len(re.findall(rb'"model": ', body)) > 1


def test_unset_means_absent() -> None:
    head = read_head(b'{"model": "m", "temperature": 0}')
    assert head is not None and head.temperature == 0 and head.max_tokens is msgspec.UNSET
