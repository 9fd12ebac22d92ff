"""The smallest end-to-end check: the openai SDK through louter to the built-in mock."""

from __future__ import annotations

import openai
import trio


async def test_openai_sdk_text_through_mock(start_louter):
    base = await start_louter()

    def call() -> str:
        client = openai.OpenAI(base_url=base + "/v1", api_key="sk-test", max_retries=0)
        reply = client.chat.completions.create(
            model="any-model", messages=[{"role": "user", "content": "ping pong"}]
        )
        return reply.choices[0].message.content or ""

    assert await trio.to_thread.run_sync(call) == 'Mock answer to: "ping pong" (images: 0)'
