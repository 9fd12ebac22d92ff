"""What the serving commands write for their operator, on stderr: the start-up summary,
signals, errors and `--log-level` lines.

On a terminal they are drawn by rich (a table, colours); otherwise (a service manager,
a log file, a pipe) they are plain lines, one fact per line, never wrapped, and rich is
not imported at all: a serving process does not carry 3.3 MiB for a table nobody sees
(after start on the bench's lean config: 42.5 MiB with rich, 39.2 without).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

Part = tuple[str, str]  # (text, rich style: "" for none)
Row = tuple[str, str, str, str, str]  # a backend's cells, in `COLUMNS` order


@dataclass(slots=True)
class Summary:
    """The start-up summary: a title, one row per backend (`COLUMNS`), closing notes."""

    title: str
    rows: list[Row]
    notes: list[str] = field(default_factory=list)


COLUMNS = ("backend", "protocol", "url", "key", "models")


class Screen:
    """stderr (or `stream`) for the operator: rich when it is a terminal (or
    `terminal=True`), plain lines otherwise."""

    def __init__(self, stream: TextIO | None = None, *, terminal: bool | None = None) -> None:
        self._stream = sys.stderr if stream is None else stream
        self.terminal = self._stream.isatty() if terminal is None else terminal
        self._console: Console | None = None

    def line(self, parts: Sequence[Part]) -> None:
        """One line of (text, style) parts; the styles only colour a terminal's line."""
        if not self.terminal:
            self._write("".join(text for text, _ in parts) + "\n")
            return
        from rich.text import Text  # noqa: PLC0415 - on a terminal only

        self.console().print(Text.assemble(*parts), highlight=False, soft_wrap=True)

    def say(self, message: str, style: str = "") -> None:
        """`louter: message` (styled on a terminal)."""
        self.line([(f"louter: {message}", style)])

    def summary(self, summary: Summary) -> None:
        if not self.terminal:
            self._write(plain_summary(summary))
            return
        self.console().print(summary_table(summary))

    def console(self) -> Console:
        """The rich console (a terminal's), made when first needed."""
        if self._console is None:
            from rich.console import Console  # noqa: PLC0415 - on a terminal only

            self._console = Console(file=self._stream, force_terminal=True)
        return self._console

    def _write(self, text: str) -> None:
        """Write and flush; a stderr that is gone (a closed pipe) is not a reason to stop
        serving: the line is lost, as there is nowhere else to say it."""
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):  # ValueError: the stream was closed
            pass


def plain_summary(summary: Summary) -> str:
    """The summary as lines: the title, `backend NAME: column value, ...` per backend,
    then the notes."""
    lines = [summary.title]
    for name, *cells in summary.rows:
        pairs = zip(COLUMNS[1:], cells, strict=True)
        lines.append(f"backend {name}: " + ", ".join(f"{col} {cell}" for col, cell in pairs))
    lines += summary.notes
    return "\n".join(lines) + "\n"


def summary_table(summary: Summary) -> Table:
    """The summary as a rich table (a terminal's)."""
    from rich.table import Table  # noqa: PLC0415 - on a terminal only
    from rich.text import Text  # noqa: PLC0415

    table = Table(title=summary.title, title_justify="left", caption_justify="left")
    for column in COLUMNS:
        table.add_column(column, overflow="fold")  # a narrow terminal: wrap, never cut
    for row in summary.rows:
        table.add_row(*(Text(cell) for cell in row))
    table.caption = Text("\n".join(summary.notes))
    return table
