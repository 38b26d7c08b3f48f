"""The ``bevsession`` command: ``serve``, ``migrate``, ``gen-password``.

``serve`` with nothing configured starts the embedded default (a local PostgreSQL under the
working directory, migrated, with a saved development password). With several workers, each is
a process of its own listening on the same port (``SO_REUSEPORT``): the edge worker is stateless,
so they share nothing but the database.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import secrets
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from bevsession.local_postgres import LocalPostgresError
from bevsession.migrations import migrate

from .config import ConfigError, load_settings

log = logging.getLogger("bevsession")

SHUTDOWN_GRACE_SECONDS = 10.0


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


# --- gen-password ---------------------------------------------------------------------------
def cmd_gen_password(_: argparse.Namespace) -> int:
    """Print a fresh 64-character password for SESSION_PASSWORD."""
    print(secrets.token_urlsafe(48))
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


# --- serve ----------------------------------------------------------------------------------
def _run_worker(host: str, port: int, reuse_port: bool) -> None:
    """One worker process: build the app from the environment and serve until signalled."""
    from aiohttp import web

    from .app import create_app

    _configure_logging(os.environ.get("BEVSESSION_LOG_LEVEL", "info"))
    settings = load_settings()
    web.run_app(
        create_app(settings),
        host=host,
        port=port,
        reuse_port=reuse_port,
        shutdown_timeout=SHUTDOWN_GRACE_SECONDS,
        print=None,
        access_log=None,
    )


def _prepare_environment(workdir: Path) -> object | None:
    """Fill in the embedded default where nothing is configured; returns the embedded db."""
    from .embedded import development_password, start_embedded

    embedded = None
    if not os.environ.get("DATABASE_URL") and not os.environ.get("SUPABASE_URL"):
        embedded = start_embedded(workdir)
        asyncio.run(migrate(embedded.admin_dsn()))
        os.environ["DATABASE_URL"] = embedded.app_dsn()
        os.environ.setdefault("BEVSESSION_TRANSPORT", "postgres")
    if not os.environ.get("SESSION_PASSWORD") and not os.environ.get("SESSION_PASSWORDS"):
        os.environ["SESSION_PASSWORD"] = development_password(workdir)
        os.environ["BEVSESSION_PASSWORD_GENERATED"] = "1"  # noqa: S105 (a flag, not a secret)
    return embedded


def cmd_serve(args: argparse.Namespace) -> int:
    workdir = Path.cwd()
    embedded = None
    try:
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

    gen = sub.add_parser("gen-password", help="print a new SESSION_PASSWORD")
    gen.set_defaults(func=cmd_gen_password)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ["BEVSESSION_LOG_LEVEL"] = args.log_level
    _configure_logging(args.log_level)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
