"""The Python list of RPCs (bevsession.rpc) is exactly the database's API surface."""

from __future__ import annotations

import asyncpg
import pytest

from bevsession.rpc import FUNCTIONS, check_call


async def test_registry_matches_pg_proc(db_dsn: str) -> None:
    conn = await asyncpg.connect(db_dsn)
    try:
        rows = await conn.fetch(
            """
            select p.proname, coalesce(p.proargnames, '{}') as args, p.provolatile::text as vol,
                   has_function_privilege('session_visitor', p.oid, 'execute') as visitor,
                   has_function_privilege('service_role', p.oid, 'execute') as service,
                   has_function_privilege('anon', p.oid, 'execute') as anon,
                   has_function_privilege('authenticated', p.oid, 'execute') as authenticated,
                   format_type(p.prorettype, null) as returns
            from pg_proc p where p.pronamespace = 'public'::regnamespace
            """
        )
    finally:
        await conn.close()
    in_db = {r["proname"]: r for r in rows}
    assert set(in_db) == set(FUNCTIONS)
    for name, spec in FUNCTIONS.items():
        row = in_db[name]
        assert tuple(row["args"]) == spec.params, name
        assert (row["vol"] != "v") == spec.read_only, name
        assert row["returns"] == "jsonb", name
        assert row["service"], name
        assert row["visitor"] == (not spec.admin), name
        assert not row["anon"] and not row["authenticated"], name


def test_check_call() -> None:
    assert check_call("get_session", {"touch": True}).name == "get_session"
    with pytest.raises(ValueError, match="unknown RPC function"):
        check_call("drop_everything", {})
    with pytest.raises(ValueError, match="unknown argument"):
        check_call("clear_session", {"session_id": "x"})
