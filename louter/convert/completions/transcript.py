"""A conversation as ONE prompt, and back: the plain transcript a Completions backend is
sent (`render_prompt`) and that a Completions prompt is read as (`read_prompt`).

    System: <system text>

    User: <user text>

    Assistant: <assistant text>

    User: <user text>

    Assistant:

One `<Role>: <text>` turn per message, turns separated by a blank line; a message's text
parts are joined by a newline and reasoning is left out (as for Chat Completions
backends); a message with no text is left out. The prompt ends with `Assistant:` for the
model to answer or, when the conversation ends with an assistant message (a prefill),
with that turn left open for the model to continue. `STOPS` (`\\nUser:`) goes with it so
the model stops before writing the next user turn itself. The Completions API has no
tools and no images: tools, tool calls, tool results and images are a ConversionError
(400).

Reading is the inverse, so a conversation survives a Completions hop both ways (a chat
client -> a Completions backend that is louter's door or mock -> a chat backend). The
prompt is cut into blocks at blank lines; it is a transcript when its first block opens a
turn and its last block is `Assistant:` alone (the open answer) or opens an assistant
turn (a prefill). A block opens a turn when it is `<Label>: <text>` with a known label
and some text; any other block continues the turn before it. Any other prompt is not a
transcript (`read_prompt` gives None) and stays one user message. A message whose own
text holds a blank line followed by `User: ...` is read as two turns: the price of a
plain format.
"""

from __future__ import annotations

from louter.convert.fields import bad_request
from louter.convert.model import Image, Message, Reasoning, Text, ToolCall, ToolResult

__all__ = ["LABELS", "STOPS", "read_prompt", "render_prompt"]

LABELS = {"system": "System", "user": "User", "assistant": "Assistant"}
ROLES = {label: role for role, label in LABELS.items()}
TURN_SEPARATOR = "\n\n"
PART_SEPARATOR = "\n"
STOPS = ("\nUser:",)  # the model must not write the next user turn itself
_ANSWER = f"{LABELS['assistant']}:"

# --------------------------------------------------------------------------- render


def render_prompt(messages: tuple[Message, ...]) -> str:
    """The conversation as one plain transcript. ConversionError (400) for what it
    cannot hold (see the module docstring)."""
    turns = []
    prefill = False  # the conversation ends with an assistant text: left open
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        text = _text(message, where)
        label = LABELS.get(message.role)
        if label is None:  # a "tool" message (its results are refused by `_text` first)
            raise bad_request(where, f"role {message.role!r} has no transcript form")
        if text:
            turns.append(f"{label}: {text}")
        prefill = message.role == "assistant" and bool(text)
    if not prefill:
        turns.append(_ANSWER)
    return TURN_SEPARATOR.join(turns)


def _text(message: Message, where: str) -> str:
    texts = []
    for part in message.parts:
        if isinstance(part, Text):
            texts.append(part.text)
        elif not isinstance(part, Reasoning):
            raise bad_request(where, _UNSENDABLE[type(part)])
    return PART_SEPARATOR.join(text for text in texts if text)


_UNSENDABLE: dict[type, str] = {
    Image: "a completions backend takes text only, not images",
    ToolCall: "a completions backend takes no tools, and the conversation holds a tool call",
    ToolResult: "a completions backend takes no tools, and the conversation holds a tool result",
}

# --------------------------------------------------------------------------- read


def read_prompt(prompt: str) -> tuple[Message, ...] | None:
    """The messages of a prompt written as a transcript, else None."""
    blocks = prompt.split(TURN_SEPARATOR)
    if blocks[-1] == _ANSWER:
        blocks.pop()  # the open turn the model answers
    elif _opening(blocks[-1]) is None or not blocks[-1].startswith(_ANSWER):
        return None  # neither an open answer nor a prefill
    if not blocks or _opening(blocks[0]) is None:
        return None
    turns: list[tuple[str, list[str]]] = []
    for block in blocks:
        opening = _opening(block)
        if opening is None:
            turns[-1][1].append(block)  # a blank line inside the turn's text
        else:
            turns.append((opening[0], [opening[1]]))
    return tuple(Message(role, (Text(TURN_SEPARATOR.join(texts)),)) for role, texts in turns)


def _opening(block: str) -> tuple[str, str] | None:
    """(role, text) when `block` opens a turn: `Label: text`, the text not empty (the
    rendering writes no empty turn)."""
    label, separator, text = block.partition(": ")
    role = ROLES.get(label)
    if role is None or not separator or not text:
        return None
    return role, text
