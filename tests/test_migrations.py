"""Migrations apply cleanly on a fresh database, are recorded, and are never applied twice.

Each test makes its own fresh database (from template0, not the migrated template) in the shared
throwaway cluster. Roles are cluster-wide, so the second and later databases also prove that the
shim and the first migration tolerate roles that already exist.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import AsyncIterator

import asyncpg
import pytest

from bevsession.local_postgres import LocalPostgres
from bevsession.migrations import list_migrations, migrate, project_dir, shim_path

_counter = itertools.count(1)


@pytest.fixture
async def fresh_dsn(pg: LocalPostgres) -> AsyncIterator[str]:
    """An empty database (nothing applied), dropped afterwards."""
    name = f"fresh{os.getpid()}_{next(_counter)}"
    admin = await asyncpg.connect(pg.dsn())
    try:
        await admin.execute(f'create database "{name}" template template0')
    finally:
        await admin.close()
    try:
        yield pg.dsn(name)
    finally:
        admin = await asyncpg.connect(pg.dsn())
        try:
            await admin.execute(f'drop database if exists "{name}" with (force)')
        finally:
            await admin.close()


async def test_migrate_applies_everything_then_nothing(fresh_dsn: str) -> None:
    expected = [m.version for m in list_migrations()]
    assert len(expected) >= 3

    assert await migrate(fresh_dsn) == expected
    assert await migrate(fresh_dsn) == [], "a second run must skip every applied migration"

    conn = await asyncpg.connect(fresh_dsn)
    try:
        rows = await conn.fetch(
            "select version, name, statements"
            " from supabase_migrations.schema_migrations order by version"
        )
        assert [r["version"] for r in rows] == expected
        assert [r["name"] for r in rows] == [m.name for m in list_migrations()]
        assert all(r["statements"] for r in rows)
        tables = await conn.fetch(
            "select tablename from pg_tables where schemaname = 'bevsession' order by 1"
        )
        assert [t["tablename"] for t in tables] == [
            "chat_rate_policy", "conversation_history", "persona_signals", "seal_keys",
            "seed_imports", "session_policy", "sessions", "user_personas",
        ]  # fmt: skip
    finally:
        await conn.close()


async def test_migrate_works_on_a_second_fresh_database(fresh_dsn: str, pg: LocalPostgres) -> None:
    """The cluster already has every role (the template and other tests made them)."""
    applied = await migrate(fresh_dsn)
    assert applied == [m.version for m in list_migrations()]
    conn = await asyncpg.connect(fresh_dsn)
    try:
        member = await conn.fetchval(
            "select pg_has_role('authenticator', 'session_visitor', 'member')"
        )
        assert member is True
    finally:
        await conn.close()


async def test_shim_is_idempotent(fresh_dsn: str) -> None:
    shim = shim_path().read_text(encoding="utf-8")
    conn = await asyncpg.connect(fresh_dsn)
    try:
        for _ in range(2):
            async with conn.transaction():
                await conn.execute(shim)
        roles = await conn.fetch(
            "select rolname, rolcanlogin, rolbypassrls, rolinherit from pg_roles where rolname"
            " in ('anon', 'authenticated', 'service_role', 'authenticator') order by 1"
        )
        assert [
            (r["rolname"], r["rolcanlogin"], r["rolbypassrls"], r["rolinherit"]) for r in roles
        ] == [
            ("anon", False, False, False),
            ("authenticated", False, False, False),
            ("authenticator", True, False, False),
            ("service_role", False, True, False),
        ]
        claims = json.dumps(
            {
                "role": "authenticated",
                "sub": "6f1b3c1e-2a59-4a43-9d43-3f4b54a2a0a1",
                "session_id": "x",
            }
        )
        async with conn.transaction():
            await conn.execute("select set_config('request.jwt.claims', $1, true)", claims)
            uid, role, jwt = await conn.fetchrow(
                "select auth.uid()::text, auth.role(), auth.jwt()::text"
            )
        assert uid == "6f1b3c1e-2a59-4a43-9d43-3f4b54a2a0a1"
        assert role == "authenticated"
        assert '"session_id": "x"' in jwt
        # the single-claim GUC wins over the JSON document, as in Supabase
        async with conn.transaction():
            await conn.execute("select set_config('request.jwt.claims', $1, true)", claims)
            await conn.execute("select set_config('request.jwt.claim.role', 'anon', true)")
            assert await conn.fetchval("select auth.role()") == "anon"
        # no claims at all: null, not an error
        assert await conn.fetchval("select auth.uid()") is None
        # the shim never creates auth.users: that is how the migrator recognises real Supabase
        assert await conn.fetchval("select to_regclass('auth.users')") is None
    finally:
        await conn.close()

    # and the migrations apply on top of the twice-applied shim
    assert await migrate(fresh_dsn) == [m.version for m in list_migrations()]


DEFAULT_ACL = """
    select defaclrole::regrole::text as role, defaclnamespace::regnamespace::text as schema,
           defaclobjtype as kind, array(select unnest(defaclacl)::text order by 1) as acl
    from pg_default_acl
    order by 1, 2, 3
"""


async def test_migrations_leave_default_privileges_alone(fresh_dsn: str) -> None:
    """On a shared database other applications keep the default privileges they expect: the
    migrations grant every object explicitly and never ALTER DEFAULT PRIVILEGES."""
    conn = await asyncpg.connect(fresh_dsn)
    try:
        async with conn.transaction():
            await conn.execute(shim_path().read_text(encoding="utf-8"))
        migration_role = await conn.fetchval("select current_user")
        before = [tuple(r) for r in await conn.fetch(DEFAULT_ACL)]
        # not vacuous: the shim sets Supabase's default privileges on public for this role
        assert any(row[0] == migration_role and row[1] == "public" for row in before), before

        assert await migrate(fresh_dsn) == [m.version for m in list_migrations()]

        after = [tuple(r) for r in await conn.fetch(DEFAULT_ACL)]
        assert after == before, "the migrations changed the database's default privileges"
    finally:
        await conn.close()


def test_sql_files_are_plain_sql() -> None:
    """`supabase db push` and asyncpg run plain SQL: no psql meta-commands, no BEGIN/COMMIT."""
    files = [shim_path(), *(m.path for m in list_migrations())]
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"^\s*\\", text, re.M), f"{path.name}: psql meta-command"
        assert not re.search(r"^\s*(begin|commit|rollback)\s*;", text, re.I | re.M), (
            f"{path.name}: transaction control (the migrator wraps each file in one transaction)"
        )


def test_migration_files_are_named_like_supabase_cli() -> None:
    folder = project_dir() / "supabase" / "migrations"
    names = sorted(p.name for p in folder.iterdir() if p.is_file())
    assert names, "no migrations"
    for name in names:
        assert re.fullmatch(r"\d{14}_[a-z0-9_]+\.sql", name), name
    versions = [n[:14] for n in names]
    assert versions == sorted(set(versions)), "versions must be unique and increasing"
