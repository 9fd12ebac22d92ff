"""A quick token estimate of a request for the TPM reservation (`limits.py`), read from
the client's parsed JSON body: no neutral parse (a passthrough request is never parsed
into the neutral model, and the estimate must not make it so).

Input: 4 characters a token over every string and object key of the body (messages,
system prompt, tool declarations alike), except media parts, which count a flat
`MEDIA_TOKENS` each (their base64 says nothing about their tokens). Output: the request's
own output limit in its dialect's field, else the configured default. The reservation is
settled to the backend's real usage afterwards, so the estimate only has to be cheap and
in the right order of magnitude (within a few percent of `convert/tokens.py`'s on text).
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
