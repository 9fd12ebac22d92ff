"""Non-blocking stdlib sockets driven by trio's I/O waits: the cheap socket layer.

trio's own socket wrappers yield to the scheduler twice on every call, even when the
kernel could answer at once (design §11: ~7 µs per call; a checkpoint alone costs several
µs here). A proxy makes four to six socket calls per request, so these wrappers try the
call first and only wait (`wait_readable`/`wait_writable`, which are checkpoints) when
the kernel says it would block. `receive_reply`, for the reads that follow a send the
peer has to answer, first lets the other tasks run (one checkpoint) and then tries: under
load the answer is there by then, and the read costs no wait on the I/O manager at all.
Every request still yields at least once, so no task can hog the loop.

Errors are trio's: a reset or broken connection raises `trio.BrokenResourceError`, a
socket closed by another task while this one waits raises `trio.ClosedResourceError`.
"""

from __future__ import annotations

import errno
import socket

import trio


class Socket:
    """A connected, non-blocking TCP socket."""

    __slots__ = ("sock", "closed", "kept")

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # not TCP (a socketpair in tests)
            pass
        self.sock = sock
        self.closed = False
        self.kept: object = None  # what a protocol keeps between uses (a response parser)

    def fileno(self) -> int:
        return self.sock.fileno()

    async def receive(self, size: int = 65536) -> bytes:
        """The next bytes; b"" when the peer closed its side."""
        sock = self.sock
        while True:
            try:
                return sock.recv(size)
            except BlockingIOError:
                pass
            except OSError as exc:
                raise _error(self, exc) from exc
            await _wait(trio.lowlevel.wait_readable, self)

    def send_now(self, data: bytes | bytearray | memoryview) -> int:
        """Send what the kernel takes at once (no wait, no checkpoint): the bytes sent."""
        try:
            return self.sock.send(data)
        except BlockingIOError:
            return 0
        except OSError as exc:
            raise _error(self, exc) from exc

    async def receive_reply(self, size: int = 65536) -> bytes:
        """`receive` after one checkpoint: for the read right after a send the peer has to
        answer (a request upstream, an answer to a keep-alive client that then sends its
        next request). Tried at once, that read fails with EAGAIN nearly always (98 % of
        S2's); waiting for readability first costs two system calls (`epoll_ctl`, then
        `epoll_wait`) and the I/O manager's bookkeeping per read. After the other tasks'
        turn, under load, the bytes are there (S2 at 64 connections, strace: 99 % of such
        reads, `epoll_ctl` calls 2 → 0.02 a request); when they are not, `receive` waits
        as usual."""
        await trio.lowlevel.checkpoint()
        return await self.receive(size)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        sock = self.sock
        try:  # `send_now`, inline
            sent = sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            raise _error(self, exc) from exc
        if sent == len(data):
            return
        await self.send_rest(data, sent)

    async def send_rest(self, data: bytes | bytearray | memoryview, sent: int) -> None:
        """Send `data` from byte `sent` on, waiting while the kernel's buffer is full."""
        sock = self.sock
        view = memoryview(data)[sent:]
        while view:
            await _wait(trio.lowlevel.wait_writable, self)
            try:
                view = view[sock.send(view) :]
            except BlockingIOError:
                pass
            except OSError as exc:
                raise _error(self, exc) from exc

    def close(self) -> None:
        """Close now; a task waiting on this socket gets `trio.ClosedResourceError`."""
        if self.closed:
            return
        self.closed = True
        trio.lowlevel.notify_closing(self.sock)
        self.sock.close()


async def _wait(waiter, sock: Socket) -> None:  # type: ignore[no-untyped-def]
    if sock.closed:
        raise trio.ClosedResourceError("socket was closed")
    try:
        await waiter(sock.sock)
    except OSError as exc:  # the fd was closed underneath
        raise trio.ClosedResourceError("socket was closed") from exc


def _error(sock: Socket, exc: OSError) -> Exception:
    if sock.closed or exc.errno == errno.EBADF:
        return trio.ClosedResourceError("socket was closed")
    return trio.BrokenResourceError(f"connection lost: {exc.strerror or exc}")


async def connect(host: str, port: int) -> Socket:
    """A new TCP connection (trio resolves and connects; happy eyeballs included)."""
    stream = await trio.open_tcp_stream(host, port)
    return Socket(socket.socket(fileno=stream.socket.detach()))


async def open_listeners(host: str, port: int) -> list[socket.socket]:
    """Listening sockets for host:port (every address family it resolves to)."""
    listeners = await trio.open_tcp_listeners(port, host=host, backlog=4096)
    raw = []
    for listener in listeners:
        sock = socket.socket(fileno=listener.socket.detach())
        sock.setblocking(False)
        raw.append(sock)
    return raw


# accept() errors that mean "try again later" rather than "the listener is broken"
_ACCEPT_RETRY = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
_ACCEPT_IGNORE = {errno.ECONNABORTED, errno.EPERM, errno.EPROTO, errno.EINTR}


async def accept(listener: socket.socket) -> Socket:
    """The next incoming connection."""
    while True:
        try:
            sock, _ = listener.accept()
        except BlockingIOError:
            await trio.lowlevel.wait_readable(listener)
            continue
        except OSError as exc:
            if exc.errno in _ACCEPT_IGNORE:
                continue
            if exc.errno in _ACCEPT_RETRY:
                await trio.sleep(0.1)  # out of descriptors: let connections finish
                continue
            raise
        return Socket(sock)
