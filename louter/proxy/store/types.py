"""The store's small value types (shared by every implementation)."""

from __future__ import annotations

from dataclasses import dataclass, field


class StoreError(Exception):
    """The store could not answer (connection lost, error reply, timeout)."""


@dataclass(frozen=True, slots=True)
class Limit:
    """A token bucket: `capacity` tokens, refilled evenly over `window_seconds`."""

    capacity: float
    window_seconds: float = 60.0
    rate: float = field(init=False, repr=False, compare=False)  # tokens per second

    def __post_init__(self) -> None:
        if self.capacity <= 0 or self.window_seconds <= 0:
            raise ValueError(f"a limit needs capacity and window > 0, got {self}")
        object.__setattr__(self, "rate", self.capacity / self.window_seconds)


@dataclass(frozen=True, slots=True)
class Decision:
    """A reserve's answer. `remaining[i]` (whole tokens left) and `reset[i]` (seconds until
    bucket i is full again) are per key, in the order asked, after the charge when allowed;
    `retry_after` is 0 when allowed, else the seconds until every bucket could pay."""

    allowed: bool
    retry_after: float
    remaining: tuple[int, ...]
    reset: tuple[float, ...]
