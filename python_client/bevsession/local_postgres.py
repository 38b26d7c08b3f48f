"""A real PostgreSQL that this process starts and stops itself.

One mechanism serves three users: the test suite and the benchmarks (a throwaway cluster in a
temporary folder, ``fsync`` off, with databases cloned from one migrated template) and
``bevsession serve`` with nothing configured (a persistent cluster in a data folder under the
working directory, reused on the next start). It uses the server binaries of
the machine (Debian's ``postgresql`` package, version 15 or newer). ``initdb`` and ``postgres``
refuse to run as root, so as root every server command runs as the ``postgres`` OS user
through ``runuser``; as a normal user they run directly.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import asyncpg

from .migrations import migrate

MIN_MAJOR = 15
SERVER_OS_USER = "postgres"
SUPERUSER = "postgres"
_database_numbers = itertools.count(1)


class LocalPostgresError(RuntimeError):
    """The local PostgreSQL could not be found, initialised, started or stopped."""


def _major_of(bindir: Path) -> int | None:
    """The major version of the server binaries in *bindir*, or None if they are unusable."""
    postgres = bindir / "postgres"
    if not (postgres.is_file() and (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file()):
        return None
    try:
        out = subprocess.run(
            [str(postgres), "--version"], capture_output=True, text=True, check=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(match.group(1)) if match else None


def find_bindir() -> Path:
    """Locate PostgreSQL ≥ 15 server binaries: $BEVSESSION_PG_BINDIR, Debian's layout, pg_config."""
    candidates: list[Path] = []
    if env := os.environ.get("BEVSESSION_PG_BINDIR"):
        candidates.append(Path(env))
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates.extend(debian)
    if pg_config := shutil.which("pg_config"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()
            candidates.append(Path(out))
    for bindir in candidates:
        major = _major_of(bindir)
        if major is not None and major >= MIN_MAJOR:
            return bindir
    raise LocalPostgresError(
        f"no PostgreSQL {MIN_MAJOR}+ server binaries found (looked in: "
        f"{', '.join(map(str, candidates)) or 'nothing'}); install Debian's 'postgresql' package "
        "or set BEVSESSION_PG_BINDIR"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


@dataclass
class LocalPostgres:
    """A PostgreSQL cluster under *base_dir* (``data/``, ``log``, and the unix socket).

    ``throwaway=True`` turns durability off (tests); a persistent cluster keeps it on.
    """

    base_dir: Path
    port: int = 0
    throwaway: bool = True
    bindir: Path = field(default_factory=find_bindir)
    settings: dict[str, str] = field(default_factory=dict)
    # None: trust on loopback and the socket (throwaway test clusters). A password: initdb
    # sets it for the superuser and every connection must give one (scram-sha-256).
    superuser_password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.base_dir = Path(self.base_dir).resolve()
        if not self.port:
            self.port = free_port()

    # --- paths and connection strings -------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base_dir

    @property
    def log_file(self) -> Path:
        return self.base_dir / "postgres.log"

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def dsn(
        self, dbname: str = "postgres", user: str = SUPERUSER, password: str | None = None
    ) -> str:
        """A libpq/asyncpg URL over loopback TCP (the superuser's carries its password)."""
        if password is None and user == SUPERUSER:
            password = self.superuser_password
        login = user if password is None else f"{user}:{quote(password, safe='')}"
        return f"postgresql://{login}@{self.host}:{self.port}/{dbname}"

    def env(self, dbname: str = "postgres", user: str = SUPERUSER) -> dict[str, str]:
        """libpq environment variables for psql and pg_prove (its -d URL parsing is buggy)."""
        env = {
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGUSER": user,
            "PGDATABASE": dbname,
        }
        if user == SUPERUSER and self.superuser_password is not None:
            env["PGPASSWORD"] = self.superuser_password
        return env

    # --- lifecycle ----------------------------------------------------------------------
    @property
    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").is_file()

    def _run(self, args: Sequence[str], *, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if _running_as_root():
            cmd = ["runuser", "-u", SERVER_OS_USER, "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            output = proc.stderr.strip() or proc.stdout.strip()
            raise LocalPostgresError(f"{args[0]} failed ({proc.returncode}): {output}")
        return proc

    def _prepare_dir(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if _running_as_root():
            shutil.chown(self.base_dir, user=SERVER_OS_USER, group=SERVER_OS_USER)
            probe = subprocess.run(
                ["runuser", "-u", SERVER_OS_USER, "--", "test", "-w", str(self.base_dir)],
                check=False,
            )
            if probe.returncode != 0:
                raise LocalPostgresError(
                    f"the '{SERVER_OS_USER}' OS user cannot reach {self.base_dir}: one of its "
                    "parent folders is closed to other users (e.g. a 0700 home); use a folder "
                    "under /tmp"
                )

    def init(self) -> None:
        """initdb, loopback and the unix socket only: trust, or scram-sha-256 with the
        superuser's password when the cluster has one."""
        self._prepare_dir()
        auth = ["--auth=trust"]
        pwfile = self.base_dir / ".initdb-password"
        if self.superuser_password is not None:
            fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(self.superuser_password + "\n")
            if _running_as_root():
                shutil.chown(pwfile, user=SERVER_OS_USER, group=SERVER_OS_USER)
            auth = ["--auth=scram-sha-256", f"--pwfile={pwfile}"]
        args = [
            "initdb", "-D", str(self.data_dir), "-U", SUPERUSER, *auth,
            "-E", "UTF8", "--locale=C.UTF-8",
        ]  # fmt: skip
        if self.throwaway:
            args.append("--no-sync")
        try:
            self._run(args, timeout=120)
        finally:
            pwfile.unlink(missing_ok=True)

    def require_passwords(self) -> bool:
        """Make every connection give a password (scram-sha-256), for a cluster initialised
        with trust before it had one; True when pg_hba.conf changed (reload to apply)."""
        hba = self.data_dir / "pg_hba.conf"
        wanted = (
            "# bevsession: every connection gives a password\n"
            "local all all scram-sha-256\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
            "host all all ::1/128 scram-sha-256\n"
        )
        if hba.read_text(encoding="utf-8") == wanted:
            return False
        hba.write_text(wanted, encoding="utf-8")
        return True

    def reload(self) -> None:
        self._run(["pg_ctl", "-D", str(self.data_dir), "reload"], timeout=30)

    def start(self) -> None:
        if not self.initialised:
            self.init()
        options = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "max_connections": "200",
            "shared_buffers": "128MB",
        }
        if self.throwaway:
            options |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        options |= self.settings
        opts = " ".join(f"-c {k}={v}" for k, v in options.items())
        self._run(
            ["pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", "60",
             "-o", opts, "start"],
            timeout=90,
        )  # fmt: skip

    def stop(self) -> None:
        if self.initialised and (self.data_dir / "postmaster.pid").exists():
            self._run(["pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop"], timeout=60)

    @property
    def running(self) -> bool:
        if not (self.data_dir / "postmaster.pid").exists():
            return False
        try:
            self._run(["pg_ctl", "-D", str(self.data_dir), "status"], timeout=10)
        except LocalPostgresError:
            return False
        return True

    def destroy(self) -> None:
        """Stop and delete the whole folder (throwaway clusters)."""
        with contextlib.suppress(LocalPostgresError):
            self.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)

    # --- convenience ----------------------------------------------------------------------
    @classmethod
    def throwaway_cluster(cls, **kwargs: object) -> LocalPostgres:
        """A started cluster in a fresh folder under the system temp dir (reachable as root)."""
        temp_root = os.environ.get("TMPDIR", "/tmp")  # noqa: S108 (mkdtemp makes it private)
        base = Path(tempfile.mkdtemp(prefix="bevsession-pg-", dir=temp_root))
        base.chmod(0o755)
        cluster = cls(base_dir=base, throwaway=True, **kwargs)  # type: ignore[arg-type]
        try:
            cluster.start()
        except BaseException:
            cluster.destroy()
            raise
        return cluster

    # --- throwaway databases: a migrated template, cloned per test or bench section ------------
    async def _admin(self, sql: str) -> None:
        conn = await asyncpg.connect(self.dsn())
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def create_template(self, name: str) -> str:
        """Database *name* with the shim and every migration applied, once per run: cloning it
        (:meth:`create_database`) takes about 40 ms where migrating takes seconds."""
        await self._admin(f'create database "{name}"')
        await migrate(self.dsn(name))
        return name

    async def create_database(self, template: str | None = None, *, prefix: str = "t") -> str:
        """A new database, named uniquely in this process: a clone of *template* (so it never
        sees another clone's rows), or empty (no shim, no migrations) without one."""
        name = f"{prefix}{os.getpid()}_{next(_database_numbers)}"
        clause = f' template "{template}"' if template else ""
        await self._admin(f'create database "{name}"{clause}')
        return name

    async def drop_database(self, name: str) -> None:
        """Drop *name* (if it exists), disconnecting whoever is still on it."""
        await self._admin(f'drop database if exists "{name}" with (force)')
