"""Shared fixtures: one real, throwaway PostgreSQL per test run; a fresh database per test.

The cluster is started once (about half a second) in a temporary folder and removed at the
end. Migrations are applied once to a template database; each test gets its own database
cloned from it (about 40 ms), so tests never see each other's rows.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from bevsession.local_postgres import LocalPostgres
from bevsession.migrations import migrate

# Fixture modules shared by many test files (the RPC transports; the real server as a process).
pytest_plugins = ["rpc_fixtures", "e2e_server"]

TEMPLATE_DB = "bevsession_template"
_counter = itertools.count(1)


@pytest.fixture(scope="session")
def pg() -> Iterator[LocalPostgres]:
    """The throwaway cluster (started as the ``postgres`` OS user when running as root)."""
    cluster = LocalPostgres.throwaway_cluster()
    try:
        yield cluster
    finally:
        cluster.destroy()


async def create_template(pg: LocalPostgres, name: str = TEMPLATE_DB) -> str:
    """Create database *name* with the shim and every migration applied (a template)."""
    admin = await asyncpg.connect(pg.dsn())
    try:
        await admin.execute(f'create database "{name}"')
    finally:
        await admin.close()
    await migrate(pg.dsn(name))
    return name


@pytest.fixture(scope="session")
async def template_db(pg: LocalPostgres) -> str:
    """A database with the shim and every migration applied; the template of each test's db."""
    return await create_template(pg)


async def create_database(pg: LocalPostgres, template: str | None = TEMPLATE_DB) -> str:
    """A fresh database: a clone of the migrated template, or empty with ``template=None``."""
    name = f"t{os.getpid()}_{next(_counter)}"
    admin = await asyncpg.connect(pg.dsn())
    try:
        clause = f' template "{template}"' if template else ""
        await admin.execute(f'create database "{name}"{clause}')
    finally:
        await admin.close()
    return name


async def drop_database(pg: LocalPostgres, name: str) -> None:
    admin = await asyncpg.connect(pg.dsn())
    try:
        await admin.execute(f'drop database if exists "{name}" with (force)')
    finally:
        await admin.close()


@pytest.fixture
async def db_name(pg: LocalPostgres, template_db: str) -> AsyncIterator[str]:
    """A fresh migrated database for one test, dropped afterwards."""
    name = await create_database(pg, template_db)
    try:
        yield name
    finally:
        await drop_database(pg, name)


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
