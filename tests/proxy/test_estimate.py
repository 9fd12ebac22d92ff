"""The TPM reservation's input estimate (issue 18): from the body's length as sent, its
media parts counted flat, so that neither a large text body (walked: it cost twice its
JSON parse) nor a large image (its base64 is no measure of its tokens) costs or
reserves what it should not."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import orjson
import pytest
import trio

from louter.bench import bodies
from louter.proxy.estimate import MEDIA_TOKENS, UNSCANNED, input_tokens, sized_input_tokens
from tests.fakes import FakeUpstream, JSONReply, chat_completion
from tests.proxy.test_limits import _upstream, start

IMAGE = base64.b64encode(bytes(range(256)) * 600).decode()  # ~200 kB of base64
PNG = f"data:image/png;base64,{IMAGE}"
ASK = "What is in this picture? Answer in one word."


def _sized(body: dict[str, Any]) -> int:
    return sized_input_tokens(len(json.dumps(body).encode()), body)


def test_a_large_text_body_is_estimated_from_its_length_close_to_the_walk() -> None:
    body = orjson.loads(bodies.big_request())  # 53 messages, 12 tools: 50 kB
    walked, sized = input_tokens(body), _sized(body)
    assert walked < sized < walked * 1.15  # the JSON punctuation on top


def test_a_small_body_is_its_bytes_without_a_scan() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hello there"}]}
    size = len(json.dumps(body))
    assert size <= UNSCANNED
    assert sized_input_tokens(size, body) == -(-size // 4)


MEDIA: dict[str, dict[str, Any]] = {
    "openai": {
        "model": "m",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": ASK},
                    {"type": "image_url", "image_url": {"url": PNG}},
                ],
            }
        ],
    },
    "anthropic tool result": {
        "model": "m",
        "max_tokens": 5,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": ASK},
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "content": [
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/png",
                                    "data": IMAGE,
                                },
                            }
                        ],
                    },
                ],
            }
        ],
    },
    "gemini": {
        "contents": [
            {
                "role": "user",
                "parts": [{"text": ASK}, {"inlineData": {"mimeType": "image/png", "data": IMAGE}}],
            }
        ]
    },
    "responses": {
        "model": "m",
        "input": [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": ASK},
                    {"type": "input_image", "image_url": PNG},
                ],
            }
        ],
    },
}


@pytest.mark.parametrize("shape", list(MEDIA))
def test_a_media_part_counts_flat_whatever_its_size(shape: str) -> None:
    body = MEDIA[shape]
    sized = _sized(body)
    assert MEDIA_TOKENS < sized < MEDIA_TOKENS + 100  # the question and the JSON around it
    assert abs(sized - input_tokens(body)) < 60  # the walk's figure, near enough


def test_two_media_parts_count_twice() -> None:
    body = json.loads(json.dumps(MEDIA["openai"]))
    body["messages"][0]["content"].append({"type": "image_url", "image_url": {"url": PNG}})
    assert 2 * MEDIA_TOKENS < _sized(body) < 2 * MEDIA_TOKENS + 100


async def test_an_image_reserves_its_flat_count_not_its_base64(nursery: trio.Nursery) -> None:
    """Through louter: a 200 kB image under `tpm = 3000` is admitted (its base64 would be
    50,000 tokens) and reserves the question, one image and max_tokens."""
    fake = FakeUpstream()
    await nursery.start(fake.serve)
    usage = {"prompt_tokens": 300, "completion_tokens": 1, "total_tokens": 301}
    fake.default = JSONReply(chat_completion("cat", usage=usage))
    base, _ = await start(nursery, _upstream(fake.port) + "[limits.default]\ntpm = 3000\n", "up")
    body = {**MEDIA["openai"], "max_tokens": 10}
    async with httpx.AsyncClient(base_url=base) as client:
        reply = await client.post("/v1/chat/completions", json=body)  # with a content-length
    assert reply.status_code == 200
    reserved = 3000 - int(reply.headers["x-ratelimit-remaining-tokens"])
    assert MEDIA_TOKENS + 10 < reserved < MEDIA_TOKENS + 10 + 100


async def test_a_chunked_body_is_walked(nursery: trio.Nursery) -> None:
    """Without a content-length (chunked) the estimate walks the parsed body."""
    fake = FakeUpstream()
    await nursery.start(fake.serve)
    fake.default = JSONReply(chat_completion("cat"))
    base, _ = await start(nursery, _upstream(fake.port) + "[limits.default]\ntpm = 3000\n", "up")
    body = {**MEDIA["openai"], "max_tokens": 10}
    data = json.dumps(body).encode()

    async def pieces() -> Any:
        for at in range(0, len(data), 65536):
            yield data[at : at + 65536]

    async with httpx.AsyncClient(base_url=base) as client:
        reply = await client.post(
            "/v1/chat/completions",
            content=pieces(),
            headers={"content-type": "application/json"},
        )
    assert reply.status_code == 200
    reserved = 3000 - int(reply.headers["x-ratelimit-remaining-tokens"])
    assert reserved == input_tokens(body) + 10
