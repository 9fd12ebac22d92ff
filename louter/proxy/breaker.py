"""A consecutive-failure circuit breaker, one per backend (issue 8, "routing and resilience").

    CLOSED ──failure_threshold failures in a row──▶ OPEN (skipped until `until`)
    OPEN ──cool-down over──▶ one request, the probe, is let through
    probe succeeds ──▶ CLOSED          probe fails ──▶ OPEN again, for a new cool-down

A success is any answer that is not retryable (2xx, and 4xx other than 429: the backend
works, the request was bad). The clock is injected (monotonic seconds) so tests drive
cool-downs without sleeping. A threshold of 0 turns the breaker off. With a `[store]`,
louter/proxy/shared_breakers.py shares openings between louters (`on_open`, `merge`).
"""

from __future__ import annotations

from collections.abc import Callable

HEALTHY = "healthy"
COOLING_DOWN = "cooling_down"
PROBING = "probing"  # the cool-down is over: the next request (the probe) decides


class Breaker:
    __slots__ = (
        "threshold", "cooldown", "failures", "until", "probing", "last_error", "last_error_at",
        "_clock", "on_open",
    )  # fmt: skip

    def __init__(self, threshold: int, cooldown: float, clock: Callable[[], float]) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self.failures = 0  # consecutive
        self.until = 0.0  # end of the current cool-down (clock seconds), when open
        self.probing = False  # the probe request is in flight
        self.last_error: str | None = None
        self.last_error_at: float | None = None  # clock seconds
        self.on_open: Callable[[], None] | None = None  # told when a failure opens it

    def clock(self) -> float:
        return self._clock()

    @property
    def open(self) -> bool:
        return self.threshold > 0 and self.failures >= self.threshold

    @property
    def state(self) -> str:
        if not self.open:
            return HEALTHY
        return COOLING_DOWN if self._clock() < self.until else PROBING

    def usable(self) -> bool:
        """Whether a request could be sent now (without claiming the probe)."""
        return not self.open or (not self.probing and self._clock() >= self.until)

    def remaining(self) -> float:
        """Seconds left of the cool-down (0 when not cooling down)."""
        return max(0.0, self.until - self._clock()) if self.open else 0.0

    def allow(self) -> bool:
        """Claim the right to send one request; after the cool-down only one (the probe)
        is let through until its outcome is recorded (`succeed`, `fail` or `release`)."""
        if not self.open:
            return True
        if self.probing or self._clock() < self.until:
            return False
        self.probing = True
        return True

    def succeed(self) -> None:
        self.failures = 0
        self.probing = False

    def fail(self, error: str) -> None:
        self.failures += 1
        self.probing = False
        self.last_error = error
        self.last_error_at = now = self._clock()
        if self.open:
            self.until = now + self.cooldown
            if self.on_open is not None:
                self.on_open()

    def merge(self, until: float, error: str | None) -> None:
        """Another louter opened this backend until `until` (this breaker's clock): open
        here too. A merge only ever extends a cool-down, never shortens one."""
        if self.threshold <= 0 or until <= self._clock() or (self.open and until <= self.until):
            return
        self.failures = max(self.failures, self.threshold)
        self.until = until
        if error is not None:
            self.last_error = error

    def release(self) -> None:
        """The request ended without an outcome (cancelled): free the probe slot."""
        self.probing = False
