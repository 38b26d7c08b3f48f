"""The ``bevsession`` command: ``serve``, ``migrate``, ``import-seed``, ``purge``, ``gen-password``,
``gen-signing-key``.

``serve`` with nothing configured starts the embedded default (a local PostgreSQL under the
working directory, migrated, with a saved development password). With several workers, each is
a process of its own listening on the same port (``SO_REUSEPORT``): the edge worker is stateless,
so they share nothing but the database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import os
import secrets
import signal
import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from types import FrameType

from bevsession.errors import SessionError
from bevsession.limits import MAX_SEED_BATCH
from bevsession.local_postgres import LocalPostgresError
from bevsession.migrations import migrate
from bevsession.seed_import import (
    DEFAULT_BATCH,
    ImportReport,
    SeedImportError,
    TableReport,
    import_seed,
)
from bevsession.transports.base import Transport

from .config import ConfigError, load_settings
from .logs import configure_logging

log = logging.getLogger("bevsession")

SHUTDOWN_GRACE_SECONDS = 10.0


def _configure_logging(level: str) -> None:
    """Logging for every command: secrets masked in every line (see :mod:`.logs`)."""
    configure_logging(level)


# --- gen-password ---------------------------------------------------------------------------
def cmd_gen_password(_: argparse.Namespace) -> int:
    """Print a fresh 64-character password for SESSION_PASSWORD."""
    print(secrets.token_urlsafe(48))
    return 0


# --- gen-signing-key ------------------------------------------------------------------------
def cmd_gen_signing_key(args: argparse.Namespace) -> int:
    """Print a new private JWT signing key as a JWK, as ``supabase gen signing-key`` does: the
    key to import into the Supabase project and to give as SUPABASE_JWT_SIGNING_KEY."""
    from bevsession.supabase_keys import SigningKey

    key = SigningKey.generate(args.algorithm, args.kid)
    if args.format == "pem":
        print(key.private_pem(), end="")
    else:
        print(json.dumps(key.private_jwk()))
    print(
        f"A new {key.algorithm} private key, kid {key.key_id}. Import it into your Supabase "
        "project as a JWT signing key (the private part cannot be read back from Supabase: keep "
        "this copy in your secret store), then set SUPABASE_JWT_SIGNING_KEY to it"
        + (f" and SUPABASE_JWT_SIGNING_KEY_ID={key.key_id}" if args.format == "pem" else "")
        + ". Never commit it.",
        file=sys.stderr,
    )
    return 0


# --- migrate --------------------------------------------------------------------------------
def cmd_migrate(args: argparse.Namespace) -> int:
    """Apply the shim (plain PostgreSQL only) and pending migrations to DATABASE_URL."""
    dsn = args.database_url or os.environ.get("DATABASE_URL")
    if not dsn:
        print(
            "bevsession migrate: set DATABASE_URL (an owner/superuser connection)", file=sys.stderr
        )
        return 2
    applied = asyncio.run(migrate(dsn))
    print(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""))
    return 0


# --- import-seed ----------------------------------------------------------------------------
PROGRESS_EVERY_SECONDS = 2.0


class _ProgressLine:
    """Progress on stderr: each table once it is done, and every few seconds while it runs."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.last = 0.0

    def __call__(self, name: str, table: TableReport, done: bool) -> None:
        now = time.monotonic()
        if not done and now - self.last < PROGRESS_EVERY_SECONDS:
            return
        self.last = now
        skipped = sum(table.skipped.values())
        print(
            f"import-seed: {name}: {table.read} read, {table.imported} imported, "
            f"{table.already_imported} already imported, {skipped} skipped"
            f"{' (done)' if done else ''} [{now - self.started:.1f} s]",
            file=sys.stderr,
            flush=True,
        )


def _import_verdict(report: ImportReport) -> str:
    """The one sentence that closes an import: what it did, or that there was nothing new."""
    if report.nothing_new:
        already = sum(t.already_imported for t in report.tables.values())
        return f"nothing new to import: {already} row(s) were imported before"
    what = ", ".join(f"{t.imported} {name}" for name, t in report.tables.items())
    skipped = sum(sum(t.skipped.values()) for t in report.tables.values())
    verb = "would import" if report.dry_run else "imported"
    tail = " (dry run: nothing was written)" if report.dry_run else ""
    return f"{verb} {what}; {skipped} row(s) skipped, by reason in the summary{tail}"


def cmd_import_seed(args: argparse.Namespace) -> int:
    """Copy a seed installation (its three tables) into this project's tables."""
    target = args.database_url or os.environ.get("DATABASE_URL")
    if not target:
        print(
            "bevsession import-seed: set DATABASE_URL (the owner connection used for `bevsession "
            "migrate`) or pass --database-url",
            file=sys.stderr,
        )
        return 2
    if args.batch > MAX_SEED_BATCH:
        print(f"bevsession import-seed: --batch must be at most {MAX_SEED_BATCH}", file=sys.stderr)
        return 2
    try:
        report = asyncio.run(
            import_seed(
                target,
                source_dsn=args.source,
                source_schema=args.source_schema,
                dry_run=args.dry_run,
                batch_size=args.batch,
                progress=_ProgressLine(),
            )
        )
    except SeedImportError as exc:
        print(f"bevsession import-seed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bevsession import-seed: interrupted; what was committed stays, run it again",
              file=sys.stderr)  # fmt: skip
        return 130
    print(json.dumps(report.as_dict()))
    print(f"import-seed: {_import_verdict(report)}", file=sys.stderr)
    return 0


# --- purge ----------------------------------------------------------------------------------
DEFAULT_SESSION_TTL = 30 * 86400
DEFAULT_IDLE_TIMEOUT = 86400


def cookie_lifetime() -> int:
    """The longest a cookie can still open, in seconds: a seal lives until whichever expiry
    ends first (SESSION_TTL from creation, SESSION_IDLE_TIMEOUT from the last activity)."""
    ttl = int(os.environ.get("SESSION_TTL") or DEFAULT_SESSION_TTL)
    idle = int(os.environ.get("SESSION_IDLE_TIMEOUT") or DEFAULT_IDLE_TIMEOUT)
    return min(ttl, idle) if idle > 0 else ttl


async def _admin_transport(database_url: str | None) -> Transport:
    """A transport for service_role calls: DATABASE_URL (asyncpg) or the Supabase service key."""
    from bevsession.supabase_keys import SupabaseKeys
    from bevsession.transports.postgres import PostgresTransport
    from bevsession.transports.supabase import SupabaseTransport

    if database_url:
        return await PostgresTransport.connect(database_url, min_size=0, max_size=1)
    url = os.environ.get("SUPABASE_URL")
    if not url:
        raise ValueError("set DATABASE_URL, or SUPABASE_URL and the project's keys")
    keys = SupabaseKeys.from_env(os.environ, visitor=False)  # a ValueError names what is missing
    return SupabaseTransport.from_keys(url, keys)


async def _purge(database_url: str | None, idle_days: int, batch: int) -> dict[str, object]:
    from bevsession.service import SessionService

    transport = await _admin_transport(database_url)
    kinds = ("idle_sessions", "revoked_sessions", "expired_sessions")
    totals = dict.fromkeys((*kinds, "personas", "messages", "signals"), 0)
    calls = 0
    try:
        service = SessionService(transport)
        while True:  # each call with more=true deleted a full batch, so this ends
            result = await service.purge_sessions(timedelta(days=idle_days), batch=batch)
            calls += 1
            for name, count in result.deleted.model_dump().items():
                totals[name] += count
            if not result.more:
                break
    finally:
        await transport.close()
    return {"older_than_days": idle_days, "calls": calls, "deleted": totals}


def cmd_purge(args: argparse.Namespace) -> int:
    """Retention: delete sessions that never did anything and revoked or forgotten sessions,
    inactive / revoked for more than ``--idle-days`` days, and sessions whose absolute lifetime
    ended more than that ago, whatever their activity, except those an operator marked
    ``kept_for_analytics`` (runs as service_role)."""
    try:
        lifetime = cookie_lifetime()
    except ValueError:
        print("bevsession purge: SESSION_TTL and SESSION_IDLE_TIMEOUT must be whole seconds",
              file=sys.stderr)  # fmt: skip
        return 2
    if args.idle_days * 86400 <= lifetime:
        # A cookie naming a deleted revoked session would open a fresh one under the old id.
        print(
            f"bevsession purge: --idle-days {args.idle_days} is not longer than the cookie "
            f"lifetime ({lifetime} s: SESSION_TTL / SESSION_IDLE_TIMEOUT, whichever ends "
            "first); a revoked session's cookie could still open",
            file=sys.stderr,
        )
        return 2
    try:
        summary = asyncio.run(
            _purge(args.database_url or os.environ.get("DATABASE_URL"), args.idle_days, args.batch)
        )
    except ValueError as exc:
        print(f"bevsession purge: {exc}", file=sys.stderr)
        return 2
    except SessionError as exc:  # messages are already free of secrets (bevsession.errors)
        print(f"bevsession purge: {type(exc).__name__}: {exc.message}", file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0


# --- serve ----------------------------------------------------------------------------------
def _run_worker(host: str, port: int, reuse_port: bool) -> None:
    """One worker process: build the app from the environment and serve until signalled."""
    from aiohttp import web

    from .app import create_app
    from .protocol import install as install_protocol_errors

    _configure_logging(os.environ.get("BEVSESSION_LOG_LEVEL", "info"))
    # aiohttp's own answers below the app (parser errors, a failure outside json_errors): JSON,
    # no request echo. Process-wide, so installed here, in the worker, not by the app factory.
    install_protocol_errors()
    settings = load_settings()
    try:
        web.run_app(
            create_app(settings),
            host=host,
            port=port,
            reuse_port=reuse_port,
            shutdown_timeout=SHUTDOWN_GRACE_SECONDS,
            print=None,
            access_log=None,
        )
    except ConfigError as exc:  # refused by a start-up check against the database
        print(f"bevsession serve: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


def _prepare_environment(workdir: Path) -> object | None:
    """Fill in the embedded default where nothing is configured; returns the embedded db."""
    from .embedded import development_password, start_embedded

    embedded = None
    if not os.environ.get("DATABASE_URL") and not os.environ.get("SUPABASE_URL"):
        embedded = start_embedded(workdir)
        asyncio.run(migrate(embedded.admin_dsn()))
        asyncio.run(embedded.require_passwords())
        os.environ["DATABASE_URL"] = embedded.app_dsn()
        os.environ.setdefault("BEVSESSION_TRANSPORT", "postgres")
    if not os.environ.get("SESSION_PASSWORD") and not os.environ.get("SESSION_PASSWORDS"):
        os.environ["SESSION_PASSWORD"] = development_password(workdir)
        os.environ["BEVSESSION_PASSWORD_GENERATED"] = "1"  # noqa: S105 (a flag, not a secret)
    return embedded


# Stand-ins for what the embedded default would fill in: the configuration is checked with
# them before anything is started or written.
_EMBEDDED_STAND_IN = "postgresql://authenticator@127.0.0.1:5432/postgres"
_GENERATED_STAND_IN = "a development password generated at start, 64 chars"


def check_configuration() -> None:
    """Refuse a bad configuration before anything is started or written (no embedded cluster,
    no password file): what the embedded default would fill in is checked as stand-ins."""
    production = os.environ.get("BEVSESSION_ENV", "").strip().lower() == "production"
    has_database = bool(os.environ.get("DATABASE_URL") or os.environ.get("SUPABASE_URL"))
    has_password = bool(os.environ.get("SESSION_PASSWORD") or os.environ.get("SESSION_PASSWORDS"))
    if production:
        problems = []
        if not has_database:
            problems.append(
                "production needs a configured database: set DATABASE_URL (or SUPABASE_URL and "
                "the project's keys); the embedded PostgreSQL is for development only"
            )
        if not has_password:
            problems.append(
                "production refuses a generated session password: set SESSION_PASSWORD(S) to a "
                "stable secret, or every restart logs everyone out"
            )
        if problems:
            raise ConfigError("configuration refused: " + "; ".join(problems))
    overrides: dict[str, object] = {}
    if not has_database:
        overrides |= {"database_url": _EMBEDDED_STAND_IN, "transport": "postgres"}
    if not has_password:
        overrides |= {"session_password": _GENERATED_STAND_IN, "password_generated": True}
    load_settings(**overrides)


def cmd_serve(args: argparse.Namespace) -> int:
    workdir = Path.cwd()
    embedded = None
    try:
        check_configuration()
        embedded = _prepare_environment(workdir)
        load_settings()  # refuse a bad configuration before any worker starts
    except (ConfigError, LocalPostgresError) as exc:
        if embedded is not None:
            embedded.stop()  # type: ignore[attr-defined]
        print(f"bevsession serve: {exc}", file=sys.stderr)
        return 2
    print(f"bevsession: serving on http://{args.host}:{args.port} with {args.workers} worker(s)",
          flush=True)  # fmt: skip
    try:
        if args.workers == 1:
            _run_worker(args.host, args.port, reuse_port=False)
        else:
            _serve_many(args.host, args.port, args.workers)
    finally:
        if embedded is not None:
            embedded.stop()  # type: ignore[attr-defined]
    return 0


def _serve_many(host: str, port: int, workers: int) -> None:
    """Start *workers* processes on one port and stop them all on SIGINT/SIGTERM."""
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_run_worker, args=(host, port, True), name=f"bevsession-worker-{i}")
        for i in range(workers)
    ]
    for proc in procs:
        proc.start()

    def forward(signum: int, _frame: FrameType | None) -> None:
        for proc in procs:
            if proc.is_alive() and proc.pid:
                os.kill(proc.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for proc in procs:
        proc.join()


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


# --- entry point ----------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bevsession", description=__doc__.splitlines()[0])
    parser.add_argument("--log-level", default=os.environ.get("BEVSESSION_LOG_LEVEL", "info"))
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the edge worker")
    serve.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    serve.add_argument("--workers", type=int, default=1, choices=range(1, 65), metavar="N")
    serve.set_defaults(func=cmd_serve)

    mig = sub.add_parser("migrate", help="apply the shim and pending migrations")
    mig.add_argument("--database-url", default=None, help="defaults to $DATABASE_URL")
    mig.set_defaults(func=cmd_migrate)

    purge = sub.add_parser(
        "purge",
        help="delete idle never-used sessions, old revoked ones and long-expired ones (retention)",
    )
    purge.add_argument(
        "--idle-days", type=_positive_int, default=30, metavar="N",
        help="delete what is idle or revoked for more than N days (default 30; must exceed "
        "the cookie lifetime: SESSION_TTL or SESSION_IDLE_TIMEOUT, whichever is shorter)",
    )  # fmt: skip
    purge.add_argument(
        "--batch", type=_positive_int, default=10_000, metavar="N",
        help="sessions of each kind per transaction (default 10000)",
    )  # fmt: skip
    purge.add_argument("--database-url", default=None, help="defaults to $DATABASE_URL")
    purge.set_defaults(func=cmd_purge)

    seed = sub.add_parser(
        "import-seed",
        help="copy a seed installation (user_personas, conversation_history, persona_signals)",
        description="Copy the seed's tables into this project's tables, batch by batch; safe to "
        "run again (nothing is imported twice). Summary as JSON on stdout, progress on stderr; "
        "the rules for rows that cannot be stored as they are: docs/from-the-seed.md.",
    )
    seed.add_argument("--database-url", default=None,
                      help="the project's database, as owner (default $DATABASE_URL)")  # fmt: skip
    seed.add_argument("--source", default=None, metavar="URL",
                      help="the seed's database (defaults to the project's database)")  # fmt: skip
    seed.add_argument("--source-schema", default="public", metavar="NAME",
                      help="the schema of the seed's tables (default public)")  # fmt: skip
    seed.add_argument("--dry-run", action="store_true",
                      help="report what would be imported; write nothing")  # fmt: skip
    seed.add_argument(
        "--batch", type=_positive_int, default=DEFAULT_BATCH, metavar="N",
        help=f"rows per transaction (default {DEFAULT_BATCH}; at most 50000)",
    )  # fmt: skip
    seed.set_defaults(func=cmd_import_seed)

    gen = sub.add_parser("gen-password", help="print a new SESSION_PASSWORD")
    gen.set_defaults(func=cmd_gen_password)

    signing = sub.add_parser(
        "gen-signing-key",
        help="print a new private JWT signing key (JWK) to import into Supabase",
    )
    signing.add_argument("--algorithm", choices=["ES256", "RS256"], default="ES256")
    signing.add_argument("--kid", default=None, help="key id (default: a random UUID)")
    signing.add_argument(
        "--format", choices=["jwk", "pem"], default="jwk",
        help="jwk (default, as `supabase gen signing-key`) or pem (then also give the kid)",
    )  # fmt: skip
    signing.set_defaults(func=cmd_gen_signing_key)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ["BEVSESSION_LOG_LEVEL"] = args.log_level
    _configure_logging(args.log_level)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
