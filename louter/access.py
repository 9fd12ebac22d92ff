"""Client keys (`[auth]`, `[keys.NAME]`): their frozen config and its parsing.

A key is configured by the SHA-256 digest of its text (`key_sha256`) or read from an
environment variable (`key_env`, looked up in `load_config` only); a plain key in a config
file is refused. Pure: no I/O, no clock (expiry is checked by `louter/proxy/auth.py`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from louter.errors import ConfigError

BUDGET_PERIODS = ("day", "week", "month", "total")
KEY_PREFIX = "lk-"  # what `louter keys new` puts before a fresh key
_HEX64 = re.compile(r"[0-9a-f]{64}")


def digest(key: str) -> bytes:
    """The SHA-256 digest of a key's text (what `key_sha256` holds, in hex)."""
    return hashlib.sha256(key.encode("utf-8")).digest()


@dataclass(frozen=True, slots=True)
class ClientKey:
    """One `[keys.NAME]`. `rpm`, `tpm` and `max_concurrent` feed the rate-limit stage
    (`proxy/limits.py`)."""

    name: str
    digest: bytes  # SHA-256 of the key
    models: tuple[str, ...] = ("*",)  # glob allow-list: ("*",) every model, () none
    rpm: int | None = None
    tpm: int | None = None
    max_concurrent: int | None = None
    expires: dt.datetime | None = None  # aware (UTC for a naive time or a date)
    admin: bool = False
    budget_usd: float | None = None  # spend allowed per `budget_period` (accounting stage)
    budget_period: str = "month"  # day | week | month | total (UTC)

    def allows(self, model: str) -> bool:
        return any(fnmatchcase(model, pattern) for pattern in self.models)

    def expired(self, wall: Callable[[], float]) -> bool:
        """Whether the key has expired by the wall clock `wall` (seconds since the epoch),
        read only for a key that expires."""
        return self.expires is not None and wall() >= self.expires.timestamp()


@dataclass(frozen=True, slots=True)
class Auth:
    """`[auth]` and the keys. Auth is on when a key is configured and `enabled` is true
    (`--disable-auth` sets it false)."""

    keys: tuple[ClientKey, ...] = ()
    enabled: bool = True
    max_failures: int = 10  # failed attempts from one address within the window ...
    failure_window_seconds: float = 60.0
    block_seconds: float = 60.0  # ... block that address (429 + Retry-After) this long
    max_tracked_addresses: int = 10_000  # the failure table's bound (oldest dropped)

    @property
    def on(self) -> bool:
        return self.enabled and bool(self.keys)


AUTH_KEYS: Mapping[str, Callable[[Any], bool]] = {
    "enabled": lambda v: isinstance(v, bool),
    "max_failures": lambda v: _int(v) and v >= 1,
    "failure_window_seconds": lambda v: _number(v) and v > 0,
    "block_seconds": lambda v: _number(v) and v > 0,
    "max_tracked_addresses": lambda v: _int(v) and v >= 1,
}
KEY_FIELDS: Mapping[str, Callable[[Any], bool]] = {
    "key_sha256": lambda v: isinstance(v, str) and _HEX64.fullmatch(v.lower()) is not None,
    "key_env": lambda v: isinstance(v, str) and bool(v),
    "models": lambda v: isinstance(v, list) and all(isinstance(m, str) and m for m in v),
    "rpm": lambda v: _int(v) and v >= 1,
    "tpm": lambda v: _int(v) and v >= 1,
    "max_concurrent": lambda v: _int(v) and v >= 1,
    "expires": lambda v: isinstance(v, dt.date),
    "admin": lambda v: isinstance(v, bool),
    "budget_usd": lambda v: _number(v) and v >= 0,
    "budget_period": lambda v: v in BUDGET_PERIODS,
}
_EXPECTED = {
    "enabled": "true or false",
    "max_failures": "an integer >= 1",
    "failure_window_seconds": "a number > 0",
    "block_seconds": "a number > 0",
    "max_tracked_addresses": "an integer >= 1",
    "key_sha256": "64 hexadecimal digits (the SHA-256 of the key)",
    "key_env": "the name of an environment variable",
    "models": "a list of model names or globs",
    "rpm": "an integer >= 1",
    "tpm": "an integer >= 1",
    "max_concurrent": "an integer >= 1",
    "expires": "a TOML date or date-time",
    "admin": "true or false",
    "budget_usd": "a number of US dollars >= 0",
    "budget_period": "one of " + ", ".join(BUDGET_PERIODS),
}
PLAIN = ("key", "api_key", "secret", "token")
NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")

Problem = Callable[[str, str | None, str], ConfigError]  # (table, key, problem) -> error


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check(
    table: str, data: Any, schema: Mapping[str, Callable[[Any], bool]], error: Problem
) -> None:
    if not isinstance(data, dict):
        raise error(table, None, "must be a table")
    for key, value in data.items():
        if key in PLAIN and table.startswith("keys."):
            raise error(
                table,
                key,
                "plain keys are not accepted in config files; use key_sha256 = "
                '"<sha256 hex>" (`louter keys new NAME` prints it) or key_env = "VARIABLE"',
            )
        check = schema.get(key)
        if check is None:
            raise error(table, key, f"unknown key (allowed: {', '.join(sorted(schema))})")
        if not check(value):
            raise error(table, key, f"must be {_EXPECTED[key]}, got {value!r}")


def _expiry(value: dt.date | None) -> dt.datetime | None:
    """A date expires at its first moment (UTC); a naive date-time is UTC."""
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _client_key(name: str, data: Any, env: Mapping[str, str], error: Problem) -> ClientKey:
    table = f"keys.{name}"
    if NAME.fullmatch(name) is None:
        raise error("keys", name, "a key name is 1-64 letters, digits, '_', '.' or '-'")
    _check(table, data, KEY_FIELDS, error)
    if ("key_sha256" in data) == ("key_env" in data):
        raise error(table, None, "needs exactly one of key_sha256 or key_env")
    if "key_env" in data:
        text = env.get(data["key_env"])
        if not text:
            raise error(table, "key_env", f"environment variable {data['key_env']} is not set")
        found = digest(text)
    else:
        found = bytes.fromhex(data["key_sha256"])
    return ClientKey(
        name=name,
        digest=found,
        models=tuple(data.get("models", ("*",))),
        rpm=data.get("rpm"),
        tpm=data.get("tpm"),
        max_concurrent=data.get("max_concurrent"),
        expires=_expiry(data.get("expires")),
        admin=data.get("admin", False),
        budget_usd=None if "budget_usd" not in data else float(data["budget_usd"]),
        budget_period=data.get("budget_period", "month"),
    )


def parse_auth(auth: Any, keys: Any, env: Mapping[str, str], error: Problem) -> Auth:
    """`[auth]` and `[keys.*]` as parsed TOML; `error` makes a located `ConfigError`."""
    _check("auth", auth, AUTH_KEYS, error)
    if not isinstance(keys, dict):
        raise error("", "keys", "must be a table of [keys.NAME] tables")
    parsed = tuple(_client_key(name, data, env, error) for name, data in keys.items())
    seen: dict[bytes, str] = {}
    for key in parsed:
        if key.digest in seen:
            raise error(f"keys.{key.name}", None, f"the same key as [keys.{seen[key.digest]}]")
        seen[key.digest] = key.name
    values = dict(auth)
    for name in ("failure_window_seconds", "block_seconds"):
        if name in values:
            values[name] = float(values[name])
    return Auth(keys=parsed, **values)
