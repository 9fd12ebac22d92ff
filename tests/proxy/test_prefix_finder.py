"""`PrefixFinder`: whether a JSON body's bytes may hold the command prefix. It may say
yes without one; it must never say no when a string of the body holds it, however the
encoder wrote it (ASCII-only escapes, `\\/` for slashes, short escapes)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from louter.proxy.sessions.stage import PrefixFinder

ENCODERS = [
    lambda value: json.dumps(value).encode(),  # \\uXXXX for all but ASCII
    lambda value: json.dumps(value, ensure_ascii=False).encode(),
    lambda value: json.dumps(value).replace("/", "\\/").encode(),  # PHP's default
    lambda value: json.dumps(value).replace("!", "\\u0021").encode(),
]
prefixes = st.text(alphabet='!/#@"\\\n\té🙂abc', min_size=1, max_size=3)


@given(
    prefix=prefixes, before=st.text(max_size=6), after=st.text(max_size=6), which=st.integers(0, 3)
)
def test_a_prefix_in_a_string_is_never_missed(
    prefix: str, before: str, after: str, which: int
) -> None:
    body: Any = {"model": "m", "messages": [{"role": "user", "content": before + prefix + after}]}
    assert PrefixFinder(prefix)(ENCODERS[which](body))


def test_a_body_without_it_is_passed_over() -> None:
    body = json.dumps({"messages": [{"content": 'a\nb "c" d/e'}]}).encode()
    assert not PrefixFinder("!/")(body)
    assert PrefixFinder("!/")(body.replace(b"d/e", b"!\\/"))
