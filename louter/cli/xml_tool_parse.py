"""`xml-tool-parse`: extract Qwen-style XML tool calls from text and print them as JSON.

Stdout carries JSON only (jq-clean); diagnostics go to stderr. Exit status: 0 when at
least one call was found, 1 when none, 2 on bad input (unreadable file, bad schema, text
that is not UTF-8). The parsing itself is `louter.convert.xml_tools`.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from contextlib import nullcontext
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import orjson
import typer
from rich.console import Console
from rich.text import Text

from louter.convert.dialect import DIALECTS
from louter.convert.model import Tool, ToolCall
from louter.convert.tool_text import XmlError, XmlEvent, XmlText, XmlToolCall, merge_text
from louter.convert.xml_tools import XmlToolExtractor
from louter.errors import ConversionError

app = typer.Typer(
    add_completion=False,
    help="Extract Qwen-style XML tool calls (<tool_call><function=...>) from text as JSON.",
)

NAME = "xml-tool-parse"


# one format per dialect, named after it (`--format openai`, ...)
Format = StrEnum("Format", {name: name for name in DIALECTS})  # type: ignore[misc]
DEFAULT_FORMAT = Format("openai")


def call_ids(index: int) -> str:
    return f"call_{index}"


# --------------------------------------------------------------------------- rendering


def render(call: ToolCall, fmt: str) -> dict[str, Any]:
    """`call` in the shape of dialect `fmt` (`Dialect.tool_call_json`)."""
    return DIALECTS[fmt].tool_call_json(call)


def _error(event: XmlError) -> dict[str, Any]:
    return {"kind": event.kind, "message": event.message, "raw": event.raw}


def event_line(event: XmlEvent, fmt: Format) -> dict[str, Any]:
    """One event as a `--stream` JSON line."""
    if isinstance(event, XmlText):
        return {"type": "text", "text": event.text}
    if isinstance(event, XmlToolCall):
        return {"type": "tool_call", "call": render(event.call, fmt)}
    return {"type": "error", **_error(event)}


def document(events: list[XmlEvent], fmt: Format, with_text: bool) -> Any:
    """All events as one JSON document: the calls, or an object with text and errors."""
    calls = [render(e.call, fmt) for e in events if isinstance(e, XmlToolCall)]
    if not with_text:
        return calls
    text = "".join(e.text for e in events if isinstance(e, XmlText))
    errors = [_error(e) for e in events if isinstance(e, XmlError)]
    return {"calls": calls, "text": text, "errors": errors}


# --------------------------------------------------------------------------- input


def load_tools(path: Path) -> list[Tool]:
    """OpenAI-style tools (`[{"type":"function","function":{...}}]`, `{"tools":[...]}`;
    flat `{"name","parameters"}` items are accepted too).

    Raises:
        OSError: the file cannot be read.
        ConversionError: it is not such a JSON document.
    """
    try:
        data = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ConversionError(f"{path}: not JSON: {exc}") from None
    except OSError as exc:
        raise OSError(f"cannot read {path}: {exc.strerror or exc}") from None
    if isinstance(data, dict) and "tools" in data:
        data = data["tools"]
    if not isinstance(data, list):
        raise ConversionError(f'{path}: expected a list of tools or {{"tools": [...]}}')
    return [_tool(item, f"{path}: tools[{index}]") for index, item in enumerate(data)]


def _tool(item: Any, where: str) -> Tool:
    function = item.get("function", item) if isinstance(item, dict) else None
    if not isinstance(function, dict):
        raise ConversionError(f"{where}: expected an object")
    name, parameters = function.get("name"), function.get("parameters", {})
    if not isinstance(name, str) or not name:
        raise ConversionError(f"{where}: 'name' must be a non-empty string")
    if not isinstance(parameters, dict):
        raise ConversionError(f"{where}: 'parameters' must be an object")
    return Tool(name, str(function.get("description", "")), parameters)


def read_pieces(source: BinaryIO, size: int) -> Iterator[str]:
    """The source as text, read `size` bytes at a time (all at once when `size` is 0).

    Raises:
        UnicodeDecodeError: the bytes are not UTF-8.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    while chunk := source.read(size or -1):
        if text := decoder.decode(chunk):
            yield text
    if tail := decoder.decode(b"", final=True):
        yield tail


# --------------------------------------------------------------------------- the command


def run(
    pieces: Iterator[str],
    extractor: XmlToolExtractor,
    fmt: Format,
    *,
    with_text: bool,
    stream: bool,
    out: Console,
    err: Console,
) -> int:
    """Feed the pieces, print the result; the exit status (0: calls found, 1: none)."""
    events: list[XmlEvent] = []
    for new in _decided(pieces, extractor):
        if stream:
            for event in new:
                _print(out, event_line(event, fmt), indent=False)
        events += new
    events = merge_text(events)
    if not stream:
        _print(out, document(events, fmt, with_text), indent=True)
        if not with_text:
            _warn_errors(err, events)
    return 0 if any(isinstance(e, XmlToolCall) for e in events) else 1


def _decided(pieces: Iterator[str], extractor: XmlToolExtractor) -> Iterator[list[XmlEvent]]:
    """The events each piece decides, then those the end of input decides."""
    for piece in pieces:
        yield extractor.feed(piece)
    yield extractor.flush()


def _print(out: Console, value: Any, *, indent: bool) -> None:
    option = orjson.OPT_INDENT_2 if indent else 0
    out.out(orjson.dumps(value, option=option).decode(), highlight=False)


def _warn_errors(err: Console, events: list[XmlEvent]) -> None:
    for event in events:
        if isinstance(event, XmlError):
            _complain(err, f"{event.message} ({len(event.raw)} characters of raw text)")


def _complain(err: Console, message: str) -> None:
    err.print(Text(f"{NAME}: {message}"), soft_wrap=True, highlight=False)


@app.command()
def main_command(
    file: Annotated[
        Path | None, typer.Argument(help="Text to parse; stdin when omitted or '-'.")
    ] = None,
    fmt: Annotated[
        Format, typer.Option("--format", "-f", help="Shape of the printed calls.")
    ] = DEFAULT_FORMAT,
    schema: Annotated[
        Path | None,
        typer.Option("--schema", help="OpenAI-style tools JSON: names and parameter types."),
    ] = None,
    with_text: Annotated[
        bool, typer.Option("--with-text", help="Print {calls, text, errors} instead.")
    ] = False,
    stream: Annotated[
        bool, typer.Option("--stream", help="Feed the input in pieces; one JSON line per event.")
    ] = False,
    chunk_size: Annotated[
        int, typer.Option("--chunk-size", min=1, help="Bytes per piece with --stream.")
    ] = 8,
) -> None:
    """Extract XML tool calls from text and print them as JSON."""
    out = Console(soft_wrap=True, highlight=False)
    err = Console(stderr=True)
    try:
        tools = load_tools(schema) if schema is not None else None
    except (OSError, ConversionError) as exc:
        _complain(err, f"--schema: {_reason(exc)}")
        raise typer.Exit(2) from None
    path = None if file is None or str(file) == "-" else file  # None: stdin
    try:
        source = typer.get_binary_stream("stdin") if path is None else path.open("rb")
    except OSError as exc:
        _complain(err, f"cannot read {file}: {_reason(exc)}")
        raise typer.Exit(2) from None
    extractor = XmlToolExtractor(tools, ids=call_ids)
    try:
        with nullcontext(source) if path is None else source:
            pieces = read_pieces(source, chunk_size if stream else 0)
            code = run(pieces, extractor, fmt, with_text=with_text, stream=stream, out=out, err=err)
    except UnicodeDecodeError as exc:
        _complain(err, f"input is not UTF-8: {exc}")
        raise typer.Exit(2) from None
    except OSError as exc:
        _complain(err, f"cannot read {file or 'stdin'}: {_reason(exc)}")
        raise typer.Exit(2) from None
    raise typer.Exit(code)


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
