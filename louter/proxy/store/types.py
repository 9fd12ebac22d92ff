"""The store's small value types (shared by every implementation)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


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


class Decision(NamedTuple):
    """A reserve's answer. `remaining[i]` (whole tokens left) and `reset[i]` (seconds until
    bucket i is full again) are per key, in the order asked, after the charge when allowed;
    `retry_after` is 0 when allowed, else the seconds until every bucket could pay.

    From `admit` (buckets and concurrency caps at once): `lease` is the slot taken when
    admitted with caps; `full` says a cap had no free slot (then nothing was charged and
    the buckets were not read: `remaining` and `reset` are empty). A named tuple: made
    on every limited request, it must be cheap to build."""

    allowed: bool
    retry_after: float
    remaining: tuple[int, ...]
    reset: tuple[float, ...]
    lease: str | None = None
    full: bool = False


FULL = Decision(False, 0.0, (), (), None, True)
