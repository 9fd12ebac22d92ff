"""Layering rules: `louter.convert` is sans-io and its public surface is pinned."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import louter.convert

CONVERT = Path(louter.convert.__file__).parent

# Top-level modules that do I/O, read the clock/env/randomness, or run concurrency.
FORBIDDEN = {
    "trio",
    "httpx",
    "httpcore",
    "httptools",
    "h11",
    "anyio",
    "asyncio",
    "socket",
    "ssl",
    "select",
    "selectors",
    "os",
    "sys",
    "time",
    "datetime",
    "random",
    "secrets",
    "uuid",
    "pathlib",
    "io",
    "_io",
    "tempfile",
    "shutil",
    "glob",
    "fileinput",
    "mmap",
    "subprocess",
    "threading",
    "multiprocessing",
    "concurrent",
    "signal",
    "importlib",
    "logging",
}
FORBIDDEN_DOTTED = {"urllib.request", "http.client", "http.server"}
# convert is the bottom layer: it may not reach up into the I/O shells or the CLI.
UPPER_LAYERS = {"proxy", "probes", "logs", "cli", "http", "mock", "testing"}


def _modules() -> list[Path]:
    return sorted(CONVERT.rglob("*.py"))


def _resolve(package: list[str], level: int, module: str | None) -> str:
    """The absolute name of `from <level dots><module> import ...` inside `package`."""
    base = package[: len(package) - level + 1] if level else []
    return ".".join([*base, *([module] if module else [])])


def _imported(path: Path) -> set[str]:
    """Absolute dotted names of everything `path` imports."""
    package = list(path.relative_to(CONVERT.parent.parent).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = _resolve(package, node.level, node.module)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def _violations(name: str) -> bool:
    parts = name.split(".")
    if parts[0] in FORBIDDEN or any(name.startswith(d) for d in FORBIDDEN_DOTTED):
        return True
    return parts[0] == "louter" and len(parts) > 1 and parts[1] in UPPER_LAYERS


DIALECT_MODULES = {
    "__init__.py",
    "request.py",
    "response.py",
    "stream_parser.py",
    "stream_emitter.py",
    "wire.py",
    "probe.py",
}


def test_convert_has_modules() -> None:
    names = {p.name for p in _modules()}
    assert {"__init__.py", "sse.py", "dialect.py", "record.py", "model.py"} <= names


def _dialect_packages() -> list[Path]:
    from louter.convert.dialect import DIALECTS

    return [CONVERT / name for name in DIALECTS]


def test_every_dialect_is_a_package_with_the_same_modules() -> None:
    for package in _dialect_packages():
        names = {p.name for p in package.glob("*.py")}
        assert DIALECT_MODULES <= names, package


def test_no_dialect_is_spelled_in_a_file_name_prefix() -> None:
    """The dialect is the package, never a prefix or a facade module beside it."""
    top = {p.stem for p in CONVERT.glob("*.py")}
    for package in _dialect_packages():
        assert package.name not in top
        assert not [name for name in top if name.startswith(package.name + "_")]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(CONVERT)))
def test_convert_is_sans_io(path: Path) -> None:
    bad = sorted(name for name in _imported(path) if _violations(name))
    assert bad == [], f"{path.name} imports I/O or upper layers: {bad}"


def test_import_resolution_and_rules() -> None:
    package = ["louter", "convert"]
    assert _resolve(package, 0, "os.path") == "os.path"
    assert _resolve(package, 1, "sse") == "louter.convert.sse"
    assert _resolve(package, 2, "proxy") == "louter.proxy"
    assert _resolve(package, 2, None) == "louter"
    assert _violations("louter.proxy.upstream") and not _violations("louter.errors")
    assert _violations("os.path") and _violations("urllib.request")
    assert not _violations("json") and not _violations("urllib.parse")


def test_public_surface_is_pinned() -> None:
    assert louter.convert.__all__ == ["SSEDecoder", "SSEEvent", "StreamAssembler", "encode_event"]
    for name in louter.convert.__all__:
        assert getattr(louter.convert, name).__module__.startswith("louter.convert.")


# logs/ holds JSONL records and pure reducers: rendering (rich, textual) and network I/O
# (httpx, trio) belong to louter.cli, which is the only layer that prints.
LOGS = CONVERT.parent / "logs"
LOGS_FORBIDDEN = {"rich", "textual", "httpx", "httpcore", "trio", "anyio", "asyncio", "socket"}
LOGS_UPPER = {"cli", "proxy", "http", "probes", "mock", "bench"}


def _logs_violation(name: str) -> bool:
    parts = name.split(".")
    if parts[0] in LOGS_FORBIDDEN:
        return True
    return parts[0] == "louter" and len(parts) > 1 and parts[1] in LOGS_UPPER


def test_logs_has_modules() -> None:
    names = {p.name for p in LOGS.rglob("*.py")}
    assert {"__init__.py", "reader.py", "pairs.py", "stats.py"} <= names


@pytest.mark.parametrize("path", sorted(LOGS.rglob("*.py")), ids=lambda p: str(p.relative_to(LOGS)))
def test_logs_neither_renders_nor_does_network_io(path: Path) -> None:
    bad = sorted(name for name in _imported(path) if _logs_violation(name))
    assert bad == [], f"logs/{path.name} imports rendering, network I/O or upper layers: {bad}"


def test_logs_rule_catches_renderers() -> None:
    for name in ("rich.console", "textual.app", "httpx", "trio.lowlevel", "louter.cli.log_views"):
        assert _logs_violation(name), name
    for name in ("orjson", "gzip", "louter.logs.query", "louter.errors"):
        assert not _logs_violation(name), name
