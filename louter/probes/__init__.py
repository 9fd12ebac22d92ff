"""Feature probes: what a backend (or louter's front doors) must get right, as data.

`PROBES` is the table (`catalog`): text, streaming, function calling (plain and
streamed), multimedia, a tool round trip, token counting and error handling. Each probe
writes its request in the target's dialect (`wire.WIRES`: the pure
`louter/convert/<dialect>/probe.py`), reads the answer (`wire.read`: envelopes, stream
grammar, louter's own stream assembly as a cross-check) and judges its content
(`checks`). `run_probes` is the I/O shell behind `test-runner` and `diagnostic`.
"""

from __future__ import annotations

from louter.probes.catalog import ALIASES, BY_NAME, PROBES, Probe, canonical, select
from louter.probes.run import ProbeResult, Target, run_probes

__all__ = [
    "ALIASES",
    "BY_NAME",
    "PROBES",
    "Probe",
    "ProbeResult",
    "Target",
    "canonical",
    "run_probes",
    "select",
]
