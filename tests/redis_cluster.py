"""A real Redis Cluster for the store tests: three `redis-server --cluster-enabled yes`
masters on free loopback ports (each also needs its port + 10000 free: the cluster bus),
joined by `redis-cli --cluster create`, in a temporary directory, killed at the end.
`call` talks to one node directly (RESP over a plain socket, parsed by hiredis), so a test
can look at where keys live, move a slot by hand (`CLUSTER SETSLOT ... MIGRATING /
IMPORTING`, `MIGRATE`, `SETSLOT ... NODE`) and see louter follow. A machine without
redis-server or redis-cli fails these tests (CI installs them: .ci/run)."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hiredis
import pytest

BUS_OFFSET = 10000  # a cluster node also listens on port + 10000 (the cluster bus)


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ephemeral_low() -> int:
    """The lowest port the system hands out for outgoing connections."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def cluster_port(taken: set[int]) -> int:
    """A free port whose cluster-bus port (+10000) is free too, both below the ephemeral
    range: a killed node's ports cannot be taken by some outgoing connection's local end
    before `revive` binds them again (they were: CI once saw a revived node never agree)."""
    high = _ephemeral_low() - BUS_OFFSET
    for _ in range(200):
        port = random.randrange(10000, high)
        if port not in taken and _bindable(port) and _bindable(port + BUS_OFFSET):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def call(port: int, *args: str | int | bytes) -> Any:
    """One command to the node on `port`; an error reply comes back as hiredis.ReplyError."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    reader = hiredis.Reader()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"".join(out))
        while (reply := reader.gets()) is False:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError(f"node {port} closed the connection")
            reader.feed(data)
    return reply


class RedisCluster:
    def __init__(self, server: str, cli: str, directory: Path, masters: int = 3) -> None:
        self.server, self.cli, self.directory = server, cli, directory
        taken: set[int] = set()
        for _ in range(masters):
            taken.add(cluster_port(taken))
        self.ports = sorted(taken)
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    def url(self, port: int | None = None) -> str:
        return f"redis://127.0.0.1:{port or self.ports[0]}"

    def _spawn(self, port: int) -> None:
        """Start the node on `port`; its output is appended to `node-PORT.log` (read when
        it fails)."""
        with (self.directory / f"node-{port}.log").open("ab") as log:
            self.processes[port] = subprocess.Popen(
                [self.server, "--port", str(port), "--bind", "127.0.0.1",
                 "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
                 "--cluster-node-timeout", "5000", "--dir", str(self.directory),
                 "--save", "", "--appendonly", "no"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip

    def start(self) -> None:
        for port in self.ports:
            self._spawn(port)
        for port in self.ports:
            self._wait(port, lambda p: call(p, "PING") == b"PONG", "answer PING")
        addresses = [f"127.0.0.1:{port}" for port in self.ports]
        subprocess.run(
            [self.cli, "--cluster", "create", *addresses, "--cluster-replicas", "0",
             "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=30,
        )  # fmt: skip
        for port in self.ports:
            self._wait(port, self._agrees, "agree on the slot map")

    def _agrees(self, port: int) -> bool:
        """The node says the cluster is ok and knows every master as the owner of its slots."""
        info = call(port, "CLUSTER", "INFO")
        return b"cluster_state:ok" in info and len(call(port, "CLUSTER", "SLOTS")) == len(
            self.ports
        )

    def _wait(self, port: int, ready: Any, what: str, seconds: float = 20) -> None:
        deadline = time.monotonic() + seconds
        while True:
            try:
                if ready(port):
                    return
            except OSError:
                pass
            process = self.processes[port]
            if process.poll() is not None or time.monotonic() > deadline:
                exited = "" if process.returncode is None else f" (exited {process.returncode})"
                log = (self.directory / f"node-{port}.log").read_bytes()[-2000:]
                raise RuntimeError(
                    f"redis cluster node {port} did not {what}{exited}; its output ends:\n"
                    + log.decode("utf-8", "replace")
                )
            time.sleep(0.02)

    def owner(self, slot: int) -> int:
        """The port of the master that serves `slot`."""
        port = self._owner_seen(self.ports[0], slot)
        if port is None:
            raise LookupError(f"no node serves slot {slot}")
        return port

    def node_id(self, port: int) -> str:
        return call(port, "CLUSTER", "MYID").decode()

    def other_than(self, port: int) -> int:
        return next(p for p in self.ports if p != port)

    def move_slot(self, slot: int, source: int, target: int) -> None:
        """Move `slot` from `source` to `target`, keys included, and tell every node."""
        self.begin_migration(slot, source, target)
        self.finish_migration(slot, source, target)

    def begin_migration(self, slot: int, source: int, target: int) -> None:
        """Mark `slot` migrating: from now on `source` answers ASK for keys it lacks."""
        assert call(target, "CLUSTER", "SETSLOT", slot, "IMPORTING", self.node_id(source)) == b"OK"
        assert call(source, "CLUSTER", "SETSLOT", slot, "MIGRATING", self.node_id(target)) == b"OK"

    def finish_migration(self, slot: int, source: int, target: int) -> None:
        """Move the slot's remaining keys and hand the slot to `target` on every node."""
        while keys := call(source, "CLUSTER", "GETKEYSINSLOT", slot, 100):
            reply = call(source, "MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", *keys)
            assert reply == b"OK", reply
        for port in (target, source, *self.ports):
            assert call(port, "CLUSTER", "SETSLOT", slot, "NODE", self.node_id(target)) == b"OK"
        for port in self.ports:
            self._wait(port, lambda p: self._owner_seen(p, slot) == target, "see the moved slot")

    def _owner_seen(self, port: int, slot: int) -> int | None:
        for start, end, (_host, owner, *_rest), *_replicas in call(port, "CLUSTER", "SLOTS"):
            if start <= slot <= end:
                return int(owner)
        return None

    def kill(self, port: int) -> None:
        """Stop one node at once (its slots get no answer until `revive`)."""
        process = self.processes[port]
        process.kill()
        process.wait(10)

    def revive(self, port: int) -> None:
        """Start a killed node again: it rejoins from its nodes.conf with its slots (empty:
        these nodes keep nothing on disk)."""
        self._spawn(port)
        # A master the others marked FAIL (after --cluster-node-timeout, 5 s) has the flag
        # cleared only once it is 2 node timeouts old and the node answers again, then by
        # gossip: so more than the 20 s a fresh start needs, on a loaded machine
        for each in self.ports:
            self._wait(each, self._agrees, "agree on the slot map again", seconds=60)

    def keys_on(self, port: int) -> list[bytes]:
        return sorted(call(port, "KEYS", "*"))

    def stop(self) -> None:
        for process in self.processes.values():
            process.kill()
        for process in self.processes.values():
            process.wait(10)
        self.processes.clear()


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """One cluster per test module (it takes seconds to form): tests use their own key
    prefixes and leave every slot served."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    assert server is not None, "redis-server is missing: apt-get install redis-server"
    assert cli is not None, "redis-cli is missing: apt-get install redis-tools"
    cluster = RedisCluster(server, cli, tmp_path_factory.mktemp("cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
