"""Copy a running seed installation into this project's tables (``bevsession import-seed``).

The seed (Next.js + iron-session + supabase-js) keeps ``user_personas``, ``conversation_history``
and ``persona_signals`` in schema ``public``. This module reads them — from the target database
itself or from another one, any schema — and hands them to the SQL import functions of
``supabase/migrations/20261201001100_from_the_seed.sql`` one batch at a time, in the order the
rows depend on each other: sessions (one per distinct seed ``session_id``, from all three
tables), personas, messages (in ``created_at`` order, so the history's order is the seed's),
signals.

Why the rules live in SQL and not here: the same rules validate a seed cookie on first contact
(``public.adopt_session``), and a set-based ``INSERT … SELECT`` per batch applies them without a
Python object per row. Python only moves text: each source row is read as ``to_jsonb(row)::text``
through a server-side cursor (a consistent snapshot, ``prefetch`` rows at a time) and sent as one
JSON array per batch, so a million messages import in bounded memory, and a column the seed does
not have is simply an absent key (its default applies).

Each batch is one transaction on the target: an interrupted import keeps what it committed and a
second run skips it (rows keep the seed's ids; sessions are recorded in
``bevsession.seed_imports``).
``dry_run`` runs everything in one transaction and rolls it back: the report is exactly what a
real run would do. The writes run as ``service_role`` (``set role``): the connection must be
allowed to act as it (the migration owner, a superuser, or ``postgres`` on Supabase).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlsplit

import asyncpg

from .limits import MAX_SEED_BATCH

__all__ = [
    "DEFAULT_BATCH",
    "SEED_TABLES",
    "USUAL_COLUMNS",
    "ImportReport",
    "SeedImportError",
    "TableReport",
    "describe_dsn",
    "import_seed",
]

DEFAULT_BATCH: Final = 2000
SEED_TABLES: Final = ("user_personas", "conversation_history", "persona_signals")

_SCORES: Final = (
    "sales_focus_score", "marketing_focus_score", "operations_focus_score",
    "compliance_focus_score", "supplier_score", "distributor_score", "craft_score",
    "mid_sized_score", "large_score",
)  # fmt: skip
USUAL_COLUMNS: Final[Mapping[str, tuple[str, ...]]] = {
    # the seed document's schema
    "user_personas": (
        "id", "user_id", "session_id", *_SCORES, "pain_points_detected", "pain_points_confidence",
        "overall_confidence", "total_interactions", "questions_asked", "last_updated", "created_at",
    ),
    "conversation_history": (
        "id", "session_id", "user_id", "message_role", "message_content", "persona_snapshot",
        "pain_points_inferred", "ui_specification", "generation_mode", "estimated_read_time",
        "created_at",
    ),
    # not defined by the seed document: what recordPersonaSignal() writes
    "persona_signals": (
        "id", "session_id", "user_id", "signal_type", "signal_text", "signal_strength",
        "pain_points_inferred", "score_updates", "confidence_before", "confidence_after",
        "created_at",
    ),
}  # fmt: skip

# The import step of each table: (report name, SQL function).
_STEPS: Final = (
    ("sessions", "import_seed_sessions"),
    ("personas", "import_seed_personas"),
    ("messages", "import_seed_messages"),
    ("signals", "import_seed_signals"),
)


class SeedImportError(Exception):
    """The import cannot start or go on; the message says what to do (never a secret)."""


@dataclass
class TableReport:
    """What happened to the rows of one kind: ``read = imported + already_imported + skipped``."""

    read: int = 0
    imported: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    adjusted: Counter[str] = field(default_factory=Counter)

    @property
    def already_imported(self) -> int:
        """Rows a previous run (or another spelling of the same id) already brought in."""
        return self.read - self.imported - sum(self.skipped.values())

    def add(self, answer: Mapping[str, Any]) -> None:
        """Fold in one import function's answer ``{read, imported, skipped, adjusted}``."""
        self.read += int(answer["read"])
        self.imported += int(answer["imported"])
        self.skipped.update({k: int(v) for k, v in answer["skipped"].items()})
        self.adjusted.update({k: int(v) for k, v in answer["adjusted"].items()})

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "imported": self.imported,
            "already_imported": self.already_imported,
            "skipped": dict(sorted(self.skipped.items())),
            "adjusted": dict(sorted(self.adjusted.items())),
        }


@dataclass
class ImportReport:
    """The summary ``bevsession import-seed`` prints (as JSON)."""

    source: str
    schema: str
    dry_run: bool
    tables: dict[str, TableReport] = field(
        default_factory=lambda: {name: TableReport() for name, _ in _STEPS}
    )
    missing_tables: list[str] = field(default_factory=list)
    missing_columns: dict[str, list[str]] = field(default_factory=dict)
    expired_on_arrival: int = 0
    seconds: float = 0.0

    @property
    def imported(self) -> int:
        return sum(t.imported for t in self.tables.values())

    @property
    def nothing_new(self) -> bool:
        """Every row read had been imported before (or was skipped): a repeated run."""
        return self.imported == 0 and any(t.read for t in self.tables.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "schema": self.schema,
            "dry_run": self.dry_run,
            **{name: t.as_dict() for name, t in self.tables.items()},
            "expired_on_arrival": self.expired_on_arrival,
            "missing_tables": self.missing_tables,
            "missing_columns": self.missing_columns,
            "seconds": round(self.seconds, 3),
        }


Progress = Callable[[str, TableReport, bool], None]
"""Called after each batch with the table's name, its report so far and whether it is done."""


def describe_dsn(dsn: str) -> str:
    """``host:port/database`` of a PostgreSQL URL, never its user or password."""
    try:
        parts = urlsplit(dsn)
        host = parts.hostname or "localhost"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(unparsable URL)"
    return f"{host}{port}{parts.path or '/'}"


def _ident(*names: str) -> str:
    """Quote a (schema-)qualified name as PostgreSQL does (``quote_ident``)."""
    return ".".join('"' + name.replace('"', '""') + '"' for name in names)


async def _connect(dsn: str, what: str) -> asyncpg.Connection:
    try:
        conn: asyncpg.Connection = await asyncpg.connect(dsn, timeout=15)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        raise SeedImportError(
            f"cannot connect to {what} ({describe_dsn(dsn)}): {type(exc).__name__}: "
            f"{_first_line(exc)}"
        ) from None
    except ValueError as exc:  # a malformed URL
        raise SeedImportError(f"{what} is not a PostgreSQL URL: {_first_line(exc)}") from None
    return conn


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [""])[0][:300]


async def _source_columns(conn: asyncpg.Connection, schema: str) -> dict[str, set[str]]:
    """The seed tables found in *schema* and their columns (catalog, not privileges)."""
    rows = await conn.fetch(
        """
        select c.relname as table_name, a.attname as column_name
        from pg_catalog.pg_class as c
        join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
        join pg_catalog.pg_attribute as a
          on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
        where n.nspname = $1 and c.relname = any($2::text[])
          and c.relkind in ('r', 'p', 'v', 'm', 'f')
        """,
        schema,
        list(SEED_TABLES),
    )
    found: dict[str, set[str]] = {}
    for row in rows:
        found.setdefault(row["table_name"], set()).add(row["column_name"])
    return found


_ORDINAL: Final = "row_number() over (partition by to_jsonb(t)::text)"


def _row_query(schema: str, table: str, columns: set[str]) -> str:
    """Every row of a seed table as ``to_jsonb`` text, session by session, oldest first.

    Why by session: a session's rows arrive together (its messages get their ``seq`` in
    ``created_at`` order, equal persona snapshots are normalised once, a session row is counted
    once per batch), and the seed's index ``(session_id, created_at)`` serves the order.
    A table without an ``id`` column gets ``_ordinal`` (the row's number among identical rows),
    so that two equal rows stay two rows and a second import recognises both.
    """
    row = "to_jsonb(t)"
    if "id" not in columns:
        row += f" || jsonb_build_object('_ordinal', {_ORDINAL})"
    order = [f"t.{_ident(c)}" for c in ("session_id", "created_at", "id") if c in columns]
    order_by = f" order by {', '.join(order)}" if order else ""
    # identifiers quoted by _ident; nothing else comes from outside
    return f"select ({row})::text from {_ident(schema, table)} as t{order_by}"  # noqa: S608


def _sessions_query(schema: str, found: Mapping[str, set[str]]) -> str:
    """One row per distinct seed session_id of the three tables: its first and last time."""
    parts = []
    for table in SEED_TABLES:
        columns = found.get(table)
        if columns is None:
            continue
        created = "t.created_at::timestamptz" if "created_at" in columns else "null::timestamptz"
        last = created
        if table == "user_personas" and "last_updated" in columns:
            last = f"greatest({created}, t.last_updated::timestamptz)"
        columns_sql = f"t.session_id::text as session_id, {created} as first_at, {last} as last_at"
        parts.append(f"select {columns_sql} from {_ident(schema, table)} as t")  # noqa: S608
    union = " union all ".join(parts)
    row = (
        "jsonb_build_object('session_id', u.session_id,"
        " 'first_at', min(u.first_at), 'last_at', max(u.last_at))"
    )
    return f"select {row}::text from ({union}) as u group by u.session_id order by min(u.first_at)"  # noqa: S608


async def import_seed(
    target_dsn: str,
    *,
    source_dsn: str | None = None,
    source_schema: str = "public",
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH,
    progress: Progress | None = None,
) -> ImportReport:
    """Import the seed tables of *source_schema* (in *source_dsn*, default the target) into the
    project's tables of *target_dsn*. Returns the report; raises :class:`SeedImportError` when it
    cannot start or a database error stops it (what was committed stays, and a re-run resumes).
    """
    if not 1 <= batch_size <= MAX_SEED_BATCH:
        raise SeedImportError(f"--batch must be between 1 and {MAX_SEED_BATCH}")
    started = time.monotonic()
    report = ImportReport(describe_dsn(source_dsn or target_dsn), source_schema, dry_run)
    target = await _connect(target_dsn, "the target database (DATABASE_URL)")
    try:
        source = await _connect(source_dsn or target_dsn, "the source database")
        try:
            await _prepare_target(target)
            found = await _inspect_source(source, source_schema, report)
            await _run(target, source, found, report, dry_run, batch_size, progress)
        finally:
            await source.close()
    except asyncpg.PostgresError as exc:
        raise SeedImportError(_explain(exc)) from None
    except (OSError, asyncpg.InterfaceError) as exc:
        raise SeedImportError(
            f"lost the database connection: {type(exc).__name__}: {_first_line(exc)}; what was "
            "committed stays, run the import again to go on"
        ) from None
    finally:
        await target.close()
    report.seconds = time.monotonic() - started
    return report


def _explain(exc: asyncpg.PostgresError) -> str:
    """A database error as one sentence with what to do about it."""
    text = _first_line(exc)
    if isinstance(exc, asyncpg.InsufficientPrivilegeError):
        return (
            f"permission denied ({text}): read the seed with a login that may select its tables "
            "and write with one that may act as service_role (the owner used for `bevsession "
            "migrate`)"
        )
    return (
        f"the import stopped: {type(exc).__name__}: {text}; what was committed stays, run it "
        "again to go on"
    )


async def _prepare_target(target: asyncpg.Connection) -> None:
    migrated = await target.fetchval(
        "select to_regprocedure('public.import_seed_messages(jsonb, timestamptz)') is not null"
    )
    if not migrated:
        raise SeedImportError(
            "the target database has not got this project's migrations (public.import_seed_*): "
            "run `bevsession migrate` first"
        )
    try:
        await target.execute("set role service_role")
    except asyncpg.PostgresError:
        raise SeedImportError(
            "the DATABASE_URL login cannot act as service_role: use the owner connection of "
            "`bevsession migrate` (a superuser, or postgres on Supabase)"
        ) from None


async def _inspect_source(
    source: asyncpg.Connection, schema: str, report: ImportReport
) -> dict[str, set[str]]:
    has_schema = await source.fetchval(
        "select exists (select 1 from pg_catalog.pg_namespace where nspname = $1)", schema
    )
    if not has_schema:
        raise SeedImportError(f"the source database has no schema {schema!r} (--source-schema)")
    found = await _source_columns(source, schema)
    report.missing_tables = [t for t in SEED_TABLES if t not in found]
    if not found:
        raise SeedImportError(
            f"schema {schema!r} of the source has none of the seed tables "
            f"({', '.join(SEED_TABLES)})"
        )
    for table, columns in found.items():
        if "session_id" not in columns:
            raise SeedImportError(
                f"{schema}.{table} has no session_id column: it is not a seed table"
            )
        missing = [c for c in USUAL_COLUMNS[table] if c not in columns]
        if missing:
            report.missing_columns[table] = missing
    return found


async def _run(
    target: asyncpg.Connection,
    source: asyncpg.Connection,
    found: Mapping[str, set[str]],
    report: ImportReport,
    dry_run: bool,
    batch_size: int,
    progress: Progress | None,
) -> None:
    rollback = target.transaction() if dry_run else None
    if rollback is not None:
        await rollback.start()
    try:
        started_at: datetime = await target.fetchval("select pg_catalog.now()")
        snapshot = source.transaction(isolation="repeatable_read", readonly=True)
        await snapshot.start()
        try:
            queries: dict[str, str | None] = {
                "sessions": _sessions_query(report.schema, found),
                "personas": _table_query(report.schema, "user_personas", found),
                "messages": _table_query(report.schema, "conversation_history", found),
                "signals": _table_query(report.schema, "persona_signals", found),
            }
            for name, function in _STEPS:
                query = queries[name]
                if query is not None:
                    step = _Step(name, function, report.tables[name], progress)
                    await _pump(target, source, query, step, started_at, batch_size)
        finally:
            await snapshot.rollback()
        summary = json.loads(
            await target.fetchval("select public.import_seed_summary($1)", started_at)
        )
        report.expired_on_arrival = int(summary["expired_on_arrival"])
    finally:
        if rollback is not None:
            await rollback.rollback()


def _table_query(schema: str, table: str, found: Mapping[str, set[str]]) -> str | None:
    columns = found.get(table)
    return None if columns is None else _row_query(schema, table, columns)


@dataclass(frozen=True)
class _Step:
    """One table's import: its report name, its SQL function, its report, who to tell."""

    name: str
    function: str
    table: TableReport
    progress: Progress | None

    def tell(self, done: bool) -> None:
        if self.progress is not None:
            self.progress(self.name, self.table, done)


async def _pump(
    target: asyncpg.Connection,
    source: asyncpg.Connection,
    query: str,
    step: _Step,
    started_at: datetime,
    batch_size: int,
) -> None:
    """Stream *query*'s rows from the source and import them *batch_size* at a time."""
    call = f"select public.{step.function}($1::jsonb, $2)"
    batch: list[str] = []

    async def flush() -> None:
        answer = json.loads(await target.fetchval(call, _array(batch), started_at))
        step.table.add(answer)
        batch.clear()
        step.tell(done=False)

    async for record in source.cursor(query, prefetch=batch_size):
        batch.append(record[0])
        if len(batch) >= batch_size:
            await flush()
    if batch:
        await flush()
    step.tell(done=True)


def _array(rows: Sequence[str]) -> str:
    """JSON texts as one JSON array text (no parse, no re-serialisation)."""
    return "[" + ",".join(rows) + "]"
