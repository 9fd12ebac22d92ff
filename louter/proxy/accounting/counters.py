"""Usage counters in the state store: one hash per UTC day whose fields are
`key<TAB>model<TAB>backend<TAB>count` (`COUNTS` of louter/logs/usage.py), and one spend
counter per budgeted key and period. With `[store] url = "redis://..."` both live in
Redis, so every louter sharing it answers `/v2/usage/stats` with the same totals and
checks budgets against the same spend; in-process they are rebuilt from the usage file
when louter starts (`Accounting.load`).

Model names come from clients: at most `MAX_MODELS` distinct ones are counted under
their own name per process, later ones as "(other)" (the hash stays bounded)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from louter.logs.usage import COUNTS, Group
from louter.proxy.accounting.periods import DAY, day_of, day_start
from louter.proxy.store import Store

MAX_MODELS = 1000
OTHER = "(other)"
SEP = "\t"


def day_key(day: str) -> str:
    return f"usage:day:{day}"


def spend_key(key: str, period: str, period_id: str) -> str:
    return f"usage:budget:{key}:{period}:{period_id}"


def fields(group: Group, counts: Sequence[int]) -> dict[str, int]:
    """A group's non-zero counts as hash fields."""
    _, key, model, backend = (part.replace(SEP, " ") for part in group)
    stem = f"{key}{SEP}{model}{SEP}{backend}{SEP}"
    return {stem + name: value for name, value in zip(COUNTS, counts, strict=True) if value}


def parse_fields(day: str, found: dict[str, int]) -> list[tuple[Group, list[int]]]:
    """A day hash back into (group, counts)."""
    index = {name: i for i, name in enumerate(COUNTS)}
    out: dict[Group, list[int]] = {}
    for name, value in found.items():
        parts = name.split(SEP)
        if len(parts) != 4 or parts[3] not in index:
            continue
        group = (day, parts[0], parts[1], parts[2])
        out.setdefault(group, [0] * len(COUNTS))[index[parts[3]]] += value
    return list(out.items())


def days_between(since: str, until: str, limit: int) -> list[str]:
    """The days from `since` to `until` inclusive (at most `limit`, the newest)."""
    start, end = day_start(since), day_start(until)
    count = max(0, min(limit, int((end - start) // DAY) + 1))
    return [day_of(end - i * DAY) for i in reversed(range(count))]


class UsageCounters:
    def __init__(self, store: Store, retention_days: int) -> None:
        self._store = store
        self._ttl = retention_days * DAY + DAY if retention_days else None
        self._models: set[str] = set()

    def model_name(self, model: str) -> str:
        """`model`, or "(other)" past `MAX_MODELS` distinct names."""
        if model in self._models:
            return model
        if len(self._models) >= MAX_MODELS:
            return OTHER
        self._models.add(model)
        return model

    async def add(self, group: Group, counts: Sequence[int]) -> None:
        await self._store.hincr(day_key(group[0]), fields(group, counts), self._ttl)

    async def add_all(self, groups: Iterable[tuple[Group, Sequence[int]]]) -> None:
        for group, counts in groups:
            await self.add(group, counts)

    async def read(self, days: Sequence[str]) -> list[tuple[Group, list[int]]]:
        out: list[tuple[Group, list[int]]] = []
        for day in days:
            out += parse_fields(day, await self._store.hgetall(day_key(day)))
        return out
