"""The in-chat command grammar, the settings table and the newest-user-message reader:
pure tables of text in, commands / mistakes / rest out."""

from __future__ import annotations

import re
from typing import Any

import pytest

from louter.convert.commands import KEYS, edit_body, read_setting, scan, strip, user_texts
from louter.convert.model import Image, Message, Request, Text

KNOWN = {"set", "unset", "help", "hello", "backend", "model", "route-append"}


def parsed(text: str, prefix: str = "!/") -> tuple[list[tuple[str, list[str]]], list[str], str]:
    found = scan(text, prefix, KNOWN)
    commands = [(c.name, [str(a) for a in c.args]) for c in found.commands]
    return commands, [m.message() for m in found.mistakes], found.rest


GOOD = [
    ("!/help", [("help", [])], ""),
    ("!/set(project=myproject)", [("set", ["project=myproject"])], ""),
    ("!/set(project=myproject, temperature=0.7)",
     [("set", ["project=myproject", "temperature=0.7"])], ""),
    ('!/set(project="my project")', [("set", ['project="my project"'])], ""),
    ('!/set(x="a, b", y="say \\"hi\\"")', [("set", ['x="a, b"', 'y="say \\"hi\\""'])], ""),
    ("!/route-append(gpt-4, anthropic:claude-3)",
     [("route-append", ["gpt-4", "anthropic:claude-3"])], ""),
    ("!/backend( openai )", [("backend", ["openai"])], ""),
    ("!/HELP", [("help", [])], ""),
    ("!/model(qwen3:8b) write a poem", [("model", ["qwen3:8b"])], "write a poem"),
    ("please !/hello and then", [("hello", [])], "please and then"),
    ("first line\n!/backend(x)\nlast line", [("backend", ["x"])], "first line\n\nlast line"),
    ("!/hello !/help", [("hello", []), ("help", [])], ""),
    ("!/frob(1)", [("frob", ["1"])], ""),  # unknown names are commands too (answered)
    ("!/set(url=http://a/b?c=d)", [("set", ["url=http://a/b?c=d"])], ""),
]  # fmt: skip


@pytest.mark.parametrize(("text", "commands", "rest"), GOOD)
def test_commands(text: str, commands: list[Any], rest: str) -> None:
    assert parsed(text) == (commands, [], rest)


NOT_COMMANDS = ["see !/tmp/notes.txt", "a!/b", "!/ is our prefix", "!/", "x !/.", "!/hello!"]


@pytest.mark.parametrize("text", NOT_COMMANDS)
def test_text_that_is_not_a_command(text: str) -> None:
    assert parsed(text) == ([], [], text)


MISTAKES = [
    ("!/ set(project=myproject)", "no space after the prefix: write !/set(project=myproject)"),
    ("!/set (project=x)", "no space between the name and '(': write !/set(project=x)"),
    ("!/set(project = myproject)", "no spaces around '=': write project=..."),
    ("!/set(project =myproject)", "no spaces around '=': write project=..."),
    ("!/set(project= myproject)", "no spaces around '=': write project=..."),
    ('!/set("project"="myproject")', "keys are not quoted: write project=..."),
    ("!/set(project=myproject temperature=0.7)",
     "missing comma between 'project=myproject' and 'temperature=0.7'"),
    ("!/set(project=myproject", "missing ')' at the end"),
    ('!/set(p="unclosed)', "a quoted value is not closed with '\"'"),
    ("!/set(a=1,)", "a comma with no argument after it"),
    ("!/set(a=)", "'a=' has no value"),
    ("!/set(,a=1)", "expected an argument, found ','"),
    ("!/set(a=1)b", "a command ends at its ')': put a space before the text after it"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "problem"), MISTAKES)
def test_mistakes_name_what_is_wrong(text: str, problem: str) -> None:
    commands, mistakes, rest = parsed(text)
    assert (commands, mistakes, rest) == ([], [f"{text}: {problem}"], "")


def test_a_mistake_keeps_the_text_after_its_command() -> None:
    assert parsed("!/set (a=1) then this") == (
        [],
        ["!/set (a=1): no space between the name and '(': write !/set(a=1)"],
        "then this",
    )


def test_too_many_arguments() -> None:
    text = "!/set(" + ", ".join(f"k{i}=1" for i in range(40)) + ")"
    assert parsed(text)[1][0].endswith("more than 32 arguments")


def test_another_prefix() -> None:
    assert parsed("#!backend(x) hi", prefix="#!") == ([("backend", ["x"])], [], "hi")
    assert parsed("!/backend(x) hi", prefix="#!") == ([], [], "!/backend(x) hi")


# --------------------------------------------------------------------------- settings


def test_settings_read_and_refuse() -> None:
    assert read_setting("temperature", "0.7") == 0.7
    assert read_setting("max_tokens", "100") == 100
    assert read_setting("interactive", "false") is False
    assert read_setting("project", "my project") == "my project"
    refusals = {
        ("temperature", "hot"): "temperature must be a number, got 'hot'",
        ("temperature", "nan"): "temperature must be between 0 and 2, got nan",
        ("top_p", "1.5"): "top_p must be between 0 and 1, got 1.5",
        ("max_tokens", "1.5"): "max_tokens must be a whole number, got '1.5'",
        ("max_tokens", "0"): "max_tokens must be between 1 and 10000000, got 0",
        ("interactive", "maybe"): "interactive must be true or false, got 'maybe'",
        ("model", "a b"): "model must be 1-256 letters, digits or . _ : / @ + -, got 'a b'",
        ("colour", "red"): "unknown setting 'colour'; settings: " + ", ".join(KEYS),
    }
    for (name, value), message in refusals.items():
        with pytest.raises(ValueError, match="^" + re.escape(message)):
            read_setting(name, value)


def test_the_table_declares_form_help_and_field() -> None:
    for name, key in KEYS.items():
        assert key.form and key.help, name
    assert {n: k.field for n, k in KEYS.items() if k.field} == {
        "temperature": "temperature",
        "top_p": "top_p",
        "max_tokens": "max_tokens",
    }
    assert set(KEYS) >= {"project", "project_dir", "backend", "model", "interactive"}


# --------------------------------------------------------------------------- newest message

NEWEST = [
    ("openai", {"messages": [{"role": "user", "content": "old"}, {"role": "assistant",
     "content": "x"}, {"role": "user", "content": "new"}]}, ["new"]),
    ("openai", {"messages": [{"role": "user", "content": "!/x"}, {"role": "assistant",
     "tool_calls": []}, {"role": "tool", "content": "r"}]}, []),
    ("openai", {"messages": [{"role": "user", "content": [{"type": "text", "text": "a"},
     {"type": "image_url"}, {"type": "text", "text": "b"}]}, {"role": "system",
     "content": "late system"}]}, ["a", "b"]),
    ("anthropic", {"messages": [{"role": "user", "content": [{"type": "text",
     "text": "<system-reminder>r</system-reminder>"}, {"type": "text", "text": "!/hello"}]},
     {"role": "system", "content": "per-turn"}]}, ["<system-reminder>r</system-reminder>",
     "!/hello"]),
    ("anthropic", {"messages": [{"role": "user", "content": [{"type": "tool_result",
     "tool_use_id": "t", "content": "!/x"}]}]}, []),
    ("gemini", {"contents": [{"role": "user", "parts": [{"text": "ctx"}]},
     {"parts": [{"text": "!/help"}, {"text": "t", "thought": True}]}]}, ["!/help"]),
    ("gemini", {"contents": [{"role": "model", "parts": [{"text": "!/x"}]}]}, []),
    ("responses", {"input": "!/hello"}, ["!/hello"]),
    ("responses", {"input": [{"role": "developer", "content": "d"}, {"role": "user",
     "content": [{"type": "input_text", "text": "q"}]}]}, ["q"]),
    ("responses", {"input": [{"role": "user", "content": "q"},
     {"type": "function_call_output", "call_id": "c", "output": "!/x"}]}, []),
    ("completions", {"prompt": "!/hello"}, ["!/hello"]),
    ("completions", {"prompt": ["!/hello x"]}, ["!/hello x"]),
    ("completions", {"prompt": "User: !/old\n\nAssistant: ok\n\nUser: new\n\nAssistant:"},
     ["new"]),
    ("completions", {"prompt": "User: !/x\n\nAssistant: a prefill"}, []),
    ("completions", {"prompt": [1, 2]}, []),
    ("openai", {"messages": "not a list"}, []),
]  # fmt: skip


@pytest.mark.parametrize(("dialect", "body", "texts"), NEWEST)
def test_user_texts_read_the_newest_user_message_only(
    dialect: str, body: dict[str, Any], texts: list[str]
) -> None:
    assert user_texts(dialect, body) == texts


def test_strip_cleans_the_newest_user_message_only() -> None:
    request = Request(
        model="m",
        messages=(
            Message("user", (Text("!/keep(me)"),)),
            Message("assistant", (Text("ok"),)),
            Message("user", (Text("ctx"), Text("!/go now"), Image(url="http://i"), Text("!/x"))),
            Message("system", (Text("late"),)),
        ),
    )
    cleaned = strip(request, lambda t: scan(t, "!/", KNOWN).rest)
    assert cleaned.messages[0] == request.messages[0]
    assert cleaned.messages[2].parts == (Text("ctx"), Text("now"), Image(url="http://i"))
    assert cleaned.messages[3] == request.messages[3]
    tool_last = Request(model="m", messages=(Message("tool", ()),))
    assert strip(tool_last, str.upper) is tool_last


def test_edit_body_keeps_a_completions_prompt_as_written() -> None:
    clean = lambda t: scan(t, "!/", KNOWN).rest  # noqa: E731
    body = {"model": "m", "prompt": "!/set(a=1) Once upon", "temperature": 1}
    assert edit_body("completions", body, clean, {"temperature": 0.5}) == {
        "model": "m", "prompt": "Once upon", "temperature": 0.5
    }  # fmt: skip
    assert body["prompt"] == "!/set(a=1) Once upon"  # the client's body is not changed
    transcript = {"model": "m", "prompt": "User: !/hello hi\n\nAssistant:"}
    assert edit_body("completions", transcript, clean) is None  # sent in neutral form
    assert edit_body("completions", transcript, None, {"top_p": 0.5}) == {**transcript,
                                                                         "top_p": 0.5}  # fmt: skip
    assert edit_body("completions", body, None, {"seed_like": 1}) is None  # no such key there
    assert edit_body("openai", {"messages": []}, clean) is None  # other dialects: neutral
