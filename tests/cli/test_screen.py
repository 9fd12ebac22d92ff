"""The operator's stderr: plain lines when it is not a terminal, rich on one."""

from __future__ import annotations

from io import StringIO

from louter.cli.screen import Screen, Summary

SHOWN = Summary(
    "louter 1.0 on http://127.0.0.1:8080",
    [("a (default)", "openai", "http://127.0.0.1:9/v1", "set", "m → up-m")],
    ["endpoints: /v1/chat/completions", "client auth: off"],
)


def test_not_a_terminal_gets_plain_lines() -> None:
    out = StringIO()  # isatty() is False
    screen = Screen(out)
    screen.summary(SHOWN)
    screen.say("cannot write [table] x", "bold red")
    screen.line([("12:00 ", ""), ("client_request", "cyan"), (" openai", "")])
    assert out.getvalue().splitlines() == [
        "louter 1.0 on http://127.0.0.1:8080",
        "backend a (default): protocol openai, url http://127.0.0.1:9/v1, key set, models m → up-m",
        "endpoints: /v1/chat/completions",
        "client auth: off",
        "louter: cannot write [table] x",
        "12:00 client_request openai",
    ]


def test_a_terminal_gets_colours_and_text_is_never_read_as_markup() -> None:
    out = StringIO()
    screen = Screen(out, terminal=True)
    screen.say("cannot write [table] x [/]", "bold red")
    screen.summary(SHOWN)
    text = out.getvalue()
    assert "\x1b[1;31mlouter: cannot write [table] x [/]\x1b[0m" in text
    assert "┃ backend" in text.replace("\x1b[1m", "").replace("\x1b[0m", "")
    assert "http://127.0.0.1:9/v1" in text


class _Gone(StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_stderr_does_not_stop_the_caller() -> None:
    screen = Screen(_Gone())
    screen.say("SIGTERM, stopping")  # raises nothing: the server keeps draining
    screen.summary(SHOWN)
