"""The process-wide budget on request bodies being handled at once.

A body costs a few times its size while it is parsed, converted and sent on (the raw
bytes, the parsed JSON, the upstream's copy). Bounding the sum of the bodies in flight
bounds that memory: a request whose body would take the sum past the budget is refused
with a 503 at once instead of exhausting RAM. A body alone is always admitted (the
server's `max_body` bounds it), so a budget below `max_body` cannot lock a request out.
"""

from __future__ import annotations


class BodyBudget:
    """Bytes of request bodies in flight; one per server (built by `make_handler`)."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def claim(self, size: int) -> bool:
        """Count `size` in; False (nothing counted) when it does not fit."""
        if self.used and self.used + size > self.limit:
            return False
        self.used += size
        return True

    def release(self, size: int) -> None:
        self.used -= size

    def refusal(self, size: int) -> str:
        return (
            f"server busy: this request's {size}-byte body would take the request bodies"
            f" in flight past max_inflight_body_bytes = {self.limit}; retry shortly"
        )
