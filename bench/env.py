"""What every section needs: the throwaway PostgreSQL, fresh databases, the outside tools.

One cluster per run (``LocalPostgres.throwaway_cluster()``), the shim and migrations applied once
to a template database, and a clone of it per section, so the sections never see each other's
rows — the same ``LocalPostgres`` calls the tests make their databases with. Tools that are not
Python packages (``wrk``, ``pgbench``, Node's iron-session) are found or installed here, with a
clear message when that is not possible. The supabase transport is measured only against a real
Supabase stack the environment names (:func:`live_supabase`).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from bevsession.local_postgres import LocalPostgres
from bevsession.supabase_keys import SupabaseKeys
from bevsession.transports.supabase import SupabaseTransport

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = "bench_template"
APP_LOGIN = "authenticator"
VISITOR_ROLE = "session_visitor"
# The chat-turn rate limit (bevsession.take_chat_turn, in begin_chat_turn) would refuse a
# benchmark's turns; a limit no run can reach keeps its bookkeeping in every turn without ever
# refusing one.
RATE_LIMIT = "999999/s"  # bevsession.chat_rate_policy (only service_role and the owner write it)


class MissingTool(RuntimeError):
    """Something the bench needs is not installed; the message says how to get it."""


# --- tools ----------------------------------------------------------------------------------
def require_aiohttp_session() -> None:
    if importlib.util.find_spec("aiohttp_session") is None:
        raise MissingTool(
            "aiohttp-session is missing (the Fernet cookie baseline). Install the bench extra:\n"
            "    .venv/bin/pip install -e '.[dev,bench]'"
        )


def require_langchain_postgres() -> None:
    missing = [m for m in ("langchain_postgres", "psycopg", "psycopg_pool")
               if importlib.util.find_spec(m) is None]  # fmt: skip
    if missing:
        raise MissingTool(
            f"{', '.join(missing)} missing (the chat-history reference of the database section)."
            " Install the bench extra:\n    .venv/bin/pip install -e '.[dev,bench]'"
        )


def _apt_prefix() -> list[str] | None:
    if os.geteuid() == 0:
        return []
    if (
        shutil.which("sudo")
        and subprocess.run(["sudo", "-n", "true"], capture_output=True, check=False).returncode == 0
    ):
        return ["sudo", "-n"]
    return None


def ensure_wrk() -> str:
    """``wrk`` on PATH, installed with apt-get (as root or through ``sudo -n``) when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    prefix = _apt_prefix()
    if prefix is not None and shutil.which("apt-get"):
        print("bench: installing wrk (apt-get install -y wrk)", file=sys.stderr, flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        cmd = [*prefix, "apt-get", "install", "-y", "--no-install-recommends", "wrk"]
        if subprocess.run(cmd, env=env, capture_output=True, check=False).returncode != 0:
            subprocess.run([*prefix, "apt-get", "update"], env=env, capture_output=True,
                           check=False)  # fmt: skip
            subprocess.run(cmd, env=env, capture_output=True, check=False)
        found = shutil.which("wrk")
        if found:
            return found
    raise MissingTool(
        "wrk is missing (the HTTP load generator of the server section). Install it with:\n"
        "    sudo apt-get install -y wrk\n"
        "or skip that section: python -m bench --skip server"
    )


def pgbench_path(pg: LocalPostgres) -> str:
    """pgbench of the cluster's own PostgreSQL (Debian: postgresql-client-<major>)."""
    local = pg.bindir / "pgbench"
    if local.is_file():
        return str(local)
    found = shutil.which("pgbench")
    if found:
        return found
    raise MissingTool(
        "pgbench is missing (the database ceiling). It comes with PostgreSQL's client package:\n"
        "    sudo apt-get install -y postgresql-client"
    )


def require_node() -> None:
    if not (shutil.which("node") and shutil.which("npm")):
        raise MissingTool(
            "Node.js and npm are missing (the real iron-session of the sealing section). "
            "Install them with:\n    sudo apt-get install -y nodejs npm"
        )


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, utime + stime in clock ticks) of one process, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[11]) + int(fields[12])


def tree_cpu_seconds(roots: Sequence[int]) -> float:
    """CPU time (user + system) used so far by *roots* and all their descendants."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (st := _stat(int(entry.name))) is not None:
            stats[int(entry.name)] = st
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo, seen = 0, list(roots), set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in stats:
            continue
        seen.add(pid)
        total += stats[pid][1]
        todo.extend(children.get(pid, ()))
    return total / os.sysconf("SC_CLK_TCK")


def postmaster_pid(pg: LocalPostgres) -> int:
    return int((pg.data_dir / "postmaster.pid").read_text().split()[0])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def wait_http(port: int, path: str = "/", within: float = 30.0) -> None:
    """Wait until something answers HTTP on 127.0.0.1:*port*."""
    deadline = time.monotonic() + within
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    while True:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            await writer.drain()
            line = await reader.readline()
            writer.close()
            if line.startswith(b"HTTP/1.1 "):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing answers on port {port} after {within:g} s")
        await asyncio.sleep(0.05)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM this one process (it stops its own workers), then SIGKILL if it hangs."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# --- the database ---------------------------------------------------------------------------
def visitor_id(n: int) -> uuid.UUID:
    """Visitor *n*'s session id: the pattern sql/bench/chat_turn.sql builds in SQL."""
    return uuid.UUID(f"00000000-0000-4000-8000-{n:012d}")


@dataclass
class Database:
    """One clone of the migrated template."""

    pg: LocalPostgres
    name: str

    @property
    def admin_dsn(self) -> str:
        return self.pg.dsn(self.name)

    @property
    def app_dsn(self) -> str:
        """The login the edge worker uses in production (it switches to the visitor role)."""
        return self.pg.dsn(self.name, user=APP_LOGIN)

    async def execute(self, sql: str, *args: object) -> str:
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            return str(await conn.execute(sql, *args))
        finally:
            await conn.close()

    async def create_visitors(self, first: int, count: int) -> None:
        """Sessions (and personas) for visitors first..first+count-1, as get_session makes them."""
        ids = [visitor_id(n) for n in range(first, first + count)]
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            async with conn.transaction():
                await conn.execute(
                    "insert into bevsession.sessions (id) select unnest($1::uuid[])"
                    " on conflict do nothing", ids)  # fmt: skip
                await conn.execute(
                    "insert into bevsession.user_personas (session_id) select unnest($1::uuid[])"
                    " on conflict do nothing", ids)  # fmt: skip
        finally:
            await conn.close()

    async def visitor_options(self) -> str:
        """``PGOPTIONS`` for a pgbench login as authenticator that acts as the postgres
        transport's visitor connection: the role, then the role's own ``ALTER ROLE … SET``s."""
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            rows = await conn.fetch(
                """select split_part(s, '=', 1) as k, substr(s, strpos(s, '=') + 1) as v
                   from pg_catalog.pg_db_role_setting d, unnest(d.setconfig) s
                   where d.setrole = (select oid from pg_catalog.pg_roles where rolname = $1)
                     and d.setdatabase in (0, (select oid from pg_catalog.pg_database
                                               where datname = current_database()))""",
                VISITOR_ROLE,
            )
        finally:
            await conn.close()
        options = [f"-c role={VISITOR_ROLE}"]
        options += [f"-c {r['k']}=" + str(r["v"]).replace(" ", "\\ ") for r in rows]
        return " ".join(options)


async def database(pg: LocalPostgres, label: str) -> Database:
    """A fresh clone of the run's template; the chat rate limit out of the way."""
    db = Database(pg, await pg.create_database(TEMPLATE, prefix=f"bench_{label}_"))
    await db.execute("update bevsession.chat_rate_policy set chat_rate_limit = $1", RATE_LIMIT)
    return db


@contextlib.asynccontextmanager
async def cluster_context() -> AsyncIterator[LocalPostgres]:
    """The run's throwaway PostgreSQL with its migrated template database; removed at the end."""
    pg = LocalPostgres.throwaway_cluster(settings={"max_wal_size": "4GB"})
    try:
        await pg.create_template(TEMPLATE)
        yield pg
    finally:
        pg.destroy()


# --- a real Supabase stack (opt-in) ---------------------------------------------------------------
LIVE_SUPABASE_MISSING = (
    "not measured: set SUPABASE_URL and the project's keys (SUPABASE_PUBLISHABLE_KEY, "
    "SUPABASE_SECRET_KEY, SUPABASE_JWT_SIGNING_KEY; or the legacy SUPABASE_ANON_KEY, "
    "SUPABASE_SERVICE_ROLE_KEY, SUPABASE_JWT_SECRET) of a project with the migrations applied "
    "to measure the supabase transport against a real Supabase stack"
)


def live_supabase(**options: Any) -> SupabaseTransport | None:
    """The supabase transport on the stack the environment names, or None when it names none:
    the bench measures supabase-py against real PostgREST only, never against a stand-in."""
    url = os.environ.get("SUPABASE_URL")
    if not url:
        return None
    return SupabaseTransport.from_keys(url, SupabaseKeys.from_env(os.environ), **options)


def run_json_tool(cmd: Sequence[str], *, env: dict[str, str] | None = None,
                  timeout: float = 120) -> dict[str, object]:  # fmt: skip
    """Run a tool whose last stdout line is JSON (wrk with our Lua ``done``)."""
    proc = subprocess.run(list(cmd), capture_output=True, text=True, env=env, timeout=timeout,
                          check=False)  # fmt: skip
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}"
        )
    data: dict[str, object] = json.loads(lines[-1])
    return data
