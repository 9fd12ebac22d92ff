"""What may go into an upstream request line or header: every rule in one place.

A client's model name is checked once at its front door (`check_model`): 1 to 256
characters from `A-Z a-z 0-9 . - _ : / @ +`, `/` only between non-empty segments that are
not `.` or `..`. Real ids pass (`gpt-oss:20b`, `Qwen/Qwen3-Coder-30B`,
`models/gemini-2.5-pro`); control characters, whitespace, `?`, `#`, `%`, `\\`, non-ASCII
and path tricks get a 400 in the client's envelope. A model that goes into a URL path is
percent-escaped (`louter.convert.escape.path_segment`): a `/` in it never starts a new
path segment.

Client values forwarded as header values (keys, `anthropic-version`, ...) go through
`louter.convert.escape.header_value`. The transports check the request target and every
header once more (`request_target`, `header_block`) and refuse, never send, anything with
a control character: defence in depth should a value ever bypass the doors.

All checks are a precompiled regex each (no per-request allocation beyond the match).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from louter.errors import ConversionError, LouterError
from louter.http.message import HeaderList

MODEL_MAX_LENGTH = 256
_SEGMENT = r"(?!\.\.?(?:/|\Z))[A-Za-z0-9._:@+\-]+"
_MODEL = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")
# a request target: no CTL, no space, no fragment
_BAD_TARGET = re.compile(rb"[\x00-\x20\x7f#]")
# header lines: a token name, a value without CTLs (HTAB allowed), CRLF
_FIELDS = re.compile(rb"(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+: [^\x00-\x08\x0a-\x1f\x7f]*+\r\n)*+")


def check_model(model: str) -> str:
    """`model` if it is a safe model name; a 400 `ConversionError` otherwise."""
    if len(model) <= MODEL_MAX_LENGTH and _MODEL.fullmatch(model) is not None:
        return model
    raise ConversionError(
        f"invalid model name {model[:80]!r}: use 1-{MODEL_MAX_LENGTH} characters of"
        " letters, digits and . - _ : / @ + (no empty, '.' or '..' path segments)"
    )


def request_target(prefix: str, path: str, label: str) -> bytes:
    """`prefix + path` as request-target bytes; refused (400, nothing sent) when it is
    not latin-1 or holds a control character, a space or a `#`."""
    try:
        target = (prefix + path).encode("latin-1")
    except UnicodeEncodeError:
        raise _refused(label, "a non-latin-1 path") from None
    if _BAD_TARGET.search(target) is not None or not target.startswith(b"/"):
        raise _refused(label, "an unsafe path")
    return target


def header_block(headers: HeaderList, label: str) -> bytes:
    """The header lines of `headers`; refused (400, nothing sent) when a name is not a
    token or a value holds a control character (one regex over the joined lines, and as
    many lines as headers: a CRLF inside a value would make well-formed extra lines)."""
    block = b"".join([name + b": " + value + b"\r\n" for name, value in headers])
    if block.count(b"\n") != len(headers) or _FIELDS.fullmatch(block) is None:
        bad = next((n for n, v in headers if not _line_ok(n + b": " + v + b"\r\n")), b"")
        raise _refused(label, f"an unsafe {bad[:40]!r} header")
    return block


def host_header(host: str, port: int | None) -> str:
    """`host[:port]` for the Host header (and an origin): never the URL's credentials."""
    if ":" in host:
        host = f"[{host}]"
    return host if port is None else f"{host}:{port}"


def _line_ok(line: bytes) -> bool:
    return line.count(b"\n") == 1 and _FIELDS.fullmatch(line) is not None


def addresses(url: str) -> list[str]:
    """The strings that would reveal `url` in an error message (longest first): the URL,
    its netloc (with any credentials), host:port and host."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or {"https": 443}.get(parts.scheme, 80)
    found = {url, url.rstrip("/"), parts.netloc, host_header(host, port), f"{host}:{port}", host}
    return sorted((s for s in found if s), key=len, reverse=True)


def scrub(text: str, secrets: list[str], label: str) -> str:
    """`text` with every one of `secrets` (from `addresses`) replaced by `label`."""
    for secret in secrets:
        text = text.replace(secret, label)
    return text


def _refused(label: str, what: str) -> LouterError:
    return LouterError(f"{label}: request refused: {what}", status_hint=400)
