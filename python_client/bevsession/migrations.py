"""Apply the platform shim and the Supabase migrations, the way the Supabase CLI records them.

The shim (``sql/shim.sql``) is applied only when the database is not Supabase (no
``auth.users``): it gives a plain PostgreSQL the roles and ``auth`` functions our migrations
expect. Migrations are ``supabase/migrations/<timestamp>_<name>.sql``, applied in order, each in
its own transaction together with its row in ``supabase_migrations.schema_migrations`` — the
table ``supabase db push`` reads — so this command and the CLI agree about what is applied.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

MIGRATION_NAME = re.compile(r"^(?P<version>\d{14})_(?P<name>[A-Za-z0-9_\-]+)\.sql$")
# Any constant works; it only has to be the same for every migrator of this project.
ADVISORY_LOCK_KEY = 0x62657673  # "bevs"

HISTORY_DDL = """
create schema if not exists supabase_migrations;
create table if not exists supabase_migrations.schema_migrations (
    version text not null primary key,
    statements text[],
    name text
);
"""


def project_dir() -> Path:
    """The folder holding ``sql/`` and ``supabase/``: $BEVSESSION_PROJECT_DIR or the source tree."""
    if env := os.environ.get("BEVSESSION_PROJECT_DIR"):
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "supabase" / "migrations").is_dir() and (parent / "sql").is_dir():
            return parent
    raise FileNotFoundError(
        "cannot find the project's supabase/migrations folder; set BEVSESSION_PROJECT_DIR"
    )


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")


def shim_path(root: Path | None = None) -> Path:
    return (root or project_dir()) / "sql" / "shim.sql"


def list_migrations(root: Path | None = None) -> list[Migration]:
    """Every migration file in version order; a badly named file is an error, not ignored."""
    folder = (root or project_dir()) / "supabase" / "migrations"
    found: list[Migration] = []
    for path in sorted(folder.glob("*.sql")):
        match = MIGRATION_NAME.match(path.name)
        if not match:
            raise ValueError(
                f"migration file name must be <YYYYMMDDHHMMSS>_<name>.sql: {path.name}"
            )
        found.append(Migration(match["version"], match["name"], path))
    return found


async def is_supabase(conn: asyncpg.Connection) -> bool:
    """A Supabase database has GoTrue's ``auth.users``; our shim never creates it."""
    return bool(await conn.fetchval("select to_regclass('auth.users') is not null"))


async def migrate(dsn: str, *, root: Path | None = None) -> list[str]:
    """Apply shim (if needed) and pending migrations; return the versions applied now."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("select pg_advisory_lock($1)", ADVISORY_LOCK_KEY)
        try:
            return await _migrate_locked(conn, root)
        finally:
            await conn.execute("select pg_advisory_unlock($1)", ADVISORY_LOCK_KEY)
    finally:
        await conn.close()


async def _migrate_locked(conn: asyncpg.Connection, root: Path | None) -> list[str]:
    if not await is_supabase(conn):
        async with conn.transaction():
            await conn.execute(shim_path(root).read_text(encoding="utf-8"))
    await conn.execute(HISTORY_DDL)
    applied = {
        row["version"]
        for row in await conn.fetch("select version from supabase_migrations.schema_migrations")
    }
    done: list[str] = []
    for migration in list_migrations(root):
        if migration.version in applied:
            continue
        sql = migration.sql
        async with conn.transaction():
            await conn.execute(sql)
            await conn.execute(
                "insert into supabase_migrations.schema_migrations (version, statements, name)"
                " values ($1, $2, $3)",
                migration.version,
                [sql],
                migration.name,
            )
        done.append(migration.version)
    return done
