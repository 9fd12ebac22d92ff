"""In-chat commands, pure: the grammar (`grammar.scan`), the settable keys (`keys.KEYS`)
and where commands are read (`newest`: the newest user message; `side`: never in an
agent's side call). The proxy's session stage (`louter/proxy/sessions/`) runs them."""

from __future__ import annotations

from louter.convert.commands.grammar import Arg, Command, Mistake, Scan, scan
from louter.convert.commands.keys import KEYS, Key, read_setting
from louter.convert.commands.newest import edit_body, strip, user_texts
from louter.convert.commands.side import side_call

__all__ = [
    "KEYS",
    "Arg",
    "Command",
    "Key",
    "Mistake",
    "Scan",
    "edit_body",
    "read_setting",
    "scan",
    "side_call",
    "strip",
    "user_texts",
]
