"""Sessions in the store: one value per session that has something set, with the idle
expiry (`[session] expiry_seconds`) as its time to live, renewed as the session is used.

`max_sessions` bounds the sessions this process keeps: the book remembers the keys it
wrote (with the time each expires), least recently used first, and drops the oldest
session from the store when a new one would pass the bound (`evicted` counts those; one
that had expired by then is not counted, nor deleted). With a shared store other
instances' sessions are bounded by their own books and by the expiry.

`live()` is the number of sessions this process holds that have not expired: exact with
the in-process store (only the book writes session keys); with a shared store it is this
process's view only (other instances hold and renew sessions too).

With `[session] file_path` (in-process store only) every change is also written to that
file (`SessionFile`), and the sessions and runtime routes found in it at start-up are
put back (`restore`).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

import orjson

from louter.proxy.sessions.state import Session, decode

if TYPE_CHECKING:
    from louter.config import SessionConfig
    from louter.proxy.sessions.persist import SessionFile
    from louter.proxy.store import Store

RENEW_FRACTION = 0.125  # a session used after this share of its expiry is written again


class SessionBook:
    def __init__(
        self,
        store: Store,
        config: SessionConfig,
        *,
        clock: Callable[[], float] = time.time,
        file: SessionFile | None = None,
        shared: bool = True,
    ) -> None:
        self._store = store
        self._shared = shared  # other processes write sessions too (else only this book)
        self.expiry = config.expiry_seconds
        self.limit = config.max_sessions
        self._clock = clock
        self._file = file
        # store key -> (session id, wall time it expires), least recently used first
        self._recent: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self.evicted = 0  # live sessions dropped to stay within max_sessions

    def absent(self, key: str) -> bool:
        """Whether the session at `key` is known not to be stored, without asking the
        store: with the in-process store only this book writes sessions, and it
        remembers every key it wrote (a session with nothing set is never stored)."""
        return not self._shared and key not in self._recent

    async def load(self, session_id: str, key: str) -> Session:
        """The session (a fresh, empty one when none is stored)."""
        raw = await self._store.get(key)
        if raw is None:
            self._recent.pop(key, None)
            return Session(session_id, key)
        session = decode(session_id, key, raw)
        if key in self._recent:
            self._recent.move_to_end(key)
        if self._clock() - session.touched > self.expiry * RENEW_FRACTION:
            session.changed = True  # written again at the end of the request: TTL renewed
        return session

    async def save(self, session: Session) -> None:
        """Write a changed session (or forget it when nothing is set any more)."""
        if not session.changed:
            return
        session.changed = False
        if session.empty:
            await self._store.delete(session.key)
            self._recent.pop(session.key, None)
            session.stored = False
        else:
            session.touched = now = self._clock()
            await self._store.set(session.key, session.encode(), self.expiry)
            session.stored = True
            await self._remember(session, now + self.expiry)
        if self._file is not None:
            await self._file.write(sessions=await self.snapshot())

    async def _remember(self, session: Session, until: float) -> None:
        recent = self._recent
        recent[session.key] = (session.id, until)
        recent.move_to_end(session.key)
        while len(recent) > self.limit:
            oldest, (_, expires) = recent.popitem(last=False)
            if expires > self._clock():  # still live: evicted (else it expired on its own)
                await self._store.delete(oldest)
                self.evicted += 1

    def count(self) -> int:
        """Sessions this process remembers (an upper bound: some may have expired)."""
        return len(self._recent)

    def live(self) -> int:
        """Sessions this process holds that have not expired (see the module docstring)."""
        now = self._clock()
        return sum(1 for _, expires in self._recent.values() if expires > now)

    async def snapshot(self) -> dict[str, dict[str, object]]:
        """Every live session this process holds, for the session file."""
        out: dict[str, dict[str, object]] = {}
        for key, (session_id, _) in list(self._recent.items()):
            raw = await self._store.get(key)
            if raw is not None:
                found = decode(session_id, key, raw)
                out[key] = {"id": session_id, "settings": found.settings,
                            "oneoff": found.oneoff, "touched": found.touched}  # fmt: skip
        return out

    async def restore(self, saved: dict[str, dict[str, object]]) -> None:
        """Put back the sessions of the session file that have not expired since."""
        now = self._clock()
        for key, data in saved.items():
            session_id, touched = data.get("id"), data.get("touched")
            if not isinstance(session_id, str) or not isinstance(touched, int | float):
                continue
            left = self.expiry - (now - touched)
            if left <= 0:
                continue
            session = decode(session_id, key, orjson.dumps(data))
            if not session.empty:
                await self._store.set(key, session.encode(), left)
                await self._remember(session, now + left)
