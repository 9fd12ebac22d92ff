"""`config.toml` → frozen `Config`, parsed once at the edge.

Strict: unknown keys, wrong types and bad URLs raise `ConfigError` naming the file, the
table, the key and (where it can be found) the line. Environment lookups (API keys) happen
in one place, `load_config`, from a mapping passed in — code downstream never reads
`os.environ`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import tomlkit
from tomlkit.exceptions import TOMLKitError

from louter.access import Auth, parse_auth
from louter.catalog import CAPABILITIES, ModelInfo
from louter.convert.dialect import DIALECTS
from louter.errors import ConfigError

if TYPE_CHECKING:
    from louter.processor_config import Processor

PROTOCOLS = (*DIALECTS, "mock")
TOOL_FORMATS = ("json", "xml")
MAX_TOKENS_FIELDS = ("max_tokens", "max_completion_tokens")
COUNTING_MODES = ("estimate", "backend")
KEY_ENV_BY_PROTOCOL = {name: d.key_env for name, d in DIALECTS.items() if d.key_env}
PROXY_ENV = {"http": "http_proxy", "https": "https_proxy"}  # and upper case, and all_proxy


@dataclass(frozen=True, slots=True)
class Server:
    host: str = "127.0.0.1"
    port: int = 8080
    header_timeout_seconds: float = 10.0  # a request's head, from its first byte
    request_timeout_seconds: float = 60.0  # the whole request, body included
    idle_timeout_seconds: float = 75.0  # a keep-alive connection waiting for a request
    max_connections: int | None = None  # None: half the open-file limit
    drain_seconds: float = 120.0  # graceful stop: how long answers in flight may take


@dataclass(frozen=True, slots=True)
class Performance:
    timeout_seconds: float = 120.0
    connect_timeout_seconds: float = 10.0
    enable_metrics: bool = True
    log_requests: bool = True
    openai_token_counting_mode: str = "estimate"
    stream_idle_timeout_seconds: float = 300.0  # silence between two stream chunks
    failure_threshold: int = 5  # consecutive failures that open a backend's breaker; 0 = off
    cooldown_seconds: float = 30.0  # how long an open breaker skips its backend
    max_response_bytes: int = 64 * 1024 * 1024  # a whole (not streamed) upstream answer
    log_max_text_chars: int = 1024 * 1024  # a streamed answer's text kept for the log
    offload_bytes: int = 1024 * 1024  # request bodies above it are converted in a thread
    max_inflight_body_bytes: int = 256 * 1024 * 1024  # request bodies being handled at once


@dataclass(frozen=True, slots=True)
class Backend:
    """One upstream. `url` is normalised: no trailing `/`, `/v1` or `/v1beta`."""

    name: str
    protocol: str
    url: str = ""
    api_key: str | None = None  # the first key of `api_keys` when there is a pool
    key_env: str | None = None  # where the key was looked up, for the start-up summary
    api_keys: tuple[str, ...] = ()  # a key pool (`api_keys` / `api_keys_env`), rotated
    tool_format: str = "json"
    tool_call_repair: bool = True  # JSON tool calls written as text become real calls
    tool_call_repair_buffer_cap_bytes: int = 65536  # text held back while it may be a call
    max_tokens: int | None = None
    temperature: float | None = None
    weight: float = 1.0
    priority: int = 100
    max_retries: int = 0  # further tries on this backend after a retryable failure
    retry_backoff_seconds: float = 0.5  # first wait between tries; doubles per try
    max_tokens_field: str = "max_tokens"
    timeout_seconds: float | None = None  # None: [performance]'s
    connect_timeout_seconds: float | None = None  # None: [performance]'s
    model_mapping: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    implicit: bool = False  # a built-in preset the config file does not name
    forward_client_key: bool | None = None  # None: forward only with client auth off

    def takes_client_key(self, auth_on: bool) -> bool:
        """Whether the client's own key goes to this backend: never when it has a key of
        its own; with client auth on only if `forward_client_key = true` (a louter key
        itself is never forwarded: the auth gate removes it); with auth off unless
        `forward_client_key = false`."""
        if self.api_key or self.api_keys:
            return False
        return self.forward_client_key is True if auth_on else self.forward_client_key is not False

    def backend_model(self, client_model: str) -> str:
        """The name this backend knows `client_model` by."""
        return self.model_mapping.get(client_model, client_model)


@dataclass(frozen=True, slots=True)
class Proxies:
    """The outbound proxies from HTTP_PROXY / HTTPS_PROXY / NO_PROXY (read in
    `load_config`), and the CA bundle httpx would have read from SSL_CERT_FILE/_DIR."""

    http: str | None = None
    https: str | None = None
    no_proxy: tuple[str, ...] = ()
    ca_file: str | None = None
    ca_dir: str | None = None

    def for_url(self, url: str) -> str | None:
        """The proxy requests to `url` go through; None for a direct connection. This
        machine (localhost, 127.0.0.0/8, ::1) is always reached directly, as Go's
        ProxyFromEnvironment does: a proxy elsewhere could not reach it."""
        parts = urlsplit(url)
        proxy = self.https if parts.scheme == "https" else self.http
        if proxy is None:
            return None
        host = (parts.hostname or "").lower()
        if is_loopback(host):
            return None
        for entry in self.no_proxy:
            if entry == "*" or host == entry or host.endswith("." + entry):
                return None
            if entry == f"{host}:{parts.port}":
                return None
        return proxy


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name, not an address
        return False


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """`[store]`: shared state in Redis. `url` is shown without its credentials; the
    password (from the URL or `password_env`) never appears in a repr or a message."""

    url: str
    host: str
    port: int = 6379
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    op_timeout_ms: float = 50.0
    on_error: str = "local"
    key_prefix: str = "louter"
    pool_size: int = 8


@dataclass(frozen=True, slots=True)
class Rate:
    """One scope's limits (`[limits.default]`, `[limits.models."glob"]`,
    `[limits.backends.NAME]`, or a client key's): None means unlimited."""

    rpm: int | None = None
    tpm: int | None = None
    max_concurrent: int | None = None


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    """`[limits]`: rate limits and concurrency caps, counted in the store."""

    default: Rate | None = None
    models: tuple[tuple[str, Rate], ...] = ()  # (glob, limits), in config order
    backends: Mapping[str, Rate] = field(default_factory=lambda: MappingProxyType({}))
    queue_timeout_seconds: float = 0.0  # how long `max_concurrent` may queue before 429
    default_output_tokens: int = 1024  # a TPM estimate's output when a request sets none
    lease_seconds: float = 600.0  # a `max_concurrent` slot's lease (renewed while held)


@dataclass(frozen=True, slots=True)
class Config:
    server: Server
    performance: Performance
    backends: tuple[Backend, ...]
    source: str | None = None
    proxies: Proxies = field(default_factory=Proxies)
    store: StoreConfig | None = None  # None: every counter lives in the process
    auth: Auth = field(default_factory=Auth)  # client keys ([auth], [keys.NAME])
    limits: LimitsConfig | None = None  # None: no rate limits (no stage, no store calls)
    usage: UsageConfig | None = None  # None: no accounting (unless a key has a budget)
    models: Mapping[str, ModelInfo] = field(default_factory=lambda: MappingProxyType({}))
    catalog: CatalogConfig = field(default_factory=lambda: CatalogConfig())
    routing: RoutingConfig = field(default_factory=lambda: RoutingConfig())
    condense: CondenseConfig | None = None  # None: /api/condense answers 404
    processors: tuple[Processor, ...] = ()  # [[processors]], in file order (none: no stage)
    cache: CacheConfig | None = None  # [cache] (None: no cache stage, no cost)
    session: SessionConfig = field(default_factory=lambda: SessionConfig())  # [session]
    loop_detection: LoopDetection | None = None  # None: no text-loop guard (no stage)
    tool_call_loop: ToolCallLoop | None = None  # None: no tool-loop guard (no stage)

    def backend(self, name: str) -> Backend:
        """The backend called `name`; `ConfigError` listing the known ones otherwise."""
        for backend in self.backends:
            if backend.name == name:
                return backend
        known = ", ".join(b.name for b in self.backends)
        raise ConfigError(f"unknown backend {name!r}; known backends: {known}")


# --------------------------------------------------------------------------- presets

PRESETS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "mock": {"protocol": "mock"},
        "openai": {"protocol": "openai", "url": "https://api.openai.com"},
        "gemini": {"protocol": "gemini", "url": "https://generativelanguage.googleapis.com"},
        "anthropic": {"protocol": "anthropic", "url": "https://api.anthropic.com"},
        "openrouter": {
            "protocol": "openai",
            "url": "https://openrouter.ai/api",
            "api_key_env": "OPENROUTER_API_KEY",
        },
    }
)


# --------------------------------------------------------------------------- locating keys


class _Locator:
    """Finds the line of `key` inside `[table]` in the raw TOML text (best effort)."""

    _HEADER = re.compile(r"^\s*\[\[?([^\[\]]+)\]\]?\s*(#.*)?$")
    _KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_.-]+)\s*=""")

    def __init__(self, text: str) -> None:
        self._lines = text.splitlines()

    def line(self, table: str, key: str | None) -> int | None:
        current = ""
        for number, raw in enumerate(self._lines, start=1):
            header = self._HEADER.match(raw)
            if header:
                current = _normalise_table(header.group(1))
                if key is None and current == table:
                    return number
                if key is not None and current == (f"{table}.{key}" if table else key):
                    return number  # the unknown key is itself a table: `[table.key]`
                continue
            match = self._KEY.match(raw)
            if match and current == table and match.group(1).strip("\"'") == key:
                return number
        return None


def _normalise_table(name: str) -> str:
    parts = [p.strip().strip("\"'") for p in re.findall(r'"[^"]*"|\'[^\']*\'|[^.]+', name)]
    return ".".join(parts)


@dataclass(frozen=True, slots=True)
class _Where:
    """The file and locator, so every error can say where it happened."""

    path: str
    locator: _Locator

    def error(self, table: str, key: str | None, problem: str) -> ConfigError:
        line = self.locator.line(table, key)
        at = f" (line {line})" if line else ""
        place = f"[{table}]" if table else "top level"
        what = f" key {key!r}" if key else ""
        return ConfigError(f"{self.path}: {place}{what}: {problem}{at}")


# --------------------------------------------------------------------------- typed readers


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_TYPE_CHECKS: Mapping[str, tuple[Callable[[Any], bool], str]] = MappingProxyType(
    {
        "str": (lambda v: isinstance(v, str), "a string"),
        "int": (_is_int, "an integer"),
        "number": (_is_number, "a number"),
        "bool": (lambda v: isinstance(v, bool), "true or false"),
        "table": (lambda v: isinstance(v, dict), "a table"),
        "strings": (
            lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
            "a list of strings",
        ),
        "tables": (
            lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v),
            "an array of tables ([[...]])",
        ),
    }
)

SERVER_KEYS = {
    "host": "str",
    "port": "int",
    "header_timeout_seconds": "number",
    "request_timeout_seconds": "number",
    "idle_timeout_seconds": "number",
    "max_connections": "int",
    "drain_seconds": "number",
}
PERFORMANCE_KEYS = {
    "timeout_seconds": "number",
    "connect_timeout_seconds": "number",
    "enable_metrics": "bool",
    "log_requests": "bool",
    "openai_token_counting_mode": "str",
    "stream_idle_timeout_seconds": "number",
    "failure_threshold": "int",
    "cooldown_seconds": "number",
    "max_response_bytes": "int",
    "log_max_text_chars": "int",
    "offload_bytes": "int",
    "max_inflight_body_bytes": "int",
}
BACKEND_KEYS = {
    "url": "str",
    "protocol": "str",
    "api_key": "str",
    "api_key_env": "str",
    "api_keys": "strings",
    "api_keys_env": "strings",
    "tool_format": "str",
    "tool_call_repair": "bool",
    "tool_call_repair_buffer_cap_bytes": "int",
    "max_tokens": "int",
    "temperature": "number",
    "weight": "number",
    "priority": "int",
    "max_retries": "int",
    "retry_backoff_seconds": "number",
    "max_tokens_field": "str",
    "timeout_seconds": "number",
    "connect_timeout_seconds": "number",
    "model_mapping": "table",
    "forward_client_key": "bool",
}
TOP_KEYS = {
    "server": "table",
    "performance": "table",
    "backends": "table",
    "auth": "table",
    "keys": "table",
    "store": "table",
    "limits": "table",
    "usage": "table",
    "models": "table",
    "catalog": "table",
    "routing": "table",
    "condense": "table",
    "processors": "tables",
    "cache": "table",
    "session": "table",
    "loop_detection": "table",
    "tool_call_loop": "table",
}
STORE_KEYS = {
    "url": "str",
    "op_timeout_ms": "number",
    "on_error": "str",
    "key_prefix": "str",
    "pool_size": "int",
    "password_env": "str",
}
STORE_FAILURE_MODES = ("local", "open", "closed")
LIMITS_KEYS = {
    "default": "table",
    "models": "table",
    "backends": "table",
    "queue_timeout_seconds": "number",
    "default_output_tokens": "int",
    "lease_seconds": "number",
}
RATE_KEYS = {"rpm": "int", "tpm": "int", "max_concurrent": "int"}
CHOICES = {
    "protocol": PROTOCOLS,
    "tool_format": TOOL_FORMATS,
    "max_tokens_field": MAX_TOKENS_FIELDS,
    "openai_token_counting_mode": COUNTING_MODES,
    "on_error": STORE_FAILURE_MODES,
}


def _check_table(
    where: _Where, table: str, data: Mapping[str, Any], schema: Mapping[str, str]
) -> dict[str, Any]:
    """Reject unknown keys and wrong types; return the table as a plain dict."""
    for key, value in data.items():
        kind = schema.get(key)
        if kind is None:
            allowed = ", ".join(sorted(schema))
            raise where.error(table, key, f"unknown key (allowed: {allowed})")
        check, described = _TYPE_CHECKS[kind]
        if not check(value):
            shown = "(not shown)" if key in _SECRET_KEYS else repr(value)
            raise where.error(table, key, f"must be {described}, got {shown}")
        choices = CHOICES.get(key)
        if choices is not None and value not in choices:
            raise where.error(table, key, f"must be one of {', '.join(choices)}, got {value!r}")
    return dict(data)


def normalise_url(url: str) -> str:
    """Strip a trailing `/` and a trailing `/v1` (or Gemini's `/v1beta`) so paths can be
    appended uniformly."""
    url = url.rstrip("/")
    for suffix in ("/v1", "/v1beta"):
        if url.endswith(suffix):
            return url[: -len(suffix)]
    return url


_HOST_PORT = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5})|:([^:]*))?")
_CHARACTERS = {"\r": "a carriage return (CR)", "\n": "a line feed (LF)", " ": "a space"}


def _bad_character(url: str) -> str | None:
    for position, char in enumerate(url):
        if char in _CHARACTERS:
            return f"contains {_CHARACTERS[char]} at position {position}"
        if not " " < char < "\x7f":
            kind = "a control character" if char.isascii() else "a non-ASCII character"
            hint = "" if char.isascii() else " (write the host in its IDNA form, xn--...)"
            return f"contains {kind} ({char!r}) at position {position}{hint}"
    return None


def url_problem(url: str) -> str | None:
    """What is wrong with a backend URL (None when it is usable). Never repeats
    credentials found in it: messages may reach logs."""
    problem = _bad_character(url)
    if problem is not None:
        return problem
    parts = urlsplit(url)
    if "@" in parts.netloc:
        return (
            "must not contain credentials (user:password@); put the key in api_key or api_key_env"
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"must be an http:// or https:// URL, got {url!r}"
    if "?" in url or "#" in url:
        return f"must not have a query or fragment (?... or #...), got {url!r}"
    found = _HOST_PORT.fullmatch(parts.netloc)
    if found is None:
        return f"has an invalid host: {url!r}"
    port = found.group(2)
    if found.group(3) is not None or (port is not None and not 0 < int(port) < 65536):
        return f"has an invalid port: {url!r}"
    return None


def _check_url(where: _Where, table: str, url: str) -> str:
    problem = url_problem(url)
    if problem is not None:
        raise where.error(table, "url", problem)
    return normalise_url(url)


def _positive(where: _Where, table: str, data: Mapping[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        if key in data and data[key] <= 0:
            raise where.error(table, key, f"must be greater than 0, got {data[key]!r}")


def _non_negative(
    where: _Where, table: str, data: Mapping[str, Any], keys: tuple[str, ...]
) -> None:
    for key in keys:
        if key in data and data[key] < 0:
            raise where.error(table, key, f"must be 0 or more, got {data[key]!r}")


def _floats(values: dict[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        if key in values:
            values[key] = float(values[key])


# --------------------------------------------------------------------------- sections


def _parse_server(where: _Where, data: Mapping[str, Any]) -> Server:
    values = _check_table(where, "server", data, SERVER_KEYS)
    port = values.get("port", 8080)
    if not 0 <= port <= 65535:
        raise where.error("server", "port", f"must be between 0 and 65535, got {port}")
    seconds = ("header_timeout_seconds", "request_timeout_seconds", "idle_timeout_seconds")
    _positive(where, "server", values, (*seconds, "max_connections"))
    _floats(values, seconds)
    _non_negative(where, "server", values, ("drain_seconds",))
    _floats(values, ("drain_seconds",))
    return Server(**values)


_BYTE_LIMITS = ("max_response_bytes", "log_max_text_chars", "max_inflight_body_bytes")


def _parse_performance(where: _Where, data: Mapping[str, Any]) -> Performance:
    values = _check_table(where, "performance", data, PERFORMANCE_KEYS)
    seconds = (
        "timeout_seconds",
        "connect_timeout_seconds",
        "stream_idle_timeout_seconds",
        "cooldown_seconds",
    )
    _positive(where, "performance", values, seconds)
    _non_negative(where, "performance", values, ("failure_threshold", "offload_bytes"))
    _positive(where, "performance", values, _BYTE_LIMITS)
    _floats(values, seconds)
    return Performance(**values)


def _parse_mapping(where: _Where, table: str, data: Mapping[str, Any]) -> Mapping[str, str]:
    for key, value in data.items():
        if not isinstance(value, str):
            raise where.error(table, key, f"must map to a string model name, got {value!r}")
    return MappingProxyType(dict(data))


def _resolve_key(values: Mapping[str, Any], env: Mapping[str, str]) -> str | None:
    """`api_key`, else the variable named by `api_key_env`, else the protocol's usual one."""
    if "api_key" in values:
        return str(values["api_key"])
    name = values.get("api_key_env") or KEY_ENV_BY_PROTOCOL.get(values["protocol"])
    return env.get(name) if name else None


def _parse_backend(
    where: _Where, name: str, data: Mapping[str, Any], env: Mapping[str, str]
) -> Backend:
    table = f"backends.{name}"
    if not isinstance(data, dict):
        raise where.error("backends", name, "must be a table")
    preset = PRESETS.get(name, {})
    values = {**preset, **_check_table(where, table, data, BACKEND_KEYS)}
    values.setdefault("protocol", "openai")
    if values["protocol"] == "mock":
        values.pop("url", None)
    elif "url" not in values:
        raise where.error(table, "url", "is required for protocol " + repr(values["protocol"]))
    else:
        values["url"] = _check_url(where, table, values["url"])
    timeouts = ("timeout_seconds", "connect_timeout_seconds")
    _positive(where, table, values, ("max_tokens", "weight", *timeouts))
    _repair_defaults(where, table, values, env)
    _non_negative(where, table, values, ("max_retries", "retry_backoff_seconds"))
    mapping = _parse_mapping(where, f"{table}.model_mapping", values.pop("model_mapping", {}))
    values.update(_key_fields(where, table, data, values, env))
    _floats(values, ("temperature", "weight", "retry_backoff_seconds", *timeouts))
    return Backend(name=name, model_mapping=mapping, **values)


_SECRET_KEYS = frozenset({"api_keys"})  # a list may hold real keys beside a wrong entry


def _key_fields(
    where: _Where,
    table: str,
    data: Mapping[str, Any],
    values: dict[str, Any],
    env: Mapping[str, str],
) -> dict[str, Any]:
    """`api_key`, `key_env` and `api_keys` of a backend (popping the config's spellings)."""
    pool, pool_env = values.pop("api_keys", None), values.pop("api_keys_env", None)
    if pool is None and pool_env is None:
        key_env = (
            None
            if "api_key" in data
            else (values.get("api_key_env") or KEY_ENV_BY_PROTOCOL.get(values["protocol"]))
        )
        key = _resolve_key(values, env)
        values.pop("api_key_env", None)
        return {"api_key": key, "key_env": key_env}
    return _pool_fields(
        where, table, data, values, [str(k) for k in pool or ()], pool_env or (), env
    )


def _pool_fields(
    where: _Where,
    table: str,
    data: Mapping[str, Any],
    values: dict[str, Any],
    keys: list[str],
    names: Iterable[str],
    env: Mapping[str, str],
) -> dict[str, Any]:
    """A key pool: `api_keys` then the set variables of `api_keys_env`, in order (unset
    ones are named in `key_env` for the start-up summary; with none set and no literal
    key the backend has no key, as with an unset `api_key_env`). Mixing it with
    `api_key` / `api_key_env` is refused (which key would be the pool's?); so are an
    empty list and a key listed twice."""
    for single in ("api_key", "api_key_env"):
        if single in data:
            raise where.error(table, single, "cannot be combined with api_keys / api_keys_env")
    names = list(names)
    if not keys and not names:
        raise where.error(table, "api_keys", "must list at least one key")
    keys += [env[name] for name in names if env.get(name)]
    if len(set(keys)) != len(keys):
        raise where.error(table, None, "a key pool must list each key once")
    missing = ", ".join(name for name in names if not env.get(name)) or None
    values.pop("api_key_env", None)  # a preset's default variable
    return {"api_key": keys[0] if keys else None, "key_env": missing, "api_keys": tuple(keys)}


def _preset_backends(env: Mapping[str, str], taken: set[str]) -> list[Backend]:
    where = _Where("<built-in presets>", _Locator(""))
    return [
        replace(_parse_backend(where, name, {}, env), implicit=True)
        for name in PRESETS
        if name not in taken
    ]


_KEY_PREFIX = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def store_url_problem(url: str) -> str | None:
    """What is wrong with a `[store] url` (None when usable); never repeats a password."""
    parts = urlsplit(url)
    if parts.scheme == "rediss":
        return "rediss:// (TLS) is not supported; use redis:// on a trusted network or a tunnel"
    if parts.scheme != "redis" or not parts.hostname:
        return f"must be a redis://[:password@]host[:port][/db] URL, got {parts.scheme}://..."
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return "has an invalid port"
    path = parts.path.strip("/")
    if path and not path.isdigit():
        return f"the path must be a database number (/0, /1, ...), got /{path}"
    if parts.query or parts.fragment:
        return "must not have a query or fragment"
    return None


def _parse_store(where: _Where, data: Mapping[str, Any], env: Mapping[str, str]) -> StoreConfig:
    values = _check_table(where, "store", data, STORE_KEYS)
    if "url" not in values:
        raise where.error("store", "url", "is required (redis://host:port/db)")
    problem = store_url_problem(values["url"])
    if problem is not None:
        raise where.error("store", "url", problem)
    _positive(where, "store", values, ("op_timeout_ms", "pool_size"))
    prefix = values.get("key_prefix", "louter")
    if not _KEY_PREFIX.fullmatch(prefix):
        raise where.error("store", "key_prefix", "must be 1-64 of A-Z a-z 0-9 _ . : -")
    parts = urlsplit(values["url"])
    password = parts.password
    if "password_env" in values:
        password = env.get(values["password_env"]) or None
        if password is None:
            raise where.error("store", "password_env", f"{values['password_env']} is not set")
    host = parts.hostname or ""
    shown = f"redis://{'[' + host + ']' if ':' in host else host}:{parts.port or 6379}"
    return StoreConfig(
        url=shown + (parts.path or ""),
        host=host,
        port=parts.port or 6379,
        db=int(parts.path.strip("/") or 0),
        username=parts.username or None,
        password=password,
        op_timeout_ms=float(values.get("op_timeout_ms", 50.0)),
        on_error=values.get("on_error", "local"),
        key_prefix=prefix,
        pool_size=values.get("pool_size", 8),
    )


def _parse_rate(where: _Where, table: str, data: Any) -> Rate:
    if not isinstance(data, dict):
        raise where.error(table.rsplit(".", 1)[0], table.rsplit(".", 1)[-1], "must be a table")
    values = _check_table(where, table, data, RATE_KEYS)
    _positive(where, table, values, tuple(RATE_KEYS))
    return Rate(**values)


def _parse_limits(where: _Where, data: Mapping[str, Any], names: set[str]) -> LimitsConfig:
    values = _check_table(where, "limits", data, LIMITS_KEYS)
    _non_negative(where, "limits", values, ("queue_timeout_seconds",))
    _positive(where, "limits", values, ("default_output_tokens", "lease_seconds"))
    for name, rate in values.get("backends", {}).items():
        if name not in names:
            raise where.error("limits.backends", name, "is not a configured backend")
        if isinstance(rate, dict) and "max_concurrent" in rate:
            problem = "is not supported on a backend (rpm and tpm are)"
            raise where.error(f"limits.backends.{name}", "max_concurrent", problem)
    return LimitsConfig(
        default=_parse_rate(where, "limits.default", values["default"])
        if "default" in values
        else None,
        models=tuple(
            (glob, _parse_rate(where, f"limits.models.{glob}", rate))
            for glob, rate in values.get("models", {}).items()
        ),
        backends=MappingProxyType(
            {
                name: _parse_rate(where, f"limits.backends.{name}", rate)
                for name, rate in values.get("backends", {}).items()
            }
        ),
        queue_timeout_seconds=float(values.get("queue_timeout_seconds", 0.0)),
        default_output_tokens=values.get("default_output_tokens", 1024),
        lease_seconds=float(values.get("lease_seconds", 600.0)),
    )


# --------------------------------------------------------------------------- [usage]


@dataclass(frozen=True, slots=True)
class UsageConfig:
    """`[usage]`: per-exchange usage and cost accounting (louter/proxy/accounting/).
    Present (or implied by a key's `budget_usd`): the accounting stage runs."""

    db: str | None = "louter-usage.db"  # the SQLite file; None (db = ""): nothing kept
    queue_size: int = 10_000  # records waiting for the writer thread (full: counted, dropped)
    flush_seconds: float = 1.0  # the writer's batch interval
    retention_days: int = 400  # rows and day counters older than this go (0: kept forever)


DEFAULT_USAGE_DB = "louter-usage.db"
USAGE_KEYS = {"db": "str", "queue_size": "int", "flush_seconds": "number", "retention_days": "int"}


def _parse_usage(where: _Where, data: Mapping[str, Any]) -> UsageConfig:
    values = _check_table(where, "usage", data, USAGE_KEYS)
    _positive(where, "usage", values, ("queue_size", "flush_seconds"))
    _non_negative(where, "usage", values, ("retention_days",))
    _floats(values, ("flush_seconds",))
    db = values.pop("db", DEFAULT_USAGE_DB)
    if db and not Path(db).is_absolute() and Path(where.path).parent != Path():
        db = str(Path(where.path).parent / db)  # relative to the config file
    return UsageConfig(db=db or None, **values)


def _usage_of(top: Mapping[str, Any], where: _Where, auth: Auth) -> UsageConfig | None:
    if "usage" in top:
        return _parse_usage(where, top["usage"])
    budgets = any(k.budget_usd is not None for k in auth.keys)
    return _parse_usage(where, {}) if budgets else None


# --------------------------------------------------------------------------- catalog

MODEL_KEYS = {
    "name": "str",
    "provider": "str",
    "backend": "str",
    "context_length": "int",
    "input_cost_per_mtok": "number",
    "output_cost_per_mtok": "number",
    "cache_read_cost_per_mtok": "number",
    "cache_write_cost_per_mtok": "number",
    "capabilities": "strings",
}
CATALOG_KEYS = {
    "prices_file": "str",
    "discovery": "bool",
    "discovery_ttl_seconds": "number",
    "discovery_timeout_seconds": "number",
}
ROUTING_KEYS = {"unknown_models": "str"}
UNKNOWN_MODELS = ("default", "reject")
CONDENSE_KEYS = {"model": "str", "max_tokens": "int", "prompt": "str"}
_COSTS = (
    "input_cost_per_mtok",
    "output_cost_per_mtok",
    "cache_read_cost_per_mtok",
    "cache_write_cost_per_mtok",
)


@dataclass(frozen=True, slots=True)
class CatalogConfig:
    """`[catalog]`: the prices file (resolved against the config file's folder) and the
    discovery of each backend's own model list (lazy: only when a listing, a lookup or
    `unknown_models = "reject"` needs it; refreshed in the background after the TTL)."""

    prices_file: str | None = None
    discovery: bool = True
    discovery_ttl_seconds: float = 300.0
    discovery_timeout_seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    """`[routing]`: `unknown_models = "default"` sends a name no backend serves to the
    default backend; `"reject"` answers it 404 in the client's envelope."""

    unknown_models: str = "default"


@dataclass(frozen=True, slots=True)
class CondenseConfig:
    """`[condense]`: the backend and model `POST /api/condense` summarises with."""

    backend: str
    model: str
    max_tokens: int = 512  # when the request gives none
    prompt: str | None = None  # None: the built-in instruction


def _parse_model(where: _Where, name: str, data: Any, names: set[str]) -> ModelInfo:
    table = f"models.{name}"
    if not isinstance(data, dict):
        raise where.error("models", name, "must be a table")
    values = _check_table(where, table, data, MODEL_KEYS)
    _positive(where, table, values, ("context_length",))
    _non_negative(where, table, values, _COSTS)
    _floats(values, _COSTS)
    if "backend" in values and values["backend"] not in names:
        raise where.error(table, "backend", f"{values['backend']!r} is not a configured backend")
    unknown = [c for c in values.get("capabilities", ()) if c not in CAPABILITIES]
    if unknown:
        allowed = ", ".join(CAPABILITIES)
        raise where.error(table, "capabilities", f"unknown {unknown[0]!r} (allowed: {allowed})")
    values["capabilities"] = tuple(values.get("capabilities", ()))
    return ModelInfo(id=name, **values)


def _parse_models(
    where: _Where, data: Mapping[str, Any], names: set[str]
) -> Mapping[str, ModelInfo]:
    return MappingProxyType(
        {name: _parse_model(where, name, entry, names) for name, entry in data.items()}
    )


def _parse_catalog(where: _Where, data: Mapping[str, Any]) -> CatalogConfig:
    values = _check_table(where, "catalog", data, CATALOG_KEYS)
    seconds = ("discovery_ttl_seconds", "discovery_timeout_seconds")
    _positive(where, "catalog", values, seconds)
    _floats(values, seconds)
    if "prices_file" in values:
        values["prices_file"] = str(Path(where.path).parent / values["prices_file"])
    return CatalogConfig(**values)


def _parse_routing(where: _Where, data: Mapping[str, Any]) -> RoutingConfig:
    values = _check_table(where, "routing", data, ROUTING_KEYS)
    choice = values.get("unknown_models", "default")
    if choice not in UNKNOWN_MODELS:
        allowed = ", ".join(UNKNOWN_MODELS)
        raise where.error("routing", "unknown_models", f"must be one of {allowed}, got {choice!r}")
    return RoutingConfig(choice)


def _parse_condense(where: _Where, data: Mapping[str, Any], names: set[str]) -> CondenseConfig:
    values = _check_table(where, "condense", data, CONDENSE_KEYS)
    if "model" not in values:
        raise where.error("condense", "model", 'is required ("backend:model")')
    backend, sep, model = values.pop("model").partition(":")
    if not sep or not model:
        raise where.error("condense", "model", 'must be "backend:model"')
    if backend not in names:
        raise where.error("condense", "model", f"{backend!r} is not a configured backend")
    _positive(where, "condense", values, ("max_tokens",))
    return CondenseConfig(backend, model, **values)


# --------------------------------------------------------------------------- [cache]


@dataclass(frozen=True, slots=True)
class CacheConfig:
    """`[cache]`: the exact response cache (`louter/proxy/cache/`). Present, it may be
    turned on per request (`x-louter-cache: use`) even with `enabled = false`."""

    enabled: bool = False  # used for requests that do not say
    ttl_seconds: float = 3600.0
    max_bytes: int = 64 * 1024 * 1024  # the in-process LRU's bound (entries' bytes)
    max_entry_bytes: int = 1024 * 1024  # a larger answer is not stored
    shared: bool = False  # entries shared across client keys (never across forwarded keys)
    storage: str = "auto"  # auto: the [store] when configured, else memory


CACHE_KEYS = {
    "enabled": "bool",
    "ttl_seconds": "number",
    "max_bytes": "int",
    "max_entry_bytes": "int",
    "shared": "bool",
    "storage": "str",
}
CACHE_STORAGES = ("auto", "memory", "store")


def _parse_cache(where: _Where, data: Mapping[str, Any], has_store: bool) -> CacheConfig:
    values = _check_table(where, "cache", data, CACHE_KEYS)
    _positive(where, "cache", values, ("ttl_seconds", "max_bytes", "max_entry_bytes"))
    storage = values.get("storage", "auto")
    if storage not in CACHE_STORAGES:
        shown = ", ".join(CACHE_STORAGES)
        raise where.error("cache", "storage", f"must be one of {shown}, got {storage!r}")
    if storage == "store" and not has_store:
        raise where.error("cache", "storage", '"store" needs a [store] table (redis://...)')
    _floats(values, ("ttl_seconds",))
    return CacheConfig(**values)


# --------------------------------------------------------------------------- [session]

SESSION_KEYS = {
    "expiry_seconds": "number",
    "max_sessions": "int",
    "file_path": "str",
    "command_prefix": "str",
    "disable_interactive_commands": "bool",
}
_PREFIX_CHARS = frozenset("!#$%&'*+-./:;<>?@[]^`{|}~")  # punctuation, not ( ) , " = \\ _


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """`[session]`: sessions (named by `x-session-id` or a client's own session header)
    and the in-chat commands that steer them (`!/backend(...)`, `!/set(...)`, ...)."""

    expiry_seconds: float = 3600.0  # a session idle this long is forgotten
    max_sessions: int = 10000  # sessions this process keeps (the least recently used go)
    file_path: str | None = None  # in-process sessions and routes kept across restarts
    command_prefix: str = "!/"
    disable_interactive_commands: bool = False


def _parse_session(where: _Where, data: Mapping[str, Any], shared: bool) -> SessionConfig:
    values = _check_table(where, "session", data, SESSION_KEYS)
    _positive(where, "session", values, ("expiry_seconds", "max_sessions"))
    _floats(values, ("expiry_seconds",))
    prefix = values.get("command_prefix", "!/")
    if not 0 < len(prefix) <= 8 or not set(prefix) <= _PREFIX_CHARS:
        problem = f'must be 1-8 punctuation characters (not ( ) , " =), got {prefix!r}'
        raise where.error("session", "command_prefix", problem)
    if shared and "file_path" in values:
        problem = "keeps in-process sessions; with [store] url they live in the store"
        raise where.error("session", "file_path", problem)
    if values.get("file_path") == "":
        raise where.error("session", "file_path", "must not be empty")
    return SessionConfig(**values)


# --------------------------------------------------------------------------- loop guards


@dataclass(frozen=True, slots=True)
class LoopDetection:
    """`[loop_detection]`: repeated text in answers (`louter.convert.loops`)."""

    enabled: bool = True
    min_pattern_length: int = 50
    max_pattern_length: int = 500
    min_repetitions: int = 3
    ignore_markup: bool = True  # code fences, table rows, list items are not watched
    closing_note: str = (
        '[louter stopped this answer: the same text was repeated {count} times ("{pattern}")]'
    )


@dataclass(frozen=True, slots=True)
class ToolCallLoop:
    """`[tool_call_loop]`: the same tool call again and again (`convert.tool_loops`)."""

    enabled: bool = True
    max_repeats: int = 3
    ttl_seconds: float = 300.0
    mode: str = "block"  # block | warn | chance_then_block
    exempt_tools: tuple[str, ...] = ()


LOOP_DETECTION_KEYS = {
    "enabled": "bool",
    "min_pattern_length": "int",
    "max_pattern_length": "int",
    "min_repetitions": "int",
    "ignore_markup": "bool",
    "closing_note": "str",
}
TOOL_CALL_LOOP_KEYS = {
    "enabled": "bool",
    "max_repeats": "int",
    "ttl_seconds": "number",
    "mode": "str",
    "exempt_tools": "strings",
}
TOOL_LOOP_MODES = ("block", "warn", "chance_then_block")


def _parse_loop_detection(where: _Where, data: Mapping[str, Any]) -> LoopDetection:
    values = _check_table(where, "loop_detection", data, LOOP_DETECTION_KEYS)
    _positive(where, "loop_detection", values, ("min_pattern_length", "max_pattern_length"))
    found = LoopDetection(**values)
    if found.max_pattern_length < found.min_pattern_length:
        problem = f"must be at least min_pattern_length ({found.min_pattern_length})"
        raise where.error("loop_detection", "max_pattern_length", problem)
    if found.min_repetitions < 2:
        raise where.error("loop_detection", "min_repetitions", "must be 2 or more")
    try:
        found.closing_note.format(pattern="", count=0)
    except (KeyError, IndexError, ValueError) as exc:
        problem = f"may only use {{pattern}} and {{count}} ({exc!r})"
        raise where.error("loop_detection", "closing_note", problem) from None
    return found


def _parse_tool_call_loop(where: _Where, data: Mapping[str, Any]) -> ToolCallLoop:
    values = _check_table(where, "tool_call_loop", data, TOOL_CALL_LOOP_KEYS)
    _positive(where, "tool_call_loop", values, ("max_repeats", "ttl_seconds"))
    mode = values.get("mode", "block")
    if mode not in TOOL_LOOP_MODES:
        problem = f"must be one of {', '.join(TOOL_LOOP_MODES)}, got {mode!r}"
        raise where.error("tool_call_loop", "mode", problem)
    _floats(values, ("ttl_seconds",))
    values["exempt_tools"] = tuple(values.get("exempt_tools", ()))
    return ToolCallLoop(**values)


REPAIR_ENV = {  # environment defaults for backends that do not set the key
    "tool_call_repair": "TOOL_CALL_REPAIR_ENABLED",
    "tool_call_repair_buffer_cap_bytes": "TOOL_CALL_REPAIR_BUFFER_CAP_BYTES",
}
_BOOLEANS = {"true": True, "1": True, "yes": True, "on": True,
             "false": False, "0": False, "no": False, "off": False}  # fmt: skip


def _repair_defaults(
    where: _Where, table: str, values: dict[str, Any], env: Mapping[str, str]
) -> None:
    """TOOL_CALL_REPAIR_ENABLED / _BUFFER_CAP_BYTES apply to backends whose table does
    not set the key; a bad value is an error naming the variable."""
    for key, variable in REPAIR_ENV.items():
        raw = env.get(variable, "").strip()
        if key in values or not raw:
            continue
        if key == "tool_call_repair":
            if raw.lower() not in _BOOLEANS:
                raise ConfigError(f"{variable}: must be true or false, got {raw!r}")
            values[key] = _BOOLEANS[raw.lower()]
        elif not raw.isdigit() or int(raw) < 1:
            raise ConfigError(f"{variable}: must be a positive whole number, got {raw!r}")
        else:
            values[key] = int(raw)
    _positive(where, table, values, ("tool_call_repair_buffer_cap_bytes",))


# --------------------------------------------------------------------------- entry points


def _parse_processors(
    top: Mapping[str, Any], where: _Where, auth: Auth, backends: set[str]
) -> tuple[Processor, ...]:
    """`[[processors]]`; their parser is imported only when the file has some."""
    if "processors" not in top:
        return ()
    from louter.processor_config import parse_processors  # noqa: PLC0415 - only when used

    return parse_processors(
        top["processors"],
        where.error,
        keys=[key.name for key in auth.keys],
        backends=sorted(backends),
        dialects=list(DIALECTS),
    )


def parse_config(text: str, *, path: str, env: Mapping[str, str]) -> Config:
    """Parse TOML text. `path` is only used in messages."""
    where = _Where(path, _Locator(text))
    try:
        document = tomlkit.parse(text).unwrap()
    except TOMLKitError as exc:  # ParseError, and e.g. a table defined twice
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    top = _check_table(where, "", document, TOP_KEYS)
    server = _parse_server(where, top.get("server", {}))
    performance = _parse_performance(where, top.get("performance", {}))
    configured = [
        _parse_backend(where, name, data, env) for name, data in top.get("backends", {}).items()
    ]
    backends = configured + _preset_backends(env, {b.name for b in configured})
    store = _parse_store(where, top["store"], env) if "store" in top else None
    auth = parse_auth(top.get("auth", {}), top.get("keys", {}), env, where.error)
    names = {b.name for b in backends}
    limits = _parse_limits(where, top["limits"], names) if "limits" in top else None
    processors = _parse_processors(top, where, auth, names)
    cache = _parse_cache(where, top["cache"], store is not None) if "cache" in top else None

    session = _parse_session(where, top.get("session", {}), store is not None)
    loops = _parse_loop_detection(where, top["loop_detection"]) if "loop_detection" in top else None
    tool_loops = (
        _parse_tool_call_loop(where, top["tool_call_loop"]) if "tool_call_loop" in top else None
    )
    return Config(
        server,
        performance,
        tuple(backends),
        path,
        _proxies(env),
        store=store,
        auth=auth,
        limits=limits,
        usage=_usage_of(top, where, auth),
        models=_parse_models(where, top.get("models", {}), names),
        catalog=_parse_catalog(where, top.get("catalog", {})),
        routing=_parse_routing(where, top.get("routing", {})),
        condense=_parse_condense(where, top["condense"], names) if "condense" in top else None,
        processors=processors,
        cache=cache,
        session=session,
        loop_detection=loops,
        tool_call_loop=tool_loops,
    )


def _env(env: Mapping[str, str], name: str) -> str | None:
    """`name` in lower case, else upper case (curl's order); empty counts as unset."""
    return env.get(name) or env.get(name.upper()) or None


def _proxy_url(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    url = value if "://" in value else "http://" + value  # curl's reading of `host:port`
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name}: must be an http:// or https:// proxy URL, got {value!r}")
    return url


def _proxies(env: Mapping[str, str]) -> Proxies:
    every = _env(env, "all_proxy")
    found = {
        scheme: _proxy_url(variable.upper(), _env(env, variable) or every)
        for scheme, variable in PROXY_ENV.items()
    }
    no_proxy = tuple(
        entry.strip().lower().removeprefix("*.").lstrip(".")
        for entry in (_env(env, "no_proxy") or "").split(",")
        if entry.strip()
    )
    return Proxies(
        found["http"],
        found["https"],
        no_proxy,
        env.get("SSL_CERT_FILE") or None,
        env.get("SSL_CERT_DIR") or None,
    )


def load_config(path: Path | None, env: Mapping[str, str]) -> Config:
    """Load `path`, or the built-in presets alone when `path` is None."""
    if path is None:
        backends = tuple(_preset_backends(env, set()))
        return Config(Server(), Performance(), backends, None, _proxies(env))
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from exc
    return parse_config(text, path=str(path), env=env)
