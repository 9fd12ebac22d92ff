"""The built-in deterministic `mock` backend, as pure logic (no sockets).

`engine` holds the dialect-neutral rules; `responder` answers every dialect with them:
the dialect's own parser, `neutral.prompt_of` (a `MockPrompt`), the rules, then the
dialect's own emitter over `neutral.response_of` / `neutral.stream_of`.
"""

from __future__ import annotations

from louter.mock.engine import (
    MockAnswer,
    MockPrompt,
    MockTool,
    MockToolCall,
    answer,
    arguments_for,
    count_words,
    render_xml_call,
    select_tool,
    split_chars,
    split_text,
    truncate_words,
    value_for,
)

__all__ = [
    "MockAnswer",
    "MockPrompt",
    "MockTool",
    "MockToolCall",
    "answer",
    "arguments_for",
    "count_words",
    "render_xml_call",
    "select_tool",
    "split_chars",
    "split_text",
    "truncate_words",
    "value_for",
]
