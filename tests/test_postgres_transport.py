"""The asyncpg transport runs an RPC as PostgREST would, in one round trip, leaking nothing.

Round trips are counted on the wire by a relay between asyncpg and PostgreSQL (bench/wire.py):
each time the client speaks after the server answered is one.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from bench.wire import RoundTripRelay

from bevsession.local_postgres import LocalPostgres
from bevsession.models import SessionSnapshot
from bevsession.rpc import FUNCTIONS
from bevsession.transports.base import Service, Visitor
from bevsession.transports.postgres import PostgresTransport


@pytest.fixture
async def relay(pg: LocalPostgres, db_name: str) -> AsyncIterator[RoundTripRelay]:
    r = await RoundTripRelay(pg.host, pg.port).start()
    try:
        yield r
    finally:
        await r.close()


@pytest.fixture
async def one_conn(relay: RoundTripRelay, db_name: str) -> AsyncIterator[PostgresTransport]:
    """A transport with exactly one visitor connection, through the counting relay."""
    t = await PostgresTransport.connect(
        f"postgresql://authenticator@127.0.0.1:{relay.port}/{db_name}", min_size=1, max_size=1
    )
    try:
        yield t
    finally:
        await t.close()


async def test_one_round_trip_per_rpc(one_conn: PostgresTransport, relay: RoundTripRelay) -> None:
    me = Visitor(uuid.uuid4())
    await one_conn.call("get_session", {"touch": True}, identity=me)  # prepares the statement
    await one_conn.call("add_conversation_message", {"role": "user", "content": "x"}, identity=me)
    relay.reset()
    n = 25
    for i in range(n):
        await one_conn.call("get_session", {"touch": True}, identity=me)
        await one_conn.call(
            "add_conversation_message", {"role": "user", "content": f"m{i}"}, identity=me
        )
    assert relay.round_trips == 2 * n


async def test_first_call_per_statement_and_connection_prepares(
    one_conn: PostgresTransport, relay: RoundTripRelay
) -> None:
    me = Visitor(uuid.uuid4())
    await one_conn.call("get_session", {}, identity=me)
    relay.reset()
    await one_conn.call("clear_session", {}, identity=me)  # new statement: prepare + execute
    assert relay.round_trips == 2
    relay.reset()
    await one_conn.call("clear_session", {}, identity=me)
    assert relay.round_trips == 1


async def test_call_model_parses_the_json_text_in_one_round_trip(
    one_conn: PostgresTransport, relay: RoundTripRelay
) -> None:
    """``call_model`` fetches the result as text (its own prepared statement) and validates it
    straight into the model: the same model as validating what ``call`` decodes."""
    me = Visitor(uuid.uuid4())
    args = {"touch": False}
    await one_conn.call("get_session", {}, identity=me)
    await one_conn.call_model("get_session", args, SessionSnapshot, identity=me)  # prepares
    relay.reset()
    parsed = await one_conn.call_model("get_session", args, SessionSnapshot, identity=me)
    assert relay.round_trips == 1
    decoded = await one_conn.call("get_session", args, identity=me)
    assert parsed == SessionSnapshot.model_validate(decoded)
    text_sql = one_conn.statement(FUNCTIONS["get_session"], ("touch",), text=True)
    assert text_sql.startswith("select public.get_session(touch => $2)::text as result from (")
    assert text_sql.replace("::text", "") == one_conn.statement(
        FUNCTIONS["get_session"], ("touch",)
    )


async def raw(transport: PostgresTransport, kind: type, sql: str, *args: object) -> object:
    """Run *sql* on a connection of the transport's pool for *kind* (Visitor or Service)."""
    return await transport._pool(kind).fetchval(sql, *args)


async def test_claims_do_not_leak_to_the_next_call(one_conn: PostgresTransport) -> None:
    me = Visitor(uuid.uuid4())
    await one_conn.call("get_session", {}, identity=me)
    # the same (only) connection, straight after: every request.* setting is gone
    for name in ("request.jwt.claims", "request.method", "request.path"):
        assert await raw(one_conn, Visitor, f"select current_setting('{name}', true)") == ""
    assert await raw(one_conn, Visitor, "select bevsession.current_session_id()") is None


async def test_claims_inside_the_call_are_postgrests(one_conn: PostgresTransport) -> None:
    """Inside the statement the function sees PostgREST's GUCs, the role and the claims."""
    me = Visitor(uuid.uuid4())
    spec = FUNCTIONS["get_session"]
    sql = one_conn.statement(spec, ("touch",)).replace(
        "public.get_session(touch => $2)",
        "json_build_object('user', current_user, 'claims', current_setting('request.jwt.claims'),"
        " 'method', current_setting('request.method'), 'path', current_setting('request.path'),"
        " 'search_path', current_setting('search_path'), 'x', $2::bool)",
    )
    claims = json.dumps({"role": "session_visitor", "session_id": str(me.session_id)})
    seen = await raw(one_conn, Visitor, sql, claims, True)
    assert isinstance(seen, dict)
    assert seen["user"] == "session_visitor"
    assert json.loads(seen["claims"]) == {
        "role": "session_visitor",
        "session_id": str(me.session_id),
    }
    assert (seen["method"], seen["path"]) == ("POST", "/rpc/get_session")
    assert seen["search_path"] == "public, extensions"


async def test_rls_applies_to_the_pool_role(one_conn: PostgresTransport) -> None:
    a, b = Visitor(uuid.uuid4()), Visitor(uuid.uuid4())
    for who in (a, b, b):
        await one_conn.call("begin_chat_turn", {"content": "hi"}, identity=who)
    count_sql = one_conn.statement(FUNCTIONS["clear_session"], ()).replace(
        "public.clear_session()", "(select count(*) from bevsession.conversation_history)"
    )
    for who, expected in ((a, 1), (b, 2)):
        claims = json.dumps({"role": "session_visitor", "session_id": str(who.session_id)})
        assert await raw(one_conn, Visitor, count_sql, claims) == expected
    assert await raw(one_conn, Visitor, "select count(*) from bevsession.conversation_history") == 0


async def test_roles_and_role_settings(one_conn: PostgresTransport) -> None:
    assert await raw(one_conn, Visitor, "select current_user") == "session_visitor"
    assert await raw(one_conn, Visitor, "select session_user") == "authenticator"
    # ALTER ROLE session_visitor SET statement_timeout = '8s' applies, as PostgREST applies it
    assert await raw(one_conn, Visitor, "show statement_timeout") == "8s"
    assert await raw(one_conn, Service, "select current_user") == "service_role"
    stats = await one_conn.call("admin_session_stats", {}, identity=Service())
    assert stats["sessions"]["total"] == 0


async def test_reset_all_leaves_the_role(db_dsn: str) -> None:
    """Why SET ROLE at connect is safe even under asyncpg's default reset (GUC_NO_RESET_ALL)."""
    conn = await asyncpg.connect(db_dsn)
    try:
        await conn.execute("set role session_visitor")
        await conn.execute("reset all")
        assert await conn.fetchval("select current_user") == "session_visitor"
    finally:
        await conn.close()


async def test_read_only_functions_run_read_only(one_conn: PostgresTransport) -> None:
    history = one_conn.statement(FUNCTIONS["get_conversation_history"], ("history_limit",))
    assert "transaction_read_only" in history
    probe = history.replace(
        "public.get_conversation_history(history_limit => $2)",
        "(select current_setting('transaction_read_only') || $2::int)",
    )
    claims = json.dumps({"role": "session_visitor"})
    assert await raw(one_conn, Visitor, probe, claims, 1) == "on1"
    assert "transaction_read_only" not in one_conn.statement(FUNCTIONS["get_session"], ())


async def test_statement_uses_only_listed_names(one_conn: PostgresTransport) -> None:
    sql = one_conn.statement(FUNCTIONS["record_persona_signal"], ("signal_type", "vector"))
    assert sql.startswith(
        "select public.record_persona_signal(signal_type => $2, vector => $3) as result from ("
    )
    with pytest.raises(ValueError):
        await one_conn.call("get_session", {"touch": True, "other": 1}, identity=Service())


async def test_pool_recovers_after_its_backends_are_killed(
    one_conn: PostgresTransport, db_dsn: str
) -> None:
    me = Visitor(uuid.uuid4())
    await one_conn.call("get_session", {}, identity=me)
    admin = await asyncpg.connect(db_dsn)
    try:
        killed = await admin.fetchval(
            "select count(pg_terminate_backend(pid)) from pg_stat_activity"
            " where usename = 'authenticator' and pid <> pg_backend_pid()"
        )
        # Wait until the killed backends are gone, then give the event loop time to read their
        # goodbye: this test is about a connection that died while IDLE. (A kill racing the
        # next query is a failure the caller sees: a write there may have committed, so the
        # transport must not retry it blindly.)
        for _ in range(100):
            left = await admin.fetchval(
                "select count(*) from pg_stat_activity where usename = 'authenticator'"
            )
            if left == 0:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
    finally:
        await admin.close()
    assert killed >= 1
    # the dead connection fails before sending, so the transport retries once on a new one
    await one_conn.call("get_session", {}, identity=me)
    await one_conn.call("get_session", {}, identity=me)
