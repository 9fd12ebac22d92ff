"""What a serving louter is started with (`Start`), and a worker's part of it
(`WorkerSpec`, `--workers`): read by every serving process, so kept apart from the
worker group (louter/cli/workers.py, loaded only with `--workers` or `--worker`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from louter.config import Config, load_config
from louter.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Start:
    """The options that shape a context: what a worker is started with."""

    config: Path | None
    backend: str | None
    disable_auth: bool
    log_file: Path | None
    log_max_bytes: int
    log_backups: int
    drain_seconds: float | None
    log_level: str | None
    verbose: int

    def load(self) -> Config:
        cfg = load_config(self.config, os.environ)
        if self.disable_auth:
            cfg = replace(cfg, auth=replace(cfg.auth, enabled=False))
        return cfg

    def args(self) -> list[str]:
        """These options as a worker's arguments (its log goes to the supervisor)."""
        args = ["--config", str(self.config)] if self.config else []
        args += ["--backend", self.backend] if self.backend else []
        args += ["--disable-auth"] if self.disable_auth else []
        args += ["--drain-seconds", repr(self.drain_seconds)] if self.drain_seconds else []
        args += ["--log-level", self.log_level] if self.log_level else []
        return args + ["-v"] * self.verbose


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    slot: int
    generation: int
    listen: tuple[int, ...]
    control: int
    log: int  # -1: no log file

    @classmethod
    def parse(cls, text: str) -> WorkerSpec:
        fields = dict(item.split("=", 1) for item in text.split(","))
        return cls(
            int(fields["slot"]),
            int(fields["generation"]),
            tuple(int(fd) for fd in fields["listen"].split(":")),
            int(fields["control"]),
            int(fields["log"]),
        )

    def text(self) -> str:
        listen = ":".join(map(str, self.listen))
        return (
            f"slot={self.slot},generation={self.generation},listen={listen},"
            f"control={self.control},log={self.log}"
        )


def worker_count(text: str) -> int:
    """`--workers`: a positive number, or `auto` (the cores this process may run on)."""
    if text == "auto":
        return len(os.sched_getaffinity(0))
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"--workers takes a number of at least 1 or auto, not {text!r}")
    return int(text)
