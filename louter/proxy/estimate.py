"""A quick token estimate of a request for the TPM reservation (`limits.py`), read from
the client's parsed JSON body: no neutral parse (a passthrough request is never parsed
into the neutral model, and the estimate must not make it so).

Input (`sized_input_tokens`): 4 bytes a token over the body's length as sent (its
`content-length`: messages, system prompt, tool declarations alike, with their JSON
punctuation), except media parts, which count a flat `MEDIA_TOKENS` each (their base64
says nothing about their tokens): a shallow scan of the body's lists of parts finds them
and takes their characters off. Without a length (a chunked body), `input_tokens` walks
the whole body: 4 characters a token over every string and object key. The length costs
nothing per byte (the walk of a 50 kB agent request costs about twice its JSON parse) and
is within ~10 % of the walk on text (a few tokens more on a tiny body: the punctuation).
Output: the request's own output limit in its dialect's field, else the configured
default. The reservation is settled to the backend's real usage afterwards, so the
estimate only has to be cheap and in the right order of magnitude.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from louter.convert.tokens import CHARS_PER_TOKEN, IMAGE_TOKENS

MEDIA_TOKENS = IMAGE_TOKENS
# Keys whose value is a media part (image, audio, file) in some dialect's request
MEDIA_KEYS = frozenset(
    {"image_url", "input_audio", "file", "file_data", "fileData", "inline_data", "inlineData"}
)
# Anthropic's media: {"type": "image" | "document", "source": {...}}
MEDIA_TYPES = frozenset({"image", "document"})
# Keys that never reach the model as text
SKIPPED = frozenset({"model", "stream", "stream_options", "metadata", "user"})
UNSCANNED = MEDIA_TOKENS * CHARS_PER_TOKEN  # bytes: a body this small is not scanned
MEDIA_DEPTH = 3  # lists of parts opened below the body: messages, content, tool results


def input_tokens(body: Mapping[str, Any]) -> int:
    """The estimated input tokens of a request body (any dialect)."""
    chars = 0
    media = 0
    stack: list[Any] = [v for k, v in body.items() if k not in SKIPPED]
    pop, push = stack.pop, stack.extend
    while stack:
        value = pop()
        kind = type(value)
        if kind is str:
            chars += len(value)
        elif kind is list:
            push(value)
        elif kind is dict:
            if value.get("type") in MEDIA_TYPES and "source" in value:
                media += 1
                continue
            for key, item in value.items():
                if key in MEDIA_KEYS:
                    media += 1
                else:
                    chars += len(key)
                    stack.append(item)
    return -(-chars // CHARS_PER_TOKEN) + media * MEDIA_TOKENS


def sized_input_tokens(size: int, body: Mapping[str, Any]) -> int:
    """The estimated input tokens of a body of `size` bytes (any dialect): its bytes less
    its media parts' characters, 4 a token, plus `MEDIA_TOKENS` per media part. A body
    of at most `UNSCANNED` bytes is not scanned (its bytes count no more tokens than one
    media part's flat count)."""
    if size <= UNSCANNED:
        return -(-size // CHARS_PER_TOKEN)
    media, chars = _media(body)
    return -(-max(0, size - chars) // CHARS_PER_TOKEN) + media * MEDIA_TOKENS


def _media(body: Mapping[str, Any]) -> tuple[int, int]:
    """The media parts of a body and their characters: parts sit in lists of dicts up to
    three lists deep (messages -> content -> a tool result's content; Gemini's contents
    -> parts), so only lists and their dicts are opened, never a string."""
    media = chars = 0
    lists = [v for v in body.values() if type(v) is list]
    for _ in range(MEDIA_DEPTH):
        deeper = []
        for items in lists:
            for item in items:
                if type(item) is not dict:
                    continue
                if item.get("type") in MEDIA_TYPES and "source" in item:
                    media += 1
                    chars += _chars(item)
                    continue
                if not MEDIA_KEYS.isdisjoint(item):
                    for key in MEDIA_KEYS.intersection(item):
                        value = item[key]
                        if type(value) is dict or type(value) is str:
                            media += 1
                            chars += _chars(value) + len(key)
                deeper += [value for value in item.values() if type(value) is list]
        if not deeper:
            break
        lists = deeper
    return media, chars


def _chars(value: Any) -> int:
    """The characters of a media part's strings (its base64 data, mostly)."""
    if type(value) is str:
        return len(value)
    if type(value) is dict:
        return sum(_chars(v) for v in value.values())
    if type(value) is list:
        return sum(_chars(v) for v in value)
    return 0


def _first(*names: str) -> Callable[[Mapping[str, Any]], Any]:
    def read(body: Mapping[str, Any]) -> Any:
        for name in names:
            value = body.get(name)
            if value is not None:
                return value
        return None

    return read


def _gemini(body: Mapping[str, Any]) -> Any:
    config = body.get("generationConfig") or body.get("generation_config")
    if not isinstance(config, dict):
        return None
    return config.get("maxOutputTokens", config.get("max_output_tokens"))


# dialect -> the request's output limit, as sent
OUTPUT_LIMITS: Mapping[str, Callable[[Mapping[str, Any]], Any]] = {
    "openai": _first("max_completion_tokens", "max_tokens"),
    "responses": _first("max_output_tokens"),
    "anthropic": _first("max_tokens"),
    "completions": _first("max_tokens"),
    "gemini": _gemini,
}


def output_tokens(dialect: str, body: Mapping[str, Any], default: int) -> int:
    """The request's own output limit (a positive integer in its dialect's field), else
    `default`."""
    read = OUTPUT_LIMITS.get(dialect)
    value = read(body) if read is not None else None
    return value if type(value) is int and value > 0 else default
