"""The feature probes, as data: what each one asks and what the answer must be.

The tool probes use the reproducible tool-call recipe small local models need (one tool,
a one-shot example exchange, temperature 0, max_tokens 64). The `mock_*` values are the
answers of louter's mock backend (README "The mock backend"), compared exactly when the
backend is the mock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from louter.convert.probe.fields import compact
from louter.convert.probe.image import RED_SQUARE
from louter.convert.probe.model import (
    COUNT,
    IMAGES,
    INVALID,
    TOOLS,
    Ask,
    Assistant,
    Tool,
    ToolCalled,
    ToolResult,
    User,
)
from louter.probes.checks import COUNTED, REFUSED, TEXT, TOOL_CALL, Expect


@dataclass(frozen=True, slots=True)
class FollowUp:
    """A second step: answer the first step's tool call with `result`, then expect."""

    result: Mapping[str, Any]
    expect: Expect


@dataclass(frozen=True, slots=True)
class Probe:
    name: str  # on the command line: test-runner ... text stream
    title: str  # in reports: "Gemini Text Generation"
    ask: Ask
    expect: Expect
    follow_up: FollowUp | None = None
    needs: frozenset[str] = frozenset()  # of the API (TOOLS, IMAGES): see `applicable`


WEATHER = Tool(
    "get_weather",
    "Get the current weather for a city",
    {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "City name"}},
        "required": ["city"],
    },
)
EXAMPLE = (
    User("What is the weather in London?"),
    ToolCalled("call_1", "get_weather", {"city": "London"}),
    ToolResult("call_1", "get_weather", {"temp_c": 15, "sky": "cloudy"}),
    Assistant("It is 15 C and cloudy in London."),
)
TOOL_ASK = Ask((*EXAMPLE, User("What is the weather in Paris?")), tools=(WEATHER,))
TOOL_EXPECT = Expect(TOOL_CALL, mock_arguments={"city": "mock-city"})

QUESTION = "What is the capital of France? Answer in one sentence."
TEXT_ASK = Ask((User(QUESTION),))
TEXT_EXPECT = Expect(TEXT, mock_text=f'Mock answer to: "{QUESTION}" (images: 0)')
LOOK = "What colour is this image? Answer in one word."
COUNT_TEXT = "Count the tokens in this sentence please."
RESULT = {"temp_c": 21, "sky": "sunny"}

NEEDS_TOOLS = frozenset({TOOLS})

PROBES: tuple[Probe, ...] = (
    Probe("text", "Text Generation", TEXT_ASK, TEXT_EXPECT),
    Probe("stream", "Streaming", replace(TEXT_ASK, stream=True), TEXT_EXPECT),
    Probe("tools", "Function Calling", TOOL_ASK, TOOL_EXPECT, needs=NEEDS_TOOLS),
    Probe(
        "tools-stream",
        "Function Calling + Streaming",
        replace(TOOL_ASK, stream=True),
        TOOL_EXPECT,
        needs=NEEDS_TOOLS,
    ),
    Probe(
        "image",
        "Multimedia",
        Ask((User(LOOK, RED_SQUARE),)),
        Expect(TEXT, mock_text=f'Mock answer to: "{LOOK}" (images: 1)'),
        needs=frozenset({IMAGES}),
    ),
    Probe(
        "round-trip",
        "Tool Round Trip",
        TOOL_ASK,
        TOOL_EXPECT,
        FollowUp(
            RESULT,
            Expect(TEXT, mock_text=f'Mock answer to tool result: "{compact(RESULT)}"'),
        ),
        needs=NEEDS_TOOLS,
    ),
    Probe(
        "count-tokens",
        "Token Counting",
        Ask((User(COUNT_TEXT),), kind=COUNT),
        Expect(COUNTED, mock_count=7),
    ),
    Probe("error", "Error Handling", Ask((User(QUESTION),), kind=INVALID), Expect(REFUSED)),
)
BY_NAME: Mapping[str, Probe] = {probe.name: probe for probe in PROBES}
# The names the original louter's tutorials use (`test-runner gemini URL KEY function`).
ALIASES: Mapping[str, str] = {
    "function": "tools",
    "functions": "tools",
    "function-calling": "tools",
    "streaming": "stream",
    "multimedia": "image",
    "vision": "image",
}


def canonical(name: str) -> str | None:
    """The probe `name` names, directly or as an alias; None when it names none."""
    name = ALIASES.get(name, name)
    return name if name in BY_NAME else None


def select(names: list[str]) -> tuple[Probe, ...]:
    """The probes named or aliased (in table order, each once), or all of them when none is.

    Raises:
        KeyError: a name is not a probe's (its `args[0]` is the unknown name).
    """
    wanted: set[str] = set()
    for name in names:
        probe = canonical(name)
        if probe is None:
            raise KeyError(name)
        wanted.add(probe)
    return tuple(p for p in PROBES if not names or p.name in wanted)


def applicable(probes: Sequence[Probe], lacks: frozenset[str]) -> tuple[Probe, ...]:
    """The probes an API that `lacks` those things can be asked at all: a probe that needs
    tools is not run through an API without tools (it could only fail for the API)."""
    return tuple(probe for probe in probes if not probe.needs & lacks)
