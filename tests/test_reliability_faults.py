"""Database faults while the real server runs under load: nothing acknowledged is ever lost.

The server gets a PostgreSQL cluster of its own (the shared one stays untouched), with
``synchronous_commit = on`` as in production: the throwaway default (off) may lose the last
commits in a crash, and this test is about exactly that promise. Visitors chat and read without
pause while the database

- is shut down cleanly and started again (``fast``),
- crashes and recovers (``immediate``: no shutdown checkpoint, WAL replay on start),
- keeps running but has every connection of the server killed, again and again (``terminate``).

While it is down: a known visitor's ``GET /api/session`` is answered from the cookie (200,
``X-Session-Source: cookie``) once the worker's read cache has failed a flush and dropped its
copies (until then, within a second, from the cache); every write is a 503 with
``Retry-After`` (never a 200), the history is a 503, ``/readyz`` is a 503 and ``/healthz`` a
200. After it is back the same server process (no restart) serves everything again. At the end
every chat turn that was answered 200 is in the database exactly once — the user's message and
the reply, in order, in its session — and each session's ``message_count`` equals its rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg
import pytest

from bevsession.local_postgres import LocalPostgres
from bevsession.sealing import unseal_data
from e2e_server import PASSWORD, RunningServer, StartServer, Visitor

VISITORS = 6
TEMPLATE = "faults_template"


@pytest.fixture(scope="module")
def fault_pg() -> Any:
    """A cluster this module may stop, crash and start; durable commits, like production."""
    cluster = LocalPostgres.throwaway_cluster(settings={"synchronous_commit": "on"})
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="module")
async def fault_template(fault_pg: LocalPostgres) -> str:
    return await fault_pg.create_template(TEMPLATE)


@pytest.fixture
async def fault_db(fault_pg: LocalPostgres, fault_template: str) -> AsyncIterator[str]:
    name = await fault_pg.create_database(fault_template)
    admin = await asyncpg.connect(fault_pg.dsn(name))
    try:
        # This test is about faults, not abuse: the load would trip the chat rate limit.
        await admin.execute("update bevsession.chat_rate_policy set chat_rate_limit = 'off'")
    finally:
        await admin.close()
    yield name
    if not fault_pg.running:
        fault_pg.start()
    await fault_pg.drop_database(name)


# --- the load -------------------------------------------------------------------------------------
@dataclass
class Turn:
    visitor: int
    text: str
    status: int
    body: Any
    headers: Any


@dataclass
class Load:
    """Visitors chatting and reading without pause; every answer recorded."""

    visitors: list[Visitor]
    ids: list[str]
    turns: list[Turn] = field(default_factory=list)
    reads: list[tuple[int, int, Any, Any]] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    errors: list[str] = field(default_factory=list)
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def run_visitor(self, index: int) -> None:
        visitor = self.visitors[index]
        while not self.stop.is_set():
            text = f"[v{index} n{next(self._numbers)}] we distribute craft beer in three states"
            try:
                reply = await visitor.post("/api/chat", {"message": text})
                body = reply.json if reply.text else None
                self.turns.append(Turn(index, text, reply.status, body, reply.headers))
                read = await visitor.get("/api/session")
                self.reads.append((index, read.status, read.json if read.text else None,
                                   read.headers))  # fmt: skip
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                self.errors.append(f"v{index}: {exc!r}")
            await asyncio.sleep(0.01)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(self.run_visitor(i)) for i in range(len(self.visitors))]
        try:
            yield
        finally:
            self.stop.set()
            await asyncio.gather(*tasks)


async def wait_for(predicate: Callable[[], Any], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def assert_json_error(reply: Any, status: int, code: str) -> None:
    assert reply.status == status, reply
    assert reply.json["error"]["code"] == code, reply
    assert "Traceback" not in reply.text, reply


# --- the checks ---------------------------------------------------------------------------------
async def assert_down_behaviour(server: RunningServer, load: Load) -> None:
    """The database is certainly down now: what every kind of request gets."""

    async def flush_failed() -> bool:
        metrics = await load.visitors[0].get("/metrics", keep=False)
        return bool(metrics.json["readCache"]["flushFailures"] >= 1)

    # Reads answered from the read cache go on until the worker's next batched touch fails
    # (within SESSION_TOUCH_FLUSH_SECONDS, 1 s): then every copy is dropped and reads come from
    # the cookie, flagged as such.
    await wait_for(flush_failed, 10, "a failed read cache flush")
    for index, visitor in enumerate(load.visitors):
        read = await visitor.get("/api/session", keep=False)
        assert read.status == 200, f"a known visitor's read must be served from the cookie: {read}"
        assert read.headers.get("X-Session-Source") == "cookie", read.headers
        assert read.json["sessionId"] == load.ids[index]
        # The cookie's own count: at least the last acknowledged one (a turn whose reply could
        # not be stored still stored the user's message, and its 503 says so in the cookie).
        held = unseal_data(visitor.cookie, password=PASSWORD)["user"]["messageCount"]
        assert read.json["messageCount"] == held, read
        acked = [t for t in load.turns if t.visitor == index and t.status == 200]
        if acked:
            assert held >= acked[-1].body["messageCount"]
        assert read.session_cookie() is None, "nothing changed: no cookie is written"

        write = await visitor.post("/api/chat", {"message": f"while down {index}"}, keep=False)
        assert_json_error(write, 503, "database_unavailable")
        retry_after = write.headers.get("Retry-After", "")
        assert retry_after.isdigit() and int(retry_after) > 0, write.headers
        assert write.session_cookie() is None

        assert_json_error(await visitor.get("/api/chat/history", keep=False), 503,
                          "database_unavailable")  # fmt: skip
        cleared = await visitor.delete("/api/session", keep=False)
        assert_json_error(cleared, 503, "database_unavailable")
        assert cleared.session_cookie() is None, "a clear that was not stored keeps the cookie"
    newcomer = await Visitor(load.visitors[0].http, server).get("/api/session")
    assert_json_error(newcomer, 503, "database_unavailable")
    ready = await load.visitors[0].get("/readyz", keep=False)
    assert_json_error(ready, 503, "database_unavailable")
    assert "Retry-After" in ready.headers
    health = await load.visitors[0].get("/healthz", keep=False)
    assert health.status == 200 and health.json["status"] == "ok", health


async def assert_nothing_acknowledged_is_lost(dsn: str, load: Load) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "select session_id::text as sid, seq, message_role as role,"
            " message_content as content from bevsession.conversation_history order by seq"
        )
        counters = await conn.fetch(
            "select id::text as sid, message_count from bevsession.sessions"
        )
    finally:
        await conn.close()
    by_session: dict[str, list[Any]] = {}
    for r in rows:
        by_session.setdefault(r["sid"], []).append(r)
    user_texts = Counter(r["content"] for r in rows if r["role"] == "user")
    statuses = Counter(t.status for t in load.turns)
    for turn in load.turns:
        sid = load.ids[turn.visitor]
        if turn.status == 200:
            assert turn.body["sessionId"] == sid
            assert user_texts[turn.text] == 1, f"an acknowledged turn is missing or doubled: {turn}"
            messages = by_session[sid]
            position = next(i for i, r in enumerate(messages) if r["content"] == turn.text)
            assert position + 1 < len(messages), f"the acknowledged reply is missing: {turn}"
            answer = messages[position + 1]
            assert (answer["role"], answer["content"]) == ("assistant", turn.body["reply"]), turn
        else:
            # Not acknowledged: stored at most once (a turn whose reply could not be stored
            # keeps its user message — never acknowledged, never duplicated).
            assert turn.status in {503}, (
                f"a chat got neither 200 nor 503: {turn.status} {turn.body}"
            )
            assert turn.body["error"]["code"] == "database_unavailable"
            assert user_texts[turn.text] <= 1
    for r in counters:
        assert r["message_count"] == len(by_session.get(r["sid"], [])), (
            f"message_count drifted from the stored rows: {r}"
        )
    return dict(statuses)


# --- the test -----------------------------------------------------------------------------------
@pytest.mark.parametrize("fault", ["fast", "immediate", "terminate"])
async def test_database_faults_under_load_lose_nothing_acknowledged(
    fault: str,
    fault_pg: LocalPostgres,
    fault_db: str,
    server_factory: StartServer,
    http: aiohttp.ClientSession,
) -> None:
    server = await server_factory(
        env={"DATABASE_URL": fault_pg.dsn(fault_db, user="authenticator")}, database=False
    )
    pid = server.proc.pid
    visitors = [Visitor(http, server) for _ in range(VISITORS)]
    ids = [(await v.chat("hello, first turn"))["sessionId"] for v in visitors]
    load = Load(visitors, ids)

    async def ready() -> bool:
        return (await visitors[0].get("/readyz", keep=False)).status == 200

    async with load.running():
        await asyncio.sleep(0.5)
        if fault == "terminate":
            admin = await asyncpg.connect(fault_pg.dsn(fault_db))
            try:
                for _ in range(15):  # kill every server connection, busy or idle, again and again
                    await admin.fetchval(
                        "select count(pg_terminate_backend(pid)) from pg_stat_activity"
                        " where usename = 'authenticator'"
                    )
                    await asyncio.sleep(0.07)
            finally:
                await admin.close()
        else:
            if fault == "fast":
                await asyncio.to_thread(fault_pg.stop)
            else:  # a crash: SIGQUIT to every process, no checkpoint, WAL replay on start
                await asyncio.to_thread(
                    fault_pg._run,
                    ["pg_ctl", "-D", str(fault_pg.data_dir), "-m", "immediate", "-w", "stop"],
                )
            down_since = len(load.turns)
            await asyncio.sleep(0.3)
            await assert_down_behaviour(server, load)
            await asyncio.sleep(0.3)
            during = load.turns[down_since:]
            assert during, "the load kept going while the database was down"
            late = [t for t in during[len(during) // 2 :] if t.status == 200]
            assert not late, f"a write was acknowledged while the database was down: {late[:3]}"
            await asyncio.to_thread(fault_pg.start)
        await wait_for(ready, 30, "/readyz after the database came back")
        before = len([t for t in load.turns if t.status == 200])
        await wait_for(
            lambda: _more_acked(load, before, 3 * VISITORS), 30, "chat turns after the recovery"
        )

    assert server.proc.poll() is None and server.proc.pid == pid, "the server must not restart"
    assert not load.errors, f"requests failed at the HTTP level: {load.errors[:5]}"
    for index, visitor in enumerate(visitors):  # everything works again, from the database
        summary = await visitor.get("/api/session")
        # Not degraded ("cookie"); "cache" is a copy the database confirmed after the recovery
        # (a failed flush during the outage dropped every older copy).
        assert summary.status == 200, summary
        assert summary.headers.get("X-Session-Source") in (None, "cache"), summary
        assert summary.json["sessionId"] == ids[index]
        assert (await visitor.chat(f"after the {fault} fault")).get("sessionId") == ids[index]
        after = await visitor.get("/api/session")
        stored = await fetch_message_count(fault_pg.dsn(fault_db), ids[index])
        assert after.json["messageCount"] == stored, (after, stored)
    for _, status, body, _ in load.reads:
        assert status == 200 or (status == 503 and body["error"]["code"] == "database_unavailable")

    statuses = await assert_nothing_acknowledged_is_lost(fault_pg.dsn(fault_db), load)
    assert statuses.get(200, 0) > 3 * VISITORS, statuses
    if fault != "terminate":
        assert statuses.get(503, 0) > 0, f"the outage should have refused some writes: {statuses}"
    print(f"{fault}: chat turns by status {statuses}, reads {len(load.reads)}")
    log = server.log_text()
    assert "Traceback" not in log, f"an unhandled error was logged:\n{log[-4000:]}"


async def _more_acked(load: Load, before: int, more: int) -> bool:
    return len([t for t in load.turns if t.status == 200]) >= before + more


async def fetch_message_count(dsn: str, session_id: str) -> int:
    """The session's message_count as stored."""
    conn = await asyncpg.connect(dsn)
    try:
        value = await conn.fetchval(
            "select message_count from bevsession.sessions where id = $1::uuid", session_id
        )
    finally:
        await conn.close()
    assert isinstance(value, int)
    return value
