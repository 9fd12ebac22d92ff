"""A conversation as one prompt and back (louter.convert.completions.transcript)."""

from __future__ import annotations

import pytest

from louter.convert.completions import read_prompt, render_prompt
from louter.convert.model import Message, Reasoning, Text


def m(role: str, *texts: str) -> Message:
    return Message(role, tuple(Text(text) for text in texts))


CONVERSATIONS = [
    (m("user", "hi"),),
    (m("system", "be brief"), m("user", "hi")),
    (m("system", "be brief"), m("user", "2+2?"), m("assistant", "4"), m("user", "3+3?")),
    (m("user", "Name a colour"), m("assistant", "Deep")),  # a prefill
    (m("user", "one\n\ntwo\n\nthree"),),  # paragraphs
    (m("user", "Note: a colon\n\nAssistant:"),),  # an empty label inside the text
    (m("user", "x"), m("user", "y")),
    (m("system", "Système: ünïcode 日本"), m("user", "🎉")),
]


@pytest.mark.parametrize("messages", CONVERSATIONS)
def test_a_rendered_conversation_reads_back(messages: tuple[Message, ...]) -> None:
    prompt = render_prompt(messages)
    assert read_prompt(prompt) == messages
    assert render_prompt(read_prompt(prompt) or ()) == prompt


def test_what_the_rendering_leaves_out_does_not_come_back() -> None:
    messages = (
        Message("system", ()),
        Message("user", (Text("a"), Text("b"))),
        Message("assistant", (Reasoning("hmm"),)),
    )
    assert render_prompt(messages) == "User: a\nb\n\nAssistant:"
    assert read_prompt(render_prompt(messages)) == (m("user", "a\nb"),)


@pytest.mark.parametrize(
    "prompt",
    [
        "Once upon a time",
        "User: hello",  # no answer turn
        "User: hello\n\nAssistant",  # no colon
        "Assistant:",  # nothing before the answer
        "User:hi\n\nAssistant:",  # no space after the label
        "user: hi\n\nAssistant:",  # labels are capitalised
        "Note: hi\n\nAssistant:",
        "User: \n\nAssistant:",  # an empty first turn
        "\n\nUser: hi\n\nAssistant:",
        "",
    ],
)
def test_other_prompts_are_not_transcripts(prompt: str) -> None:
    assert read_prompt(prompt) is None


def test_a_closing_assistant_text_is_a_prefill() -> None:
    assert read_prompt("User: q\n\nAssistant: The answer is") == (
        m("user", "q"),
        m("assistant", "The answer is"),
    )
    assert read_prompt("System: s\n\nAssistant: go") == (m("system", "s"), m("assistant", "go"))


def test_an_empty_conversation_is_the_answer_turn_alone() -> None:
    assert render_prompt(()) == "Assistant:"
    assert read_prompt("Assistant:") is None
