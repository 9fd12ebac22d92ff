"""`DIALECTS`: every dialect's `Dialect` record (`convert/record.py`) by name.

The proxy, the mock, the probes and the CLI look a dialect up here and call the same
functions whatever it is (dict dispatch, no provider ladders); every other per-dialect
table is derived from `DIALECTS`. A new dialect is a package under `convert/` whose
`__init__` builds its `DIALECT`, and one entry below.
"""

from __future__ import annotations

from collections.abc import Mapping

from louter.convert import anthropic, completions, gemini, openai, responses
from louter.convert.record import Dialect, StreamEmitter, StreamParser

__all__ = [
    "ANTHROPIC",
    "COMPLETIONS",
    "DIALECTS",
    "GEMINI",
    "OPENAI",
    "RESPONSES",
    "Dialect",
    "StreamEmitter",
    "StreamParser",
]

OPENAI, GEMINI = openai.DIALECT, gemini.DIALECT
ANTHROPIC, RESPONSES = anthropic.DIALECT, responses.DIALECT
COMPLETIONS = completions.DIALECT
DIALECTS: Mapping[str, Dialect] = {
    d.name: d for d in (OPENAI, GEMINI, ANTHROPIC, RESPONSES, COMPLETIONS)
}
