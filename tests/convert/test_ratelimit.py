"""Rate-limit headers renamed between dialects (louter/convert/ratelimit.py)."""

from __future__ import annotations

from louter.convert.dialect import ANTHROPIC, GEMINI, OPENAI, RESPONSES
from louter.convert.ratelimit import client_headers

NOW = 1_800_000_000.0
OPENAI_HEADERS = [
    (b"content-type", b"application/json"),
    (b"x-ratelimit-limit-requests", b"60"),
    (b"x-ratelimit-remaining-tokens", b"149984"),
    (b"x-ratelimit-reset-tokens", b"6m0s"),
    (b"retry-after", b"3"),
    (b"retry-after-ms", b"2500"),
    (b"x-other", b"dropped"),
]


def test_openai_names_become_anthropic_ones_with_a_reset_time() -> None:
    out = client_headers(OPENAI_HEADERS, OPENAI, ANTHROPIC, NOW)
    assert out == [
        (b"anthropic-ratelimit-requests-limit", b"60"),
        (b"anthropic-ratelimit-tokens-remaining", b"149984"),
        (b"anthropic-ratelimit-tokens-reset", b"2027-01-15T08:06:00Z"),
        (b"retry-after", b"3"),
        (b"retry-after-ms", b"2500"),
    ]


def test_same_names_pass_unchanged() -> None:
    expected = [h for h in OPENAI_HEADERS if h[0].startswith((b"x-ratelimit", b"retry"))]
    assert client_headers(OPENAI_HEADERS, OPENAI, OPENAI, NOW) == expected
    assert client_headers(OPENAI_HEADERS, OPENAI, RESPONSES, NOW) == expected
    assert client_headers(OPENAI_HEADERS, OPENAI, GEMINI, NOW) == expected  # none of its own


def test_anthropic_names_become_openai_ones_and_lose_what_openai_cannot_say() -> None:
    headers = [
        (b"anthropic-ratelimit-requests-remaining", b"59"),
        (b"anthropic-ratelimit-tokens-reset", b"2027-01-15T08:00:30Z"),
        (b"anthropic-ratelimit-input-tokens-limit", b"80000"),  # no OpenAI name
    ]
    assert client_headers(headers, ANTHROPIC, OPENAI, NOW) == [
        (b"x-ratelimit-remaining-requests", b"59"),
        (b"x-ratelimit-reset-tokens", b"30s"),
    ]


def test_a_gemini_backend_has_no_rate_limit_headers_but_retry_after_passes() -> None:
    out = client_headers(OPENAI_HEADERS, GEMINI, ANTHROPIC, NOW)
    assert out == [(b"retry-after", b"3"), (b"retry-after-ms", b"2500")]


def test_a_reset_that_does_not_parse_is_kept_as_it_came() -> None:
    headers = [(b"x-ratelimit-reset-requests", b"soon")]
    out = client_headers(headers, OPENAI, ANTHROPIC, NOW)
    assert out == [(b"anthropic-ratelimit-requests-reset", b"soon")]
