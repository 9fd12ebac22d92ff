"""The sessions' metrics (issue 19): `sessions_evicted_total` counts the live sessions
dropped to stay within `max_sessions` (not those that expired on their own) and
`sessions_live` the sessions held that have not expired — in-process store only. Raw
HTTP on loopback (`/metrics`), and the book with a fake clock."""

from __future__ import annotations

import httpx
import trio

from louter.config import SessionConfig
from louter.proxy.sessions.book import SessionBook
from louter.proxy.sessions.state import Session
from louter.proxy.store import MemoryStore
from tests.conftest import StartLouter
from tests.proxy.test_sessions import config_for
from tests.proxy.test_sessions_routing import Clock, chat, upstreams


def metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


async def test_evictions_and_live_sessions_at_metrics(
    nursery: trio.Nursery, start_louter: StartLouter
) -> None:
    first, second = await upstreams(nursery)
    base = await start_louter(config_for(first, second, "[session]\nmax_sessions = 2\n"))
    async with httpx.AsyncClient(base_url=base) as http:

        async def scrape() -> tuple[float | None, float | None]:
            text = (await http.get("/metrics")).text
            return metric(text, "sessions_evicted_total"), metric(text, "sessions_live")

        assert await scrape() == (0.0, 0.0)
        for sid in ("a", "b", "c"):
            body = chat("!/set(project=p)")
            await http.post("/v1/chat/completions", json=body, headers={"x-session-id": sid})
        await http.post("/v1/chat/completions", json=chat("hi"), headers={"x-session-id": "d"})
        assert await scrape() == (1.0, 2.0)  # a went; d has nothing set: not stored
        await http.post("/v1/chat/completions", json=chat("!/unset(project)"),
                        headers={"x-session-id": "b"})  # fmt: skip
        assert await scrape() == (1.0, 1.0)  # nothing set any more: forgotten


async def test_without_commands_there_are_no_session_series(
    nursery: trio.Nursery, start_louter: StartLouter
) -> None:
    first, second = await upstreams(nursery)
    extra = "[session]\ndisable_interactive_commands = true\n"
    base = await start_louter(config_for(first, second, extra))
    async with httpx.AsyncClient(base_url=base) as http:
        text = (await http.get("/metrics")).text
    assert "sessions_evicted_total" not in text and "sessions_live" not in text


async def test_a_session_that_expired_is_not_counted_as_evicted() -> None:
    wall, mono = Clock(), Clock()
    store = MemoryStore(clock=mono)
    book = SessionBook(store, SessionConfig(expiry_seconds=100, max_sessions=2), clock=wall)

    async def keep(name: str) -> None:
        session = Session(name, "k:" + name)
        session.set("project", name)
        await book.save(session)

    await keep("a")
    wall.now += 60
    mono.now += 60
    await keep("b")
    assert book.live() == 2
    wall.now += 50  # a has expired, b has not
    mono.now += 50
    assert book.live() == 1
    await keep("c")  # over max_sessions: a goes, but it had expired on its own
    assert (book.evicted, book.live(), book.count()) == (0, 2, 2)
    await keep("d")  # b, still live, is evicted
    assert (book.evicted, book.live()) == (1, 2)
    assert (await book.load("b", "k:b")).empty
