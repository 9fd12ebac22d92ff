"""The built-in deterministic `mock` backend, as pure logic (no sockets).

`engine` holds the dialect-neutral rules; each dialect module (`louter.mock.openai`)
parses its own requests into a `MockPrompt` and renders the `MockAnswer`.
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
