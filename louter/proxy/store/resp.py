"""A small Redis client: RESP2 over louter's own socket layer, parsed by `hiredis`.

Why not a library: `coredis` on trio measured 265-640 µs per EVALSHA here, this client
40-120 µs (the numbers in README "Shared state"); the socket layer tries the kernel first
and waits only when it would block, and hiredis parses in C (as httptools does for HTTP).

A `Connection` runs one command or one pipeline at a time; the `Pool` hands connections
out and takes them back only after a complete answer. A connection whose exchange was
interrupted (timeout, cancel, error) is closed, never reused: its next reply would be
the wrong one. Imported only when `[store]` is configured (it imports hiredis).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import hiredis
import trio

from louter.http.sockets import Socket, connect
from louter.proxy.store.types import StoreError

Arg = bytes | str | int | float
ReplyError = hiredis.ReplyError


def encode(args: Sequence[Arg]) -> bytes:
    """One command in RESP: an array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, float):
            data = repr(arg).encode()
        else:
            data = b"%d" % arg
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class Connection:
    __slots__ = ("sock", "reader")

    def __init__(self, sock: Socket) -> None:
        self.sock = sock
        self.reader = hiredis.Reader()

    @classmethod
    async def open(
        cls, host: str, port: int, *, username: str | None, password: str | None, db: int
    ) -> Connection:
        try:
            sock = await connect(host, port)
        except OSError as exc:
            raise StoreError(
                f"cannot connect to redis at {host}:{port}: {exc.strerror or exc}"
            ) from exc
        conn = cls(sock)
        try:
            if password is not None:
                auth = ("AUTH", username, password) if username else ("AUTH", password)
                conn.check(await conn.call(*auth), "AUTH")
            if db:
                conn.check(await conn.call("SELECT", db), "SELECT")
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def check(reply: Any, what: str) -> Any:
        if isinstance(reply, ReplyError):
            raise StoreError(f"redis refused {what}: {reply}")
        return reply

    async def call(self, *args: Arg) -> Any:
        """One command's reply (an error reply is returned as a `ReplyError`)."""
        await self.send(encode(args))
        return await self.reply(self.sock.receive_reply)

    async def pipeline(self, commands: Sequence[Sequence[Arg]]) -> list[Any]:
        """Several commands in one write; their replies in order."""
        await self.send(b"".join(encode(args) for args in commands))
        first = await self.reply(self.sock.receive_reply)
        return [first, *[await self.reply() for _ in commands[1:]]]

    async def send(self, data: bytes) -> None:
        try:
            await self.sock.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise StoreError(f"redis connection lost: {exc}") from exc

    async def reply(self, receive: Callable[[], Awaitable[bytes]] | None = None) -> Any:
        """The next reply; `receive` reads first (`receive_reply` right after a send:
        the reply is not there yet, so the other tasks run before the read)."""
        reader = self.reader
        receive = receive or self.sock.receive
        while True:
            found = reader.gets()
            if found is not False:
                return found
            try:
                data = await receive()
                receive = self.sock.receive
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise StoreError(f"redis connection lost: {exc}") from exc
            if not data:
                raise StoreError("redis closed the connection")
            reader.feed(data)

    def close(self) -> None:
        self.sock.close()


class Pool:
    """At most `size` connections, opened on demand; an idle one is reused first."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        db: int = 0,
        size: int = 8,
    ) -> None:
        self.host, self.port, self.db = host, port, db
        self._username, self._password = username, password
        self._slots = trio.Semaphore(size)
        self._idle: list[Connection] = []
        self._open: set[Connection] = set()

    async def run(self, commands: Sequence[Sequence[Arg]]) -> list[Any]:
        """The replies to `commands`, sent as one pipeline on one connection."""
        async with self._slots:
            conn = self._idle.pop() if self._idle else await self._connect()
            try:
                replies = await conn.pipeline(commands)
            except BaseException:  # interrupted mid-exchange: its replies are unknown
                self._drop(conn)
                raise
            self._idle.append(conn)
            return replies

    async def _connect(self) -> Connection:
        conn = await Connection.open(
            self.host, self.port, username=self._username, password=self._password, db=self.db
        )
        self._open.add(conn)
        return conn

    def _drop(self, conn: Connection) -> None:
        conn.close()
        self._open.discard(conn)
        if conn in self._idle:
            self._idle.remove(conn)

    def reset(self) -> None:
        """Close every connection (after a failure: the idle ones may be dead too)."""
        for conn in list(self._open):
            self._drop(conn)
