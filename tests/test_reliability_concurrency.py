"""100 concurrent chat turns over 10 sessions through the HTTP API of the real server.

The server runs with two worker processes (they share nothing but the database). All turns are
sent at once, ten per session, each carrying its session's cookie. Afterwards the database is
read directly: every acknowledged message is stored exactly once, in its own session, counters
(message_count, total_interactions, signal rows) are exact, and no session holds anything of
another — in the database, in the history the API returns, or in the cookie it sends back.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from typing import Any

import aiohttp

from bevsession.sealing import unseal_data
from e2e_server import PASSWORD, StartServer, Visitor, db_fetch

SESSIONS = 10
TURNS_PER_SESSION = 10
TAG = re.compile(r"\[s(\d+) t(\d+)\]")


def text_of(session: int, turn: int) -> str:
    # The same words every time (the same signals), a unique tag to find each message by.
    return f"[s{session} t{turn}] I run sales at a craft brewery and need to prove ROI"


async def test_100_concurrent_turns_over_10_sessions_lose_and_mix_nothing(
    server_factory: StartServer, http: aiohttp.ClientSession
) -> None:
    server = await server_factory(args=["--workers", "2"])
    visitors = [Visitor(http, server) for _ in range(SESSIONS)]
    ids = [(await v.session())["sessionId"] for v in visitors]
    cookies = [v.cookie for v in visitors]
    assert len(set(ids)) == SESSIONS

    start = asyncio.Event()

    async def turn(session: int, number: int) -> tuple[int, int, Any]:
        await start.wait()
        reply = await visitors[session].post(
            "/api/chat", {"message": text_of(session, number)}, cookie=cookies[session], keep=False
        )
        return session, number, reply

    async def read(session: int) -> Any:
        await start.wait()
        return await visitors[session].get("/api/session", cookie=cookies[session], keep=False)

    tasks = [
        asyncio.create_task(turn(s, t)) for s in range(SESSIONS) for t in range(TURNS_PER_SESSION)
    ]
    reads = [asyncio.create_task(read(s)) for s in range(SESSIONS) for _ in range(2)]
    await asyncio.sleep(0.05)
    start.set()
    results = await asyncio.gather(*tasks)
    read_replies = await asyncio.gather(*reads)

    # --- the answers ------------------------------------------------------------------------
    acknowledged: dict[int, list[int]] = {s: [] for s in range(SESSIONS)}
    for session, number, reply in results:
        assert reply.status == 200, f"turn s{session} t{number}: {reply}"
        body = reply.json
        assert body["sessionId"] == ids[session], "a reply named another session"
        assert 2 <= body["messageCount"] <= 2 * TURNS_PER_SESSION
        cookie = reply.session_cookie()
        assert cookie is not None, "a write must reseal the cookie"
        assert unseal_data(cookie.value, password=PASSWORD)["user"]["sessionId"] == ids[session]
        acknowledged[session].append(number)
    for session, reply in zip([s for s in range(SESSIONS) for _ in range(2)], read_replies,
                              strict=True):  # fmt: skip
        assert reply.status == 200 and reply.json["sessionId"] == ids[session], reply
    for session in range(SESSIONS):
        counts = sorted(r.json["messageCount"] for s, _, r in results if s == session)
        assert len(set(counts)) == TURNS_PER_SESSION, f"two turns saw the same count: {counts}"
        assert counts[-1] == 2 * TURNS_PER_SESSION

    # --- the database -----------------------------------------------------------------------
    rows = await db_fetch(
        server,
        "select session_id::text as sid, seq, message_role, message_content"
        " from bevsession.conversation_history order by seq",
    )
    assert len(rows) == SESSIONS * TURNS_PER_SESSION * 2
    user_rows = [r for r in rows if r["message_role"] == "user"]
    seen = Counter(r["message_content"] for r in user_rows)
    for session, numbers in acknowledged.items():
        for number in numbers:
            assert seen[text_of(session, number)] == 1, f"s{session} t{number} not stored once"
    for r in user_rows:
        tag = TAG.match(r["message_content"])
        assert tag is not None
        assert r["sid"] == ids[int(tag.group(1))], f"a message landed in another session: {r}"
    by_session = Counter(r["sid"] for r in rows)
    assert by_session == {sid: 2 * TURNS_PER_SESSION for sid in ids}

    sessions = await db_fetch(
        server,
        "select s.id::text as sid, s.message_count, p.total_interactions,"
        " (select count(*) from bevsession.persona_signals g where g.session_id = s.id) as signals"
        " from bevsession.sessions s join bevsession.user_personas p on p.session_id = s.id",
    )
    assert {r["sid"] for r in sessions} == set(ids), "sessions appeared or vanished"
    signals_per_turn = {r["signals"] for r in sessions}
    assert len(signals_per_turn) == 1, f"same words, different signal counts: {sessions}"
    per_turn = signals_per_turn.pop() // TURNS_PER_SESSION
    assert per_turn > 0, "the message should carry persona signals"
    for r in sessions:
        assert r["message_count"] == 2 * TURNS_PER_SESSION, r
        assert r["signals"] == per_turn * TURNS_PER_SESSION, r
        assert r["total_interactions"] == r["signals"], f"a signal was lost or doubled: {r}"

    # --- what each visitor can see afterwards ---------------------------------------------------
    for session, visitor in enumerate(visitors):
        page = await visitor.get("/api/chat/history?limit=100", cookie=cookies[session])
        assert page.status == 200, page
        messages = page.json["messages"]
        assert len(messages) == 2 * TURNS_PER_SESSION
        tags = {TAG.match(m["content"]).group(1) for m in messages if m["role"] == "user"}  # type: ignore[union-attr]
        assert tags == {str(session)}, f"session {session}'s history holds {tags}"
        summary = (await visitor.get("/api/session", cookie=cookies[session])).json
        assert summary["messageCount"] == 2 * TURNS_PER_SESSION
        assert summary["persona"]["total_interactions"] == per_turn * TURNS_PER_SESSION
