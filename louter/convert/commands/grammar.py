"""The in-chat command grammar (`!/name` or `!/name(args)`), pure: text in, commands out.

    command  = PREFIX name [ "(" [ arg { "," [spaces] arg } ] ")" ]
    name     = letter { letter | digit | "_" | "-" }
    arg      = value | key "=" value
    value    = bare | '"' { char | '\\"' | '\\\\' } '"'
    bare     = one or more characters other than spaces , ( ) " =

A command starts at the beginning of the text or after white space and ends before white
space or the end (so `!/tmp/x` in a path is no command). No space after the prefix, none
before `(`, none around `=`; keys are never quoted; arguments are separated by commas.
A broken command is reported as a `Mistake` naming what is wrong (and, for the spacing
mistakes, only when the name is a known command: `!/ set(...)` is a mistake, `!/ ok` is
text). `scan` returns every command and mistake with the text left once they are removed.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_SPACED_NAME = re.compile(r"[ \t]+([A-Za-z][A-Za-z0-9_-]*)")
_BARE = re.compile(r'[^\s,()"=]+')
_VALUE = re.compile(r'[^\s,()"]+')  # after "=", a bare value may hold "="
_SPACES = re.compile(r"[ \t\r\n]*")
MAX_ARGS = 32


@dataclass(frozen=True, slots=True)
class Arg:
    key: str | None  # None: a positional value
    value: str

    def __str__(self) -> str:
        value = _quoted(self.value)
        return value if self.key is None else f"{self.key}={value}"


@dataclass(frozen=True, slots=True)
class Command:
    name: str  # lower case
    args: tuple[Arg, ...]
    text: str  # as written

    def positional(self) -> list[str]:
        return [arg.value for arg in self.args if arg.key is None]


@dataclass(frozen=True, slots=True)
class Mistake:
    name: str  # the command's name as far as it could be read ("" when none)
    text: str  # the broken command as written
    problem: str

    def message(self) -> str:
        return f"{self.text}: {self.problem}"


@dataclass(frozen=True, slots=True)
class Scan:
    commands: tuple[Command, ...]
    mistakes: tuple[Mistake, ...]
    rest: str  # the text without them, stripped

    @property
    def found(self) -> bool:
        return bool(self.commands or self.mistakes)


class _Broken(Exception):
    def __init__(self, problem: str, at: int) -> None:
        self.problem = problem
        self.at = at  # where the reading stopped


def _quoted(value: str) -> str:
    if value and _VALUE.fullmatch(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def scan(text: str, prefix: str, known: Collection[str]) -> Scan:
    """The commands and mistakes in `text` (`known`: the command names, lower case)."""
    commands: list[Command] = []
    mistakes: list[Mistake] = []
    kept: list[str] = []
    done = 0  # text before this index is in `kept` or was a command
    at = text.find(prefix)
    while at >= 0:
        start = at
        if start > 0 and not text[start - 1].isspace():
            at = text.find(prefix, start + 1)
            continue
        found = _read(text, start, start + len(prefix), known)
        if found is None:
            at = text.find(prefix, start + 1)
            continue
        item, end = found
        (commands if isinstance(item, Command) else mistakes).append(item)  # type: ignore[arg-type]
        kept.append(text[done:start])
        done = end
        at = text.find(prefix, end)
    kept.append(text[done:])
    rest = "".join(kept) if len(kept) > 1 else text
    return Scan(tuple(commands), tuple(mistakes), _tidy(rest) if len(kept) > 1 else rest)


def _tidy(rest: str) -> str:
    """The text left around removed commands: no blank run they leave behind."""
    lines = [re.sub(r"[ \t]{2,}", " ", line).strip() for line in rest.strip().split("\n")]
    return "\n".join(lines).strip()


def _read(
    text: str, start: int, after: int, known: Collection[str]
) -> tuple[Command | Mistake, int] | None:
    """The command (or mistake) at `start` and where it ends; None: not a command."""
    name = _NAME.match(text, after)
    if name is None:
        spaced = _SPACED_NAME.match(text, after)
        if spaced is None or spaced.group(1).lower() not in known:
            return None
        end = _skip_call(text, spaced.end())
        word = spaced.group(1).lower()
        fixed = text[start:after] + text[spaced.start(1) : end]
        problem = f"no space after the prefix: write {fixed}"
        return Mistake(word, text[start:end], problem), end
    word, pos = name.group().lower(), name.end()
    if text.startswith("(", pos):
        if text.find(")", pos, _line_end(text, pos)) < 0:
            end = _line_end(text, pos)
            return Mistake(word, text[start:end], "missing ')' at the end"), end
        try:
            args, end = _args(text, pos + 1)
        except _Broken as broken:
            end = _skip_call(text, broken.at)
            return Mistake(word, text[start:end], broken.problem), end
        if end < len(text) and not text[end].isspace():
            end = _skip_call(text, end)
            problem = "a command ends at its ')': put a space before the text after it"
            return Mistake(word, text[start:end], problem), end
        return Command(word, args, text[start:end]), end
    gap = _SPACES.match(text, pos)
    assert gap is not None
    if word in known and gap.end() > pos and text.startswith("(", gap.end()):
        end = _skip_call(text, gap.end())
        problem = (
            f"no space between the name and '(': write {text[start:pos]}{text[gap.end() : end]}"
        )
        return Mistake(word, text[start:end], problem), end
    if pos < len(text) and not text[pos].isspace():
        return None  # `!/tmp/x`, `!/a.b`: text, not a command
    return Command(word, (), text[start:pos]), pos


def _line_end(text: str, at: int) -> int:
    end = text.find("\n", at)
    return len(text) if end < 0 else end


def _skip_call(text: str, at: int) -> int:
    """Where a broken command ends: after its `)` on this line, else at the line's end."""
    line_end = _line_end(text, at)
    close = text.find(")", at, line_end)
    return line_end if close < 0 else close + 1


def _args(text: str, at: int) -> tuple[tuple[Arg, ...], int]:
    """The arguments after `(` and the index after `)`; `_Broken` naming a mistake."""
    args: list[Arg] = []
    at = _skip_spaces(text, at)
    if text.startswith(")", at):
        return (), at + 1
    while True:
        arg, at = _arg(text, at)
        args.append(arg)
        if len(args) > MAX_ARGS:
            raise _Broken(f"more than {MAX_ARGS} arguments", at)
        if text.startswith(",", at):
            at = _skip_spaces(text, at + 1)
            if text.startswith(")", at):
                raise _Broken("a comma with no argument after it", at)
            continue
        following = _skip_spaces(text, at)
        if text.startswith(")", following):
            return tuple(args), following + 1
        if following >= len(text) or text[following] == "\n":
            raise _Broken("missing ')' at the end", following)
        nxt = _VALUE.match(text, following)
        shown = text[following : nxt.end()] if nxt else text[following]
        raise _Broken(f"missing comma between '{arg}' and '{shown}'", following)


def _skip_spaces(text: str, at: int) -> int:
    while at < len(text) and text[at] in " \t":
        at += 1
    return at


def _arg(text: str, at: int) -> tuple[Arg, int]:
    if text.startswith('"', at):
        value, end = _string(text, at)
        if text.startswith("=", end):
            raise _Broken(f"keys are not quoted: write {value}=...", end)
        return Arg(None, value), end
    word = _BARE.match(text, at)
    if word is None:
        shown = text[at] if at < len(text) else "the end"
        raise _Broken(f"expected an argument, found {shown!r}", at)
    end = word.end()
    if not text.startswith("=", end):
        spaced = _skip_spaces(text, end)
        if spaced > end and text.startswith("=", spaced):
            raise _Broken(f"no spaces around '=': write {word.group()}=...", spaced)
        return Arg(None, word.group()), end
    key, at = word.group(), end + 1
    if at < len(text) and text[at] in " \t":
        raise _Broken(f"no spaces around '=': write {key}=...", at)
    if text.startswith('"', at):
        value, end = _string(text, at)
        return Arg(key, value), end
    found = _VALUE.match(text, at)
    if found is None:
        raise _Broken(f"'{key}=' has no value", at)
    return Arg(key, found.group()), found.end()


def _string(text: str, at: int) -> tuple[str, int]:
    """A `"..."` value (escapes `\\"` and `\\\\`) and the index after its closing quote."""
    out: list[str] = []
    i = at + 1
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in '"\\':
            out.append(text[i + 1])
            i += 2
            continue
        if char == '"':
            return "".join(out), i + 1
        if char == "\n":
            break
        out.append(char)
        i += 1
    raise _Broken("a quoted value is not closed with '\"'", i)
