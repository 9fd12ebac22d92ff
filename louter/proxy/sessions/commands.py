"""What each in-chat command does: `COMMANDS`, name -> (handler, syntax, help).

A handler changes the session (or the runtime routes) and returns the line louter
answers with; it raises `ValueError` with the reason when it cannot (the whole message
is then refused: nothing it asked for is kept, no backend is called).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from louter.convert.commands import KEYS, Command, read_setting
from louter.proxy.addressing import unknown_backend
from louter.proxy.sessions.routes import MAX_TARGETS

if TYPE_CHECKING:
    from louter.proxy.pipeline import Call
    from louter.proxy.sessions import Sessions
    from louter.proxy.sessions.routes import Listing
    from louter.proxy.sessions.state import Session


@dataclass(frozen=True, slots=True)
class Turn:
    """What a command runs against."""

    sessions: Sessions
    session: Session
    call: Call


Handler = Callable[[Turn, Command], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class Spec:
    run: Handler
    syntax: str  # without the prefix
    help: str


# --------------------------------------------------------------------------- checks


def _one(command: Command, what: str) -> str:
    values = command.positional()
    if len(values) != 1 or len(command.args) != 1:
        raise ValueError(f"takes one {what}: {command.name}({what.upper()})")
    return values[0]


def _backend(turn: Turn, name: str) -> str:
    names = turn.sessions.router.backend_names()
    if name not in names:
        raise ValueError(f"unknown backend {name!r}; backends: {', '.join(names)}")
    return name


def _target(turn: Turn, target: str) -> str:
    """A `backend:model` whose backend is configured (ValueError listing them)."""
    name, sep, model = target.partition(":")
    if not sep or not model or not name:
        raise ValueError(f"{target!r} is not backend:model")
    read_setting("model", model)
    _backend(turn, name)
    return target


async def _set_model(turn: Turn, value: str) -> str:
    """`NAME` or `backend:model`: the second sets the backend too. A name whose prefix
    is no backend is kept as a model name (`qwen3:8b`) unless it is known not to be
    served (`addressing.py`): then it is refused, listing the backends."""
    read_setting("model", value)
    sessions = turn.sessions
    addressed = sessions.router.address(value)
    if addressed is None:
        problem = await unknown_backend(sessions.router, sessions.served, value)
        if problem is not None:
            raise ValueError(problem)
        turn.session.set("model", value)
        return f"model set to {value}"
    backend, _, model = value.partition(":")
    turn.session.set("backend", backend)
    turn.session.set("model", model)
    return f"backend set to {backend}, model to {model}"


async def _set_backend(turn: Turn, value: str) -> str:
    turn.session.set("backend", _backend(turn, value))
    return f"backend set to {value}"


_SPECIAL: Mapping[str, Callable[[Turn, str], Awaitable[str]]] = {
    "model": _set_model,
    "backend": _set_backend,
}


async def _set_one(turn: Turn, name: str, text: str) -> str:
    special = _SPECIAL.get(name)
    if special is not None:
        return await special(turn, text)
    value = read_setting(name, text)
    turn.session.set(name, value)
    return f"{name} set to {_shown(value)}"


def _shown(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _admin(turn: Turn) -> None:
    """With client auth on, only an admin key edits routes (they apply to every client)."""
    key = turn.call.exchange.key
    if key is not None and not key.admin:
        raise ValueError("editing routes needs an admin key (admin = true in [keys.NAME])")


# --------------------------------------------------------------------------- handlers


async def _hello(turn: Turn, command: Command) -> str:
    session, prefix = turn.session, turn.sessions.config.command_prefix
    lines = [f"Welcome to louter. Session: {session.id}", describe(turn)]
    lines.append(f"Type {prefix}help for the commands.")
    return "\n".join(lines)


def describe(turn: Turn) -> str:
    session = turn.session
    settings = ", ".join(f"{k}={_shown(v)}" for k, v in session.settings.items())
    lines = [f"Settings: {settings or 'none (defaults apply)'}"]
    if session.oneoff:
        lines.append(f"Next request only: {session.oneoff}")
    lines.append(f"Backends: {', '.join(turn.sessions.router.backend_names())}")
    return "\n".join(lines)


async def _help(turn: Turn, command: Command) -> str:
    prefix = turn.sessions.config.command_prefix
    lines = ["Commands:"]
    lines += [f"  {prefix}{spec.syntax} - {spec.help}" for spec in COMMANDS.values()]
    lines.append("Settings for set/unset:")
    lines += [f"  {name}={key.form} - {key.help}" for name, key in KEYS.items()]
    lines.append(f'Quote values with spaces or commas: {prefix}set(project="my project")')
    return "\n".join(lines)


async def _set(turn: Turn, command: Command) -> str:
    if not command.args or any(arg.key is None for arg in command.args):
        raise ValueError("takes key=value pairs: set(key=value, ...)")
    return "; ".join([await _set_one(turn, arg.key, arg.value) for arg in command.args if arg.key])


async def _unset(turn: Turn, command: Command) -> str:
    names = command.positional()
    if not names or len(names) != len(command.args):
        raise ValueError("takes setting names: unset(key, ...)")
    for name in names:
        if name not in KEYS:
            raise ValueError(f"unknown setting {name!r}; settings: {', '.join(KEYS)}")
        turn.session.unset(name)
    return f"unset {', '.join(names)}"


async def _backend_command(turn: Turn, command: Command) -> str:
    return await _set_backend(turn, _one(command, "name"))


async def _model(turn: Turn, command: Command) -> str:
    return await _set_model(turn, _one(command, "name"))


async def _oneoff(turn: Turn, command: Command) -> str:
    target = _target(turn, _one(command, "backend:model"))
    turn.session.oneoff = target
    turn.session.changed = True
    return f"the next request goes to {target}"


async def _temperature(turn: Turn, command: Command) -> str:
    return await _set_one(turn, "temperature", _one(command, "value"))


async def _interactive(turn: Turn, command: Command) -> str:
    return await _set_one(turn, "interactive", _one(command, "true|false"))


async def _pwd(turn: Turn, command: Command) -> str:
    found = turn.session.get("project_dir")
    prefix = turn.sessions.config.command_prefix
    return found or f"no project_dir set ({prefix}set(project_dir=/path/to/project))"


async def _route_list(turn: Turn, command: Command) -> str:
    listing = await turn.sessions.routes.read()
    if not listing:
        return "No runtime routes (the config's model_mapping applies)."
    lines = ["Runtime routes (tried in order, before the config's mapping):"]
    lines += [f"  {model} -> {', '.join(targets)}" for model, targets in listing.items()]
    return "\n".join(lines)


async def _route_clear(turn: Turn, command: Command) -> str:
    _admin(turn)
    model = _one(command, "model")

    def clear(listing: Listing) -> None:
        if listing.pop(model, None) is None:
            raise ValueError(f"no runtime route for {model!r}")

    await turn.sessions.routes.edit(clear)
    return f"route for {model} cleared"


def _route_add(front: bool) -> Handler:
    async def add(turn: Turn, command: Command) -> str:
        _admin(turn)
        values = command.positional()
        if len(values) < 2 or len(values) != len(command.args):
            raise ValueError(f"takes a model and targets: {command.name}(MODEL, backend:model)")
        model, targets = read_setting("model", values[0]), values[1:]
        for target in targets:
            _target(turn, target)

        def change(listing: Listing) -> None:
            old = [t for t in listing.get(model, []) if t not in targets]
            listing[model] = [*targets, *old] if front else [*old, *targets]
            if len(listing[model]) > MAX_TARGETS:
                raise ValueError(f"a route holds at most {MAX_TARGETS} targets")

        listing = await turn.sessions.routes.edit(change)
        return f"route for {model}: {', '.join(listing[model])}"

    return add


COMMANDS: Mapping[str, Spec] = {
    "hello": Spec(_hello, "hello", "welcome and this session's settings"),
    "help": Spec(_help, "help", "this list"),
    "set": Spec(_set, "set(key=value, ...)", "set session settings (below)"),
    "unset": Spec(_unset, "unset(key, ...)", "back to the default"),
    "backend": Spec(_backend_command, "backend(NAME)", "use this backend for the session"),
    "model": Spec(_model, "model(NAME|backend:model)", "use this model for the session"),
    "oneoff": Spec(_oneoff, "oneoff(backend:model)", "use this for the next request only"),
    "temperature": Spec(_temperature, "temperature(0-2)", "set the sampling temperature"),
    "interactive": Spec(_interactive, "interactive(true|false)", "false: commands are text"),
    "pwd": Spec(_pwd, "pwd", "show the session's project_dir"),
    "route-list": Spec(_route_list, "route-list", "show the runtime routes"),
    "route-clear": Spec(_route_clear, "route-clear(MODEL)", "drop a model's runtime route"),
    "route-append": Spec(
        _route_add(False), "route-append(MODEL, backend:model)", "add a fallback at the end"
    ),
    "route-prepend": Spec(
        _route_add(True), "route-prepend(MODEL, backend:model)", "add a target in front"
    ),
}
