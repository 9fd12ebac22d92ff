"""The Redis store: the `Store` calls as atomic Lua scripts (see scripts.py) over the
small RESP client (resp.py). One round trip per call on the critical path; settles are
batched: while one settle's pipeline is on the wire, later ones queue and go together in
the next write. Keys are hash-tagged: every bucket and lease set of a deployment shares
the tag `{PREFIX}` (one slot, so one script can charge several scopes at once), and each
value or counter gets its own tag `{PREFIX:v:KEY}`, so every script's keys share one
slot and a Redis Cluster can run them (cluster.py routes commands and follows
redirections). The deadline and the failure mode live in `GuardedStore`; errors here are
raised as `StoreError`."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from louter.proxy.store import scripts
from louter.proxy.store.cluster import Router
from louter.proxy.store.resp import Arg, Pool, ReplyError
from louter.proxy.store.types import FULL, Decision, Limit, StoreError

if TYPE_CHECKING:
    from louter.config import StoreConfig

Call = tuple[scripts.Script, Sequence[str], Sequence[Arg]]

RESERVE = scripts.Script(scripts.RESERVE)
ADMIT = scripts.Script(scripts.ADMIT)
SETTLE = scripts.Script(scripts.SETTLE)
ACQUIRE = scripts.Script(scripts.ACQUIRE)
RENEW = scripts.Script(scripts.RENEW)
INCR = scripts.Script(scripts.INCR)
HINCR = scripts.Script(scripts.HINCR)
SPEND = scripts.Script(scripts.SPEND)


class RedisStore:
    def __init__(self, pool: Pool | Router, prefix: str = "louter") -> None:
        self.pool = pool
        self._prefix = prefix
        self._settles: list[Call] = []
        self._flushing = False

    @classmethod
    def from_config(cls, config: StoreConfig) -> RedisStore:
        """A store on `config`'s node: a plain Redis, or any node of a Cluster (found out
        from its first redirection, then one pool per master: cluster.py)."""

        def pool(host: str, port: int) -> Pool:
            return Pool(
                host,
                port,
                username=config.username,
                password=config.password,
                db=config.db,
                size=config.pool_size,
            )

        return cls(Router(pool(config.host, config.port), pool), config.key_prefix)

    # ------------------------------------------------------------------ keys

    def _bucket(self, key: str) -> str:
        return f"{{{self._prefix}}}:b:{key}"

    def _leases(self, key: str) -> str:
        return f"{{{self._prefix}}}:c:{key}"

    def _value(self, key: str) -> str:
        return f"{{{self._prefix}:v:{key}}}"

    # ------------------------------------------------------------------ scripts

    async def _eval(self, calls: Sequence[Call]) -> list[Any]:
        """Run scripts in one pipeline by EVALSHA; the ones Redis does not know yet
        (NOSCRIPT: first use, a restart, SCRIPT FLUSH) again by EVAL, which loads them."""
        commands = [("EVALSHA", s.sha, len(k), *k, *a) for s, k, a in calls]
        replies = await self.pool.run(commands)
        missing = [i for i, r in enumerate(replies) if _noscript(r)]
        if missing:
            again = [("EVAL", calls[i][0].source, *commands[i][2:]) for i in missing]
            for i, reply in zip(missing, await self.pool.run(again), strict=True):
                replies[i] = reply
        for reply in replies:
            if isinstance(reply, ReplyError):
                raise StoreError(f"redis script failed: {reply}")
        return replies

    async def _one(self, script: scripts.Script, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        return (await self._eval([(script, keys, args)]))[0]

    # ------------------------------------------------------------------ the Store calls

    async def reserve(
        self, keys: Sequence[str], costs: Sequence[float], limits: Sequence[Limit]
    ) -> Decision:
        args: list[Arg] = []
        for cost, limit in zip(costs, limits, strict=True):
            args += (float(limit.capacity), float(limit.window_seconds), float(cost))
        out = await self._one(RESERVE, [self._bucket(k) for k in keys], args)
        return Decision(
            bool(out[0]),
            out[1] / 1000,
            tuple(out[2::2]),
            tuple(ms / 1000 for ms in out[3::2]),
        )

    async def admit(
        self,
        keys: Sequence[str],
        costs: Sequence[float],
        limits: Sequence[Limit],
        caps: Sequence[str],
        cap_limits: Sequence[int],
        lease_seconds: float,
    ) -> Decision:
        """Buckets and concurrency slots in one script: one round trip."""
        lease = secrets.token_hex(8)
        args: list[Arg] = [len(keys), _ms(lease_seconds), lease]
        for cost, limit in zip(costs, limits, strict=True):
            args += (float(limit.capacity), float(limit.window_seconds), float(cost))
        args += cap_limits
        names = [*(self._bucket(k) for k in keys), *(self._leases(k) for k in caps)]
        out = await self._one(ADMIT, names, args)
        if out[2]:
            return FULL
        return Decision(
            bool(out[0]),
            out[1] / 1000,
            tuple(out[3::2]),
            tuple(ms / 1000 for ms in out[4::2]),
            lease if out[0] and caps else None,
        )

    async def settle(self, key: str, limit: Limit, delta: float) -> None:
        """Queue the settle; the first caller with none on the wire sends the queue (and
        whatever queues meanwhile) in pipelines. Callers spawn it off the request's path.
        A batch that fails is lost: those reservations stay as estimated."""
        args = (float(limit.capacity), float(limit.window_seconds), float(delta))
        self._settles.append((SETTLE, [self._bucket(key)], args))
        if self._flushing:
            return  # the settle on the wire sends this one in its next write
        self._flushing = True
        try:
            while self._settles:
                batch, self._settles = self._settles, []
                await self._eval(batch)
        finally:
            self._flushing = False

    async def acquire(
        self, keys: Sequence[str], limits: Sequence[int], lease_seconds: float
    ) -> str | None:
        lease = secrets.token_hex(8)
        args: tuple[int | str, ...] = (_ms(lease_seconds), lease, *limits)
        taken = await self._one(ACQUIRE, [self._leases(k) for k in keys], args)
        return lease if taken else None

    async def renew(self, keys: Sequence[str], lease: str, lease_seconds: float) -> None:
        await self._one(RENEW, [self._leases(k) for k in keys], (_ms(lease_seconds), lease))

    async def release(self, keys: Sequence[str], lease: str) -> None:
        _checked(await self.pool.run([("ZREM", self._leases(k), lease) for k in keys]))

    async def get(self, key: str) -> bytes | None:
        return _checked(await self.pool.run([("GET", self._value(key))]))[0]

    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        ttl = () if ttl_seconds is None else ("PX", _ms(ttl_seconds))
        _checked(await self.pool.run([("SET", self._value(key), value, *ttl)]))

    async def delete(self, key: str) -> None:
        _checked(await self.pool.run([("DEL", self._value(key))]))

    async def incr(self, key: str, amount: int = 1, ttl_seconds: float | None = None) -> int:
        ttl = 0 if ttl_seconds is None else _ms(ttl_seconds)
        return int(await self._one(INCR, [self._value(key)], (amount, ttl)))

    async def hincr(
        self, key: str, amounts: Mapping[str, int], ttl_seconds: float | None = None
    ) -> None:
        args: list[Arg] = [0 if ttl_seconds is None else _ms(ttl_seconds)]
        for name, amount in amounts.items():
            args += (name, amount)
        await self._one(HINCR, [self._value(key)], args)

    async def hgetall(self, key: str) -> dict[str, int]:
        flat = _checked(await self.pool.run([("HGETALL", self._value(key))]))[0] or []
        return {_text(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}

    async def spend(
        self, key: str, limit: int, amount: int, ttl_seconds: float | None = None
    ) -> tuple[bool, int]:
        ttl = 0 if ttl_seconds is None else _ms(ttl_seconds)
        out = await self._one(SPEND, [self._value(key)], (limit, amount, ttl))
        return bool(out[0]), int(out[1])

    def reset(self) -> None:
        self.pool.reset()

    async def aclose(self) -> None:
        self.pool.reset()


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _noscript(reply: Any) -> bool:
    return isinstance(reply, ReplyError) and str(reply).startswith("NOSCRIPT")


def _checked(replies: list[Any]) -> list[Any]:
    for reply in replies:
        if isinstance(reply, ReplyError):
            raise StoreError(f"redis refused a command: {reply}")
    return replies
