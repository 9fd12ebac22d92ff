"""Redis Cluster: each command goes to the master that owns its key's slot, and the
cluster's redirections are followed.

No switch to set: `[store] url` names one node, of a Cluster or a plain Redis. A plain
Redis never redirects, so until a reply says `MOVED` or `ASK` every pipeline goes to
that node as it is (nothing computed per command: a plain Redis pays one scan of the
replies). The first redirection turns cluster routing on for good: the slot map is
loaded with `CLUSTER SLOTS`, and from then on each command goes to its slot's master,
over one bounded connection pool per master.

    MOVED slot host:port   the slot lives there now: remember it, send the command there
    ASK slot host:port     the slot is migrating and this key has left: `ASKING` and the
                           command on that node, once; the map is not changed
    TRYAGAIN               a multi-key command while its slot migrates: again after a pause

A command is sent at most MAX_REDIRECTIONS times more; the caller's deadline
(`op_timeout_ms`, in GuardedStore) covers the whole exchange, redirections and map loads
included. After a failure (`reset`) the map is loaded again before the next command: a
failover moves masters. Multi-key commands and scripts must keep all their keys in one
slot (hash tags: RedisStore's keys do), or the cluster refuses them (CROSSSLOT).
"""

from __future__ import annotations

from binascii import crc_hqx
from collections.abc import Callable, Sequence
from typing import Any

import trio

from louter.proxy.store.resp import Arg, Pool, ReplyError
from louter.proxy.store.types import StoreError

SLOTS = 16384
MAX_REDIRECTIONS = 5
MAX_NODES = 1024  # pools kept for masters; a map with more is refused
TRYAGAIN_PAUSE = 0.005  # seconds
SLOTS_KEPT = 4096  # keys whose slot is remembered
_REDIRECTS = ("MOVED ", "ASK ", "TRYAGAIN")
_NO_KEY = frozenset({"ASKING", "CLUSTER", "PING", "SCRIPT", "INFO", "TIME", "KEYS"})


def slot_of(key: Arg) -> int:
    """The hash slot of `key`: CRC16 (XMODEM, as `binascii.crc_hqx`) of its `{tag}` when
    the key has a non-empty one, else of the whole key, modulo 16384."""
    data = key if isinstance(key, bytes) else str(key).encode()
    start = data.find(b"{")
    if start != -1:
        end = data.find(b"}", start + 1)
        if end > start + 1:
            data = data[start + 1 : end]
    return crc_hqx(data, 0) & (SLOTS - 1)


def key_of(command: Sequence[Arg]) -> Arg | None:
    """The key that decides where `command` goes: a script's first key, else the
    argument after the command's name; None for a command without keys."""
    name = command[0]
    if name in ("EVALSHA", "EVAL"):
        return command[3] if int(command[2]) else None
    if name in _NO_KEY or len(command) < 2:
        return None
    return command[1]


def is_redirect(reply: Any) -> bool:
    return isinstance(reply, ReplyError) and str(reply).startswith(_REDIRECTS)


def any_redirect(replies: list[Any]) -> bool:
    """Whether a reply redirects (a loop, not any() over a generator: 0.25 µs, not 0.8,
    on every call to a plain Redis)."""
    for reply in replies:
        if isinstance(reply, ReplyError) and str(reply).startswith(_REDIRECTS):
            return True
    return False


class Router:
    """The `Pool` interface (`run`, `reset`) over a plain Redis or a Cluster."""

    def __init__(self, seed: Pool, new_pool: Callable[[str, int], Pool]) -> None:
        self.seed = seed
        self._new_pool = new_pool
        self.cluster = False  # True once a node has redirected a command
        self.redirections = 0  # MOVED and ASK replies followed (tests read it)
        self._nodes: dict[tuple[str, int], Pool] = {(seed.host, seed.port): seed}
        self._slots: list[Pool | None] = []
        self._slot_cache: dict[Arg, int] = {}  # key -> its slot, at most SLOTS_KEPT
        self._stale = True  # the map must be (re)loaded before routing by it
        self._loading = trio.Lock()

    async def run(self, commands: Sequence[Sequence[Arg]]) -> list[Any]:
        """The replies to `commands`, each from the node that owns its key."""
        if not self.cluster:
            replies = await self.seed.run(commands)
            if not any_redirect(replies):
                return replies
            self.cluster = True  # a cluster after all: from now on route by slot
        else:
            if self._stale:
                await self._fresh_map()
            replies = await self._send_all(commands)
            if not any_redirect(replies):
                return replies
        return await self._follow(commands, replies)

    async def _send_all(self, commands: Sequence[Sequence[Arg]]) -> list[Any]:
        """Every command to its slot's master: one pipeline when they share one (louter's
        pipelines do: a script's keys, a batch of settles), else one per master."""
        pools = [self._route(command) for command in commands]
        first = pools[0]
        if all(pool is first for pool in pools):
            return await first.run(commands)
        replies: list[Any] = [None] * len(commands)
        await self._send(commands, range(len(commands)), replies)
        return replies

    async def _follow(self, commands: Sequence[Sequence[Arg]], replies: list[Any]) -> list[Any]:
        """Send the redirected commands where their replies say, up to MAX_REDIRECTIONS."""
        for _ in range(MAX_REDIRECTIONS):
            redirected = [i for i, reply in enumerate(replies) if is_redirect(reply)]
            if not redirected:
                return replies
            await self._fresh_map()
            again: list[int] = []
            asked: dict[Pool, list[int]] = {}
            pause = False
            for i in redirected:
                kind, *where = str(replies[i]).split()
                if kind == "TRYAGAIN":
                    again.append(i)
                    pause = True
                    continue
                self.redirections += 1
                node = self._node(where[1], commands[i])
                if kind == "MOVED":
                    self._slots[int(where[0])] = node
                    again.append(i)
                else:
                    asked.setdefault(node, []).append(i)
            if pause:
                await trio.sleep(TRYAGAIN_PAUSE)
            await self._send(commands, again, replies)
            for node, indices in asked.items():
                pipeline = [part for i in indices for part in (("ASKING",), commands[i])]
                for i, reply in zip(indices, (await node.run(pipeline))[1::2], strict=True):
                    replies[i] = reply
        if any_redirect(replies):
            raise StoreError(f"redis cluster: more than {MAX_REDIRECTIONS} redirections")
        return replies

    async def _send(
        self, commands: Sequence[Sequence[Arg]], indices: Sequence[int], replies: list[Any]
    ) -> None:
        """Each command at `indices` to its slot's master, one pipeline per master."""
        groups: dict[Pool, list[int]] = {}
        for i in indices:
            groups.setdefault(self._route(commands[i]), []).append(i)
        for pool, chosen in groups.items():
            out = await pool.run([commands[i] for i in chosen])
            for i, reply in zip(chosen, out, strict=True):
                replies[i] = reply

    def _route(self, command: Sequence[Arg]) -> Pool:
        key = key_of(command)
        if key is None:
            return self.seed
        slot = self._slot_cache.get(key)
        if slot is None:  # louter's keys repeat (buckets, lease sets): remember a few
            if len(self._slot_cache) >= SLOTS_KEPT:
                self._slot_cache.clear()
            slot = self._slot_cache[key] = slot_of(key)
        return self._slots[slot] or self.seed  # a slot no one serves: let it say

    def _node(self, address: str, command: Sequence[Arg]) -> Pool:
        """The pool for `host:port` (an empty host: the one the command went to)."""
        host, _, port = address.rpartition(":")
        if not host:
            host = self._route(command).host
        found = self._nodes.get((host, int(port)))
        if found is None:
            if len(self._nodes) >= MAX_NODES:
                raise StoreError(f"redis cluster: more than {MAX_NODES} nodes")
            found = self._nodes[host, int(port)] = self._new_pool(host, int(port))
        return found

    # ------------------------------------------------------------------ the slot map

    async def _fresh_map(self) -> None:
        if self._stale:
            async with self._loading:
                if self._stale:  # no one loaded it while this task waited
                    await self._load()

    async def _load(self) -> None:
        """The slot map from the first node that answers `CLUSTER SLOTS`; pools of nodes
        no longer in it are closed."""
        problems = []
        for pool in list(self._nodes.values()):
            try:
                reply = (await pool.run([("CLUSTER", "SLOTS")]))[0]
            except StoreError as exc:
                problems.append(str(exc))
                continue
            if isinstance(reply, ReplyError):
                problems.append(f"{pool.host}:{pool.port} refused CLUSTER SLOTS: {reply}")
                continue
            self._apply(reply, pool.host)
            self._stale = False
            return
        raise StoreError("redis cluster: no node gave the slot map: " + "; ".join(problems))

    def _apply(self, ranges: list[Any], asked: str) -> None:
        slots: list[Pool | None] = [None] * SLOTS
        masters: set[Pool] = {self.seed}
        for start, end, master, *_replicas in ranges:
            host = master[0].decode() if master[0] and master[0] != b"?" else asked
            pool = self._node(f"{host}:{int(master[1])}", ())
            masters.add(pool)
            slots[start : end + 1] = [pool] * (end + 1 - start)
        for address, pool in list(self._nodes.items()):
            if pool not in masters:
                pool.reset()
                del self._nodes[address]
        self._slots = slots

    def reset(self) -> None:
        """Close every connection; in a cluster, load the map again before the next command."""
        for pool in self._nodes.values():
            pool.reset()
        if self.cluster:
            self._stale = True

    async def aclose(self) -> None:
        self.reset()
