"""The zero-configuration default: a local PostgreSQL in a data folder under the working dir.

``bevsession serve`` with no ``DATABASE_URL`` and no Supabase project starts (or reuses) the
cluster in ``./.bevsession/postgres``, applies the shim and migrations, and serves through the
postgres transport as the least-privileged ``authenticator`` login. Development only:
production refuses to start without a configured database. Every connection gives a password
(scram-sha-256; a trusted loopback would let any local user in as superuser): one for the
superuser and one for ``authenticator``, generated once and saved beside the data (mode 0600).
A cluster made before that (with trust) is switched over on its next start. A development
session password is saved the same way, with a warning: it is refused in production. The same
``LocalPostgres`` mechanism runs the test suite's throwaway clusters (trust, loopback only).
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from bevsession.local_postgres import SERVER_OS_USER, SUPERUSER, LocalPostgres

log = logging.getLogger(__name__)

STATE_DIR = ".bevsession"
PASSWORD_FILE = "session-password"  # noqa: S105 (a file name)
SUPERUSER_PASSWORD_FILE = "postgres-superuser-password"  # noqa: S105 (a file name)
APP_PASSWORD_FILE = "postgres-app-password"  # noqa: S105 (a file name)
APP_LOGIN = "authenticator"
_SET_PASSWORD = "select format('alter role %I password %L', $1::text, $2::text)"  # noqa: S105


def _reachable_by_server_user(folder: Path) -> bool:
    """As root the server runs as ``postgres``, which must be able to enter every parent."""
    if os.geteuid() != 0:
        return True
    probe = next((p for p in [folder, *folder.parents] if p.exists()), Path("/"))
    result = subprocess.run(
        ["runuser", "-u", SERVER_OS_USER, "--", "test", "-x", str(probe)], check=False
    )
    return result.returncode == 0


def data_folder(workdir: Path) -> Path:
    """``<workdir>/.bevsession/postgres``; as root under a closed home, a folder in the temp dir.

    Root's home is usually 0700, which the ``postgres`` OS user cannot enter; widening its
    permissions silently (as some embedded-PostgreSQL wheels do) is worse than a visible move.
    """
    wanted = workdir / STATE_DIR / "postgres"
    if _reachable_by_server_user(wanted.parent):
        return wanted
    digest = hashlib.sha256(str(workdir).encode()).hexdigest()[:12]
    fallback = Path(tempfile.gettempdir()) / f"bevsession-{digest}" / "postgres"
    log.warning(
        "the 'postgres' OS user cannot enter %s; keeping the embedded database in %s",
        wanted,
        fallback,
    )
    return fallback


@dataclass
class EmbeddedDatabase:
    """A persistent local cluster; started here unless another process already runs it."""

    cluster: LocalPostgres
    started_here: bool
    app_password: str = field(default="", repr=False)

    def app_dsn(self) -> str:
        return self.cluster.dsn("postgres", user=APP_LOGIN, password=self.app_password)

    async def require_passwords(self) -> None:
        """Give the superuser and ``authenticator`` their saved passwords, then make every
        connection give one (after the migrations: they create ``authenticator``)."""
        conn = await asyncpg.connect(self.admin_dsn())
        try:
            for role, password in (
                (SUPERUSER, self.cluster.superuser_password), (APP_LOGIN, self.app_password),
            ):  # fmt: skip
                sql = await conn.fetchval(_SET_PASSWORD, role, password)
                await conn.execute(sql)
        finally:
            await conn.close()
        if self.started_here and self.cluster.require_passwords():
            self.cluster.reload()
            log.info("the embedded PostgreSQL now asks every connection for a password")

    def admin_dsn(self) -> str:
        return self.cluster.dsn("postgres")

    def stop(self) -> None:
        if self.started_here:
            self.cluster.stop()


def _running_port(cluster: LocalPostgres) -> int | None:
    """The port of a server already running on this data folder (postmaster.pid line 4)."""
    pid_file = cluster.data_dir / "postmaster.pid"
    if not pid_file.exists() or not cluster.running:
        return None
    lines = pid_file.read_text(encoding="utf-8").splitlines()
    return int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None


def start_embedded(workdir: Path) -> EmbeddedDatabase:
    """Start (or join) the embedded cluster for *workdir* (development only)."""
    folder = data_folder(workdir)
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.parent.chmod(0o755)
    superuser_password = saved_secret(workdir / STATE_DIR / SUPERUSER_PASSWORD_FILE)
    app_password = saved_secret(workdir / STATE_DIR / APP_PASSWORD_FILE)
    cluster = LocalPostgres(base_dir=folder, throwaway=False, superuser_password=superuser_password)
    if (port := _running_port(cluster)) is not None:
        cluster.port = port
        log.info("joining the embedded PostgreSQL already running on port %d", port)
        return EmbeddedDatabase(cluster, started_here=False, app_password=app_password)
    fresh = not cluster.initialised
    cluster.start()
    log.info(
        "%s embedded PostgreSQL in %s on 127.0.0.1:%d",
        "created" if fresh else "started",
        folder,
        cluster.port,
    )
    return EmbeddedDatabase(cluster, started_here=True, app_password=app_password)


def saved_secret(path: Path) -> str:
    """A secret kept in *path* (mode 0600), generated on first use."""
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secret + "\n")
    return secret


def development_password(workdir: Path) -> str:
    """The saved development password, generated (and warned about) on first use."""
    path = workdir / STATE_DIR / PASSWORD_FILE
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(password + "\n")
    log.warning(
        "no SESSION_PASSWORD set: generated a development password in %s "
        "(fine on a laptop; production refuses it)",
        path,
    )
    return password
