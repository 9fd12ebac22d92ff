"""Agents' side calls (issue 19): gemini-cli without `-m` first sends its router request
(captured in `../shared/captures/gemini-cli/basic.json`) with the person's prompt in it.
That request runs no command and does not use up a `!/oneoff`; the main request that
follows does both. A token count does not use up a one-off either. Raw HTTP on loopback
with gemini-cli's own captured bodies, against fake OpenAI upstreams."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import trio

from louter.convert.commands import side_call
from tests.conftest import StartLouter
from tests.paths import SHARED
from tests.proxy.test_sessions import config_for, sent_text
from tests.proxy.test_sessions_routing import upstreams

CAPTURE = json.loads((SHARED / "captures" / "gemini-cli" / "basic.json").read_text())
ROUTER, MAIN = (r["body"] for r in CAPTURE["requests"][:2])
ROUTER_PATH = "/v1beta/models/gemini-3.5-flash-lite:generateContent"
MAIN_PATH = "/v1beta/models/gemini-3.8-flash:streamGenerateContent?alt=sse"


def with_prompt(body: dict[str, Any], prompt: str) -> dict[str, Any]:
    """gemini-cli's body with `prompt` as the person's text (its last user message)."""
    changed = copy.deepcopy(body)
    changed["contents"][-1]["parts"] = [{"text": prompt}]
    changed.pop("tools", None)  # the capture summarises them; not needed here
    return changed


def streamed_text(reply: httpx.Response) -> str:
    """The text of a Gemini SSE answer."""
    events = [json.loads(line[6:]) for line in reply.text.splitlines() if line.startswith("data: ")]
    return "".join(
        part.get("text", "")
        for e in events
        for c in e["candidates"]
        for part in c["content"]["parts"]
    )


def test_the_router_request_is_told_apart() -> None:
    assert side_call("gemini", ROUTER)
    assert not side_call("gemini", MAIN)
    assert not side_call("openai", ROUTER)
    other = copy.deepcopy(ROUTER)  # a person's own JSON-mode request with their schema
    other["generationConfig"]["responseJsonSchema"] = {
        "type": "OBJECT", "properties": {"answer": {"type": "STRING"}}
    }  # fmt: skip
    assert not side_call("gemini", other)
    unlike = copy.deepcopy(ROUTER)
    unlike["systemInstruction"] = {"parts": [{"text": "Classify this."}]}
    assert not side_call("gemini", unlike)
    numerical = copy.deepcopy(ROUTER)  # the other router of gemini-cli 0.61
    numerical["generationConfig"]["responseJsonSchema"]["properties"] = {
        "reasoning": {"type": "STRING"}, "model_choice": {"type": "STRING"}
    }  # fmt: skip
    assert side_call("gemini", numerical)


async def test_the_router_request_runs_no_command_and_keeps_the_oneoff(
    nursery: trio.Nursery, start_louter: StartLouter
) -> None:
    first, second = await upstreams(nursery)
    base = await start_louter(config_for(first, second))
    sid = {"x-gemini-api-privileged-user-id": "b5e4f594-d7f2-4cc8-8d12-a3306604ee39"}
    async with httpx.AsyncClient(base_url=base, headers=sid) as http:

        async def turn(prompt: str) -> tuple[httpx.Response, httpx.Response]:
            routed = await http.post(ROUTER_PATH, json=with_prompt(ROUTER, prompt))
            main = await http.post(MAIN_PATH, json=with_prompt(MAIN, prompt))
            return routed, main

        routed, main = await turn("!/oneoff(second:once)")
        assert routed.status_code == 200 and main.status_code == 200
        assert streamed_text(main) == "the next request goes to second:once"  # main: run
        assert sent_text(first.requests[0]) == "!/oneoff(second:once)"  # router: sent as is
        assert second.requests == []
        counted = await http.post(
            "/v1beta/models/gemini-3.8-flash:countTokens", json=with_prompt(MAIN, "hi")
        )
        assert counted.status_code == 200
        routed, main = await turn("say hi")
        assert "from first" in routed.text  # the router call did not use the one-off
        assert streamed_text(main) == "from second ok"  # the main request did
        assert [r.json["model"] for r in second.requests] == ["once"]
        routed, main = await turn("and again")
        assert streamed_text(main) == "from first ok"  # used up
