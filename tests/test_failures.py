"""Failures surface as the same documented exception on both transports, and nothing half-done.

Covers: invalid input refused by the SQL (Python validation bypassed), missing identity, a
visitor calling an admin function, revoked sessions, names outside the API, and the database
going away in the middle of a run and coming back (a separate throwaway cluster).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from bevsession.errors import (
    DatabaseUnavailable,
    InvalidInput,
    NoSessionIdentity,
    PermissionDenied,
    SessionError,
    SessionNotFound,
    SessionRevoked,
)
from bevsession.local_postgres import LocalPostgres
from bevsession.migrations import migrate
from bevsession.service import SessionService
from bevsession.tokens import TokenMinter
from bevsession.transports.base import Service, Transport, Visitor
from bevsession.transports.postgres import PostgresTransport
from bevsession.transports.supabase import SupabaseTransport
from postgrest_endpoint import RunningEndpoint, run_endpoint
from rpc_fixtures import Keys, endpoint_config


def me() -> Visitor:
    return Visitor(uuid.uuid4())


# --- invalid input, as the SQL sees it -----------------------------------------------------------
SIGNAL = {"signal_type": "x", "signal_text": "y"}
SQL_REFUSALS: list[tuple[str, dict[str, Any], str, str]] = [
    ("update_persona", {"updates": {"overall_confidence": 1}}, "22023",
     "updates.overall_confidence"),
    ("update_persona", {"updates": {"current_mode": "asleep"}}, "22023",
     "updates.current_mode"),
    ("update_persona", {"updates": [1, 2]}, "22023", "updates"),
    ("record_persona_signal", {**SIGNAL, "signal_strength": "huge"}, "22023",
     "signal_strength"),
    ("record_persona_signal",
     {**SIGNAL, "signal_strength": "weak", "score_updates": {"sales_focus_score": 2}},
     "22023", "score_updates"),
    ("record_persona_signal", {**SIGNAL, "signal_strength": "weak", "vector": "org_type"},
     "22023", "vector_value"),
    ("add_conversation_message", {"role": "robot", "content": "hi"}, "22023", "role"),
    ("add_conversation_message", {"role": "user", "content": "x" * 8001}, "22023",
     "content"),
    ("get_conversation_history", {"history_limit": 0}, "22023", "history_limit"),
    # the server (PostgREST: 22P02) or asyncpg's encoder (22000) refuses it: class 22 both ways
    ("get_conversation_history", {"history_limit": "many"}, "22", ""),
    ("begin_chat_turn", {"content": "hi", "signals": [{"signal_type": "x"}]}, "22023",
     "signals[0]"),
    ("begin_chat_turn", {"content": "hi", "history_limit": 500}, "22023", "history_limit"),
]  # fmt: skip


@pytest.mark.parametrize(("fn", "args", "code", "field"), SQL_REFUSALS)
async def test_sql_refusals_are_invalid_input(
    transport: Transport, fn: str, args: dict[str, Any], code: str, field: str
) -> None:
    identity = me()
    await transport.call("get_session", {}, identity=identity)
    with pytest.raises(InvalidInput) as info:
        await transport.call(fn, args, identity=identity)
    assert info.value.code.startswith(code)
    assert info.value.message.startswith(field)


async def test_refused_turn_writes_nothing(local_transport: Transport, db_dsn: str) -> None:
    """A bad second signal refuses the whole turn: no session, message or signal is stored."""
    identity = me()
    good = {"signal_type": "ok", "signal_text": "fine", "signal_strength": "weak"}
    with pytest.raises(InvalidInput):
        await local_transport.call(
            "begin_chat_turn",
            {"content": "hi", "signals": [good, {**good, "signal_strength": "loud"}]},
            identity=identity,
        )
    conn = await asyncpg.connect(db_dsn)
    try:
        counts = await conn.fetchrow(
            "select (select count(*) from bevsession.sessions) s,"
            " (select count(*) from bevsession.conversation_history) m,"
            " (select count(*) from bevsession.persona_signals) g"
        )
    finally:
        await conn.close()
    assert tuple(counts) == (0, 0, 0)


# --- identity and permissions --------------------------------------------------------------------
async def test_service_role_has_no_session_identity(transport: Transport) -> None:
    with pytest.raises(NoSessionIdentity) as info:
        await transport.call("get_session", {}, identity=Service())
    assert info.value.code == "PT401"


async def test_visitor_cannot_call_admin_functions(transport: Transport) -> None:
    with pytest.raises(PermissionDenied) as info:
        await transport.call("admin_session_stats", {}, identity=me())
    assert info.value.code == "42501"


async def test_missing_and_revoked_sessions(transport: Transport) -> None:
    identity = me()
    with pytest.raises(SessionNotFound) as missing:
        await transport.call("add_conversation_message", {"role": "user", "content": "x"},
                             identity=identity)  # fmt: skip
    assert missing.value.code == "PT404"
    await transport.call("get_session", {}, identity=identity)
    await transport.call("clear_session", {}, identity=identity)
    with pytest.raises(SessionRevoked) as revoked:
        await transport.call("finish_chat_turn", {"content": "x"}, identity=identity)
    assert revoked.value.code == "PT403"
    assert "revoked" in revoked.value.message


async def test_names_outside_the_api_are_refused_before_io(transport: Transport) -> None:
    with pytest.raises(ValueError, match="unknown RPC function"):
        await transport.call("pg_sleep", {}, identity=me())
    with pytest.raises(ValueError, match="unknown argument"):
        await transport.call("get_session", {"touch) or true; --": 1}, identity=me())


# --- the database goes away and comes back -------------------------------------------------------
@pytest.fixture(scope="module")
async def lonely_pg() -> AsyncIterator[LocalPostgres]:
    """A separate cluster this module may stop and start."""
    cluster = LocalPostgres.throwaway_cluster()
    try:
        admin = await asyncpg.connect(cluster.dsn())
        try:
            await admin.execute("create database lonely")
        finally:
            await admin.close()
        await migrate(cluster.dsn("lonely"))
        yield cluster
    finally:
        cluster.destroy()


async def message_count(cluster: LocalPostgres) -> int:
    conn = await asyncpg.connect(cluster.dsn("lonely"))
    try:
        count: int = await conn.fetchval("select count(*) from bevsession.conversation_history")
        return count
    finally:
        await conn.close()


@pytest.mark.parametrize("kind", ["postgres", "supabase"])
async def test_database_down_then_back(lonely_pg: LocalPostgres, keys: Keys, kind: str) -> None:
    running: RunningEndpoint | None = None
    transport: Transport
    if kind == "postgres":
        transport = await PostgresTransport.connect(
            lonely_pg.dsn("lonely", user="authenticator"), min_size=2, connect_timeout=2
        )
    else:
        running = await run_endpoint(endpoint_config(lonely_pg, "lonely", keys))
        transport = await SupabaseTransport.connect(
            running.url, anon_key=keys.anon_key, service_key=keys.service_key,
            minter=TokenMinter(keys.jwt_secret),
        )  # fmt: skip
    service = SessionService(transport)
    session_id = uuid.uuid4()
    try:
        await service.begin_chat_turn(session_id, "before the outage")
        before = await message_count(lonely_pg)

        await asyncio.to_thread(lonely_pg.stop)
        for _ in range(3):  # every call fails the same way; none is reported as done
            with pytest.raises(DatabaseUnavailable) as info:
                await service.add_conversation_message(session_id, "user", "during the outage")
            assert info.value.code.startswith(("08", "57", "PGRST00"))
        with pytest.raises(DatabaseUnavailable):
            await service.ping()

        await asyncio.to_thread(lonely_pg.start)
        assert await message_count(lonely_pg) == before  # nothing was written while down
        for attempt in range(20):  # the same pool / client recovers on its own
            try:
                result = await service.add_conversation_message(session_id, "user", "after")
                break
            except DatabaseUnavailable:
                assert attempt < 19
                await asyncio.sleep(0.1)
        assert result.session.message_count == 2
        await service.ping()
    finally:
        if not lonely_pg.running:
            await asyncio.to_thread(lonely_pg.start)
        await transport.close()
        if running is not None:
            await running.close()


async def test_endpoint_down_is_database_unavailable(keys: Keys) -> None:
    """No HTTP server at all (connection refused) maps like a database outage."""
    from bevsession.local_postgres import free_port

    transport = SupabaseTransport(
        f"http://127.0.0.1:{free_port()}", anon_key=keys.anon_key, service_key=keys.service_key,
        minter=TokenMinter(keys.jwt_secret),
    )  # fmt: skip
    try:
        with pytest.raises(DatabaseUnavailable) as info:
            await transport.call("get_session", {}, identity=me())
        assert info.value.code == "08001"
        with pytest.raises(DatabaseUnavailable):
            await transport.ping()
    finally:
        await transport.close()


async def test_error_messages_carry_no_secrets(keys: Keys) -> None:
    """Connection errors are reported without the DSN's password."""
    transport = PostgresTransport(
        "postgresql://authenticator:hunter2-secret@127.0.0.1:1/nowhere", connect_timeout=1
    )
    with pytest.raises(SessionError) as info:
        await transport.start()
    assert "hunter2" not in str(info.value)
    assert isinstance(info.value, DatabaseUnavailable)
    await transport.close()
