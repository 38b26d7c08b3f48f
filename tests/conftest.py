"""Shared fixtures: one real, throwaway PostgreSQL per test run; a fresh database per test.

The cluster is started once (about half a second) in a temporary folder and removed at the
end. Migrations are applied once to a template database; each test gets its own database
cloned from it (about 40 ms), so tests never see each other's rows — through
``LocalPostgres.create_template`` / ``create_database`` / ``drop_database``, as the bench does.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from bevsession.local_postgres import LocalPostgres

# Fixture modules shared by many test files (the RPC transports; the real server as a process).
pytest_plugins = ["rpc_fixtures", "e2e_server"]

TEMPLATE_DB = "bevsession_template"


@pytest.fixture(scope="session")
def pg() -> Iterator[LocalPostgres]:
    """The throwaway cluster (started as the ``postgres`` OS user when running as root)."""
    cluster = LocalPostgres.throwaway_cluster()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
async def template_db(pg: LocalPostgres) -> str:
    """A database with the shim and every migration applied; the template of each test's db."""
    return await pg.create_template(TEMPLATE_DB)


@pytest.fixture
async def db_name(pg: LocalPostgres, template_db: str) -> AsyncIterator[str]:
    """A fresh migrated database for one test, dropped afterwards."""
    name = await pg.create_database(template_db)
    try:
        yield name
    finally:
        await pg.drop_database(name)


@pytest.fixture
def db_dsn(pg: LocalPostgres, db_name: str) -> str:
    """Superuser DSN of this test's database."""
    return pg.dsn(db_name)


@pytest.fixture
async def owner(db_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A superuser connection to this test's database: to move clocks back and hold locks,
    what no API call may do."""
    conn = await asyncpg.connect(db_dsn)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
def pg_env(pg: LocalPostgres, db_name: str) -> dict[str, str]:
    """libpq variables (PGHOST, PGPORT, PGUSER, PGDATABASE) for psql and pg_prove."""
    return {**os.environ, **pg.env(db_name)}
