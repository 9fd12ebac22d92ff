"""The session stage: loads the request's session, runs the commands of its newest user
message, and applies the session's settings in neutral terms.

Per request, without a command: the session lookup (one store `get`, a miss for a
session with nothing set; none at all with the in-process store when this process never
stored that session: `SessionBook.absent`) and a `prefix in text` check of the newest
user message's text, read from the wire body (no parse). With commands:

- any malformed or unknown command, or one that cannot be done: louter answers with
  what is wrong (and the command list), nothing is applied, no backend is called;
- only commands (the text part that held them is empty once they are removed): louter
  answers with what each did, as a normal assistant answer with zero usage;
- commands and text: the commands are removed and the rest is sent, with the session's
  settings (now including the new ones) applied.

An agent's side call about the prompt (gemini-cli's router: `convert/commands/side.py`)
runs no command and leaves a pending one-off for the request that follows; so does a
token count. Both get the session's other settings.

With `interactive = false` in the session, only `interactive(...)` is a command; the
rest reaches the model as text.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Any

from louter.convert.commands import (
    KEYS,
    Command,
    Mistake,
    edit_body,
    scan,
    side_call,
    strip,
    user_texts,
)
from louter.convert.model import Request, Response, Text, Usage
from louter.errors import ConversionError
from louter.proxy.pipeline import Call, Stage
from louter.proxy.sessions.commands import COMMANDS, Turn
from louter.proxy.sessions.names import session_id, store_key
from louter.proxy.sessions.state import Session

if TYPE_CHECKING:
    from louter.proxy.sessions import Sessions

NAMES = frozenset(COMMANDS)
MAX_COMMANDS = 32  # in one message (each may be a store round trip)
FIELDS = {name: key.field for name, key in KEYS.items() if key.field is not None}


class SessionStage(Stage):
    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions
        self._prefix = sessions.config.command_prefix
        self._may_hold = PrefixFinder(self._prefix)

    async def on_request(self, call: Call) -> Response | None:
        sessions = self._sessions
        if sessions.stale():
            await sessions.ready()
        exchange = call.exchange
        key = exchange.key
        name = key.name if key is not None else None
        found = exchange.session  # named by `tag` (None: a malformed x-session-id)
        if found is None:
            found = session_id(call.http, name)  # 400 for a malformed x-session-id
        where = store_key(found, name)
        book = sessions.book
        if book.absent(where):  # the common case: nothing set, no store call
            session = Session(found, where)
        else:
            session = await book.load(found, where)
        call.session = session
        answer = None
        if call.kind == "generate" and (call.raw is None or self._may_hold(call.raw)):
            prefix = self._prefix
            texts = user_texts(call.dialect, call.body)
            for text in texts:
                if prefix in text:  # the cheap check: most messages stop here
                    if not side_call(call.dialect, call.body):  # an agent's side call: none
                        answer = await self._commands(call, session, texts)
                    break
        if answer is None and not session.empty:
            self._apply(call, session)
        if session.changed:
            await sessions.book.save(session)
        return answer

    # ------------------------------------------------------------------ commands

    async def _commands(self, call: Call, session: Session, texts: list[str]) -> Response | None:
        scans = [s for text in texts if (s := scan(text, self._prefix, NAMES)).found]
        commands = [c for s in scans for c in s.commands]
        mistakes = [m for s in scans for m in s.mistakes]
        if not scans or not (session.interactive or _switches(commands)):
            return None
        if len(commands) + len(mistakes) > MAX_COMMANDS:
            text = f"at most {MAX_COMMANDS} commands in one message; nothing was done"
            self._count(call, "unknown", "malformed")
            return self._answer(call, text)
        unknown = [c for c in commands if c.name not in COMMANDS]
        if mistakes or unknown:
            return self._refuse(call, commands, mistakes, unknown)
        done, replies = await self._run(call, session, commands)
        if not done or all(not s.rest for s in scans):
            return self._answer(call, "\n".join(replies))
        clean = self._clean
        _send(call, strip(call.request, clean), edit_body(call.dialect, call.body, clean))
        return None

    def _clean(self, text: str) -> str:
        return scan(text, self._prefix, NAMES).rest

    async def _run(
        self, call: Call, session: Session, commands: list[Command]
    ) -> tuple[bool, list[str]]:
        """Run `commands` in order: (all done, their replies); the first that fails undoes
        the session's changes and its reply says why."""
        saved = (dict(session.settings), session.oneoff)
        turn = Turn(self._sessions, session, call)
        replies = []
        for index, command in enumerate(commands):
            try:
                replies.append(await COMMANDS[command.name].run(turn, command))
            except ValueError as exc:
                session.settings, session.oneoff = saved
                self._record(call, commands[:index], "ok")
                self._record(call, [command], "error")
                self._record(call, commands[index + 1 :], "skipped")
                message = f"{command.text}: {exc}"
                if index:
                    message += "\n(nothing before it was kept, except route edits)"
                return False, [message]
        self._record(call, commands, "ok")
        return True, replies

    def _refuse(
        self, call: Call, commands: list[Command], mistakes: list[Mistake], unknown: list[Command]
    ) -> Response:
        prefix = self._prefix
        lines = [m.message() for m in mistakes]
        lines += [f"{c.text}: unknown command" for c in unknown]
        if unknown:
            lines.append("Commands: " + ", ".join(prefix + name for name in COMMANDS))
        lines.append(f"Nothing was done. {prefix}help shows the syntax.")
        for mistake in mistakes:
            self._count(call, mistake.name if mistake.name in COMMANDS else "unknown", "malformed")
            _note(call, mistake.text, "malformed")
        for command in commands:
            known = command.name in COMMANDS
            outcome = "skipped" if known else "unknown"
            self._count(call, command.name if known else "unknown", outcome)
            _note(call, command.text, outcome)
        return self._answer(call, "\n".join(lines))

    def _record(self, call: Call, commands: list[Command], outcome: str) -> None:
        for command in commands:
            self._count(call, command.name, outcome)
            _note(call, command.text, outcome)

    def _count(self, call: Call, name: str, outcome: str) -> None:
        metrics = self._sessions.metrics
        if metrics is not None:
            metrics.command(name, outcome)

    def _answer(self, call: Call, text: str) -> Response:
        return Response(
            id=call.exchange.request_id,
            model=call.model,
            parts=(Text(text),),
            finish_reason="stop",
            usage=Usage(0, 0),
        )

    # ------------------------------------------------------------------ settings

    def _apply(self, call: Call, session: Session) -> None:
        """The session's routing and sampling settings, on this request."""
        if session.oneoff is not None and _next_request(call):
            call.model = session.oneoff
            session.oneoff = None
            session.changed = True
        else:
            call.model = self._target(session, call.model)
        settings = session.settings
        fields: dict[str, Any] = {f: settings[n] for n, f in FIELDS.items() if n in settings}
        if fields and call.kind == "generate":
            request = dataclasses.replace(call.request, **fields)
            _send(call, request, edit_body(call.dialect, call.body, fields=fields))

    def _target(self, session: Session, model: str) -> str:
        chosen = session.get("model") or model
        backend = session.get("backend")
        router = self._sessions.router
        if backend is None or router.address(chosen) is not None:
            return chosen
        if router.address(f"{backend}:{chosen}") is None:  # the config changed since
            names = ", ".join(router.backend_names())
            raise ConversionError(
                f"this session's backend {backend!r} is not configured (backends: {names}); "
                f"{self._prefix}backend(NAME) or {self._prefix}unset(backend) changes it"
            )
        return f"{backend}:{chosen}"


def _send(call: Call, request: Request, body: dict[str, Any] | None) -> None:
    """Send `request`: as `body` to a backend of the client's dialect when its body could
    be edited so (a Completions prompt stays as written), else in neutral form."""
    if body is None or call.rewritten:
        call.replace(request)
    else:
        call.edit(body, request)


def _next_request(call: Call) -> bool:
    """Whether `call` is the "next request" a one-off is for: not a token count, nor an
    agent's side call about the prompt (gemini-cli's router: `side.py`)."""
    return call.kind == "generate" and not side_call(call.dialect, call.body)


def _switches(commands: list[Command]) -> bool:
    return any(command.name == "interactive" for command in commands)


def _note(call: Call, text: str, outcome: str) -> None:
    exchange = call.exchange
    if exchange.commands is None:
        exchange.commands = []
    exchange.commands.append({"command": text, "outcome": outcome})


# The characters JSON may write with a short escape, and that escape's letter
_SHORT_ESCAPES = {
    '"': '"',
    "\\": "\\",
    "/": "/",
    "\b": "b",
    "\f": "f",
    "\n": "n",
    "\r": "r",
    "\t": "t",
}


class PrefixFinder:
    """Whether a JSON body's bytes may hold the command prefix in one of its strings,
    written as it is or with escapes (`\\u0021`, `\\/`): when they cannot, no command is
    in the body and it need not be parsed to look. Never wrong that way; it may say yes
    for a body without one (an escape of a prefix character elsewhere). Byte scans: ~20
    µs for a 50 KB body (`bytes.__contains__` takes 60 µs for two bytes)."""

    def __init__(self, prefix: str) -> None:
        self._literal = prefix.encode()
        forms = set()
        for char in prefix:
            code = ord(char)
            if code > 0xFFFF:  # written as a surrogate pair: its first half
                forms.add("u[dD][89abAB]")
            else:
                forms.add("u" + "".join(f"[{d.lower()}{d.upper()}]" for d in f"{code:04x}"))
            if char in _SHORT_ESCAPES:
                forms.add(re.escape(_SHORT_ESCAPES[char]))
        self._escapes = re.compile(("\\\\(?:" + "|".join(sorted(forms)) + ")").encode())

    def __call__(self, raw: bytes) -> bool:
        return _contains(raw, self._literal) or self._escapes.search(raw) is not None


def _contains(raw: bytes, needle: bytes) -> bool:
    """`needle in raw`, found from its first byte (a memchr: fast while that byte is rare)."""
    first, rest, at = needle[:1], needle[1:], raw.find(needle[:1])
    while at >= 0:
        if raw.startswith(rest, at + 1):
            return True
        at = raw.find(first, at + 1)
    return False
