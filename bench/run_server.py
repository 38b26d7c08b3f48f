"""Section 3 — the whole server under wrk: ``bevsession serve`` vs an aiohttp-session app.

Both servers run as real processes on loopback with 1 and then 2 worker processes
(``SO_REUSEPORT``), and wrk (one thread, 32 connections, bounded duration) sends requests that
carry valid cookies: 256 sessions are made first through the server's own ``GET /api/session``
and wrk's Lua script (``bench/wrk/cookies.lua``) rotates through them.

- ours: ``python -m bevsession_edge.cli serve --workers N`` with ``DATABASE_URL`` to the
  throwaway cluster as ``authenticator`` and ``SESSION_PASSWORD`` set. ``GET /api/session``
  with a cookie the database confirmed is answered by the worker's read cache and reported to
  the database in one batched ``touch_sessions`` call per worker per second; any other cookie
  costs an unseal and ``get_session`` (which touches the row). ``POST /api/chat`` is two RPCs
  (``begin_chat_turn`` + ``finish_chat_turn``). Database calls per GET are counted by
  PostgreSQL itself (``pg_stat_user_functions``), and GET is also measured with the read cache
  off (``SESSION_READ_CACHE_SECONDS=0``: one unseal and one RPC per request), 1 worker, and
  with 20,000 visitors' cookies (more than the read cache's 10,000 entries and the sealer's
  4,096 cached keys: wrk's rotation evicts each cookie before it comes round again, so reads
  miss the cache and unseal a cookie not seen lately), 1 worker, the hit rate taken from the
  worker's ``/metrics``;
- baseline: ``bench/baseline_app.py``, the same cookie work with aiohttp-session's
  ``EncryptedCookieStorage`` (Fernet) and no database at all.

wrk competes with the servers (and ours with PostgreSQL) for the same 2 cores; the figures are
what this machine does, side by side, not what a bigger one would.
"""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import aiohttp
import asyncpg

from bench.env import (
    ROOT,
    Database,
    ensure_wrk,
    free_port,
    postmaster_pid,
    run_json_tool,
    stop_process,
    tree_cpu_seconds,
    wait_http,
)
from bench.report import Row, compare
from bench.run_database import VISITORS, pgbench

LUA = ROOT / "bench" / "wrk" / "cookies.lua"
GET_SESSION_SQL = ROOT / "sql" / "bench" / "get_session.sql"
COOKIE_NAME = "bevgenie_session"
PASSWORD = "bench password: at least 32 characters long!"  # noqa: S105 (benchmark only)
CONNECTIONS = 32
SESSIONS = 256
MANY_VISITORS = 20_000  # > SESSION_READ_CACHE_ENTRIES' default (10,000)
CHAT_BODY = '{"message": "We brew craft beer and sell through two distributors."}'
WORKERS = (1, 2)
COUNTED = ("get_session", "touch_sessions")
# Idle backends report their function counts within PGSTAT_IDLE_INTERVAL (10 s, PostgreSQL 15+).
STATS_SETTLE_SECONDS = 11


async def make_cookies(port: int, count: int, in_flight: int = 16) -> list[str]:
    """``Cookie`` header values of *count* new sessions, each made by the server itself."""
    cookies: list[str] = []
    url = f"http://127.0.0.1:{port}/api/session"
    todo = iter(range(count))
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:

        async def worker() -> None:
            for _ in todo:
                async with http.get(url) as response:
                    response.raise_for_status()
                    cookies.append(f"{COOKIE_NAME}={response.cookies[COOKIE_NAME].coded_value}")

        await asyncio.gather(*(worker() for _ in range(in_flight)))
    return cookies


async def read_cache_counts(port: int) -> dict[str, int]:
    """The read cache's counters of the worker that answers (with 1 worker: the only one)."""
    url = f"http://127.0.0.1:{port}/metrics"
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        response.raise_for_status()
        cache = (await response.json()).get("readCache", {})
    return {key: int(cache.get(key, 0)) for key in ("hits", "misses")}


class Server:
    """One server under test: its processes, port and log."""

    def __init__(self, cmds: list[list[str]], env: dict[str, str], port: int, log: Path) -> None:
        self.port = port
        self.log = log.open("ab")
        self.procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.log,
                                       stderr=subprocess.STDOUT) for cmd in cmds]  # fmt: skip

    def stop(self) -> None:
        for proc in self.procs:
            stop_process(proc)
        self.log.close()


def clean_env() -> dict[str, str]:
    drop = ("DATABASE_URL", "SUPABASE_", "SESSION_", "BEVSESSION_", "HOST", "PORT", "CLIENT_",
            "TRUSTED_PROXY_HOPS")  # fmt: skip
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def start_ours(db: Database, workers: int, log: Path, *, read_cache: bool = True) -> Server:
    port = free_port()
    env = clean_env() | {
        "DATABASE_URL": db.app_dsn,
        "SESSION_PASSWORD": PASSWORD,
        "BEVSESSION_TRANSPORT": "postgres",
        "BEVSESSION_LOG_LEVEL": "warning",
        # wrk is one client address: the per-address limits (client_limits.py) would refuse it
        "CLIENT_SESSION_RATE": "off",
        "CLIENT_CHAT_RATE": "off",
    }
    if not read_cache:
        env["SESSION_READ_CACHE_SECONDS"] = "0"
    cmd = [sys.executable, "-m", "bevsession_edge.cli", "serve", "--host", "127.0.0.1",
           "--port", str(port), "--workers", str(workers)]  # fmt: skip
    return Server([cmd], env, port, log)


def start_baseline(workers: int, log: Path) -> Server:
    port = free_port()
    env = clean_env() | {"BENCH_FERNET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode()}
    cmd = [sys.executable, "-m", "bench.baseline_app", "--port", str(port), "--reuse-port"]
    return Server([cmd] * workers, env, port, log)


def wrk(
    port: int,
    path: str,
    cookies: Path,
    seconds: int,
    body: Path | None = None,
    start: int | None = None,
) -> dict[str, float]:
    """One wrk run; *start*: the cookie to begin the rotation at (default: the script's own)."""
    cmd = [ensure_wrk(), "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "10s",
           "-s", str(LUA), f"http://127.0.0.1:{port}{path}", "--", str(cookies)]  # fmt: skip
    if body is not None:
        cmd.append(str(body))
    env = None if start is None else {**os.environ, "WRK_COOKIE_START": str(start)}
    result = run_json_tool(cmd, env=env, timeout=seconds + 60)
    errors = result["errors"]
    assert isinstance(errors, dict)
    failed = sum(int(v) for v in errors.values())
    if failed:
        print(f"bench: wrk {path} on port {port}: {failed} errors {errors}", file=sys.stderr)
    requests = int(result["requests"])  # type: ignore[call-overload]
    duration = int(result["duration_us"]) / 1e6  # type: ignore[call-overload]
    latency = result["latency_us"]
    assert isinstance(latency, dict)
    return {"rps": (requests - failed) / duration, "p50": latency["p50"] / 1e3,
            "p99": latency["p99"] / 1e3, "errors": failed, "seconds": duration,
            "sent": requests}  # fmt: skip


async def function_calls(db: Database) -> dict[str, int]:
    """Calls of the counted RPC functions so far (``track_functions = 'pl'``), after waiting
    for idle backends to report theirs."""
    await asyncio.sleep(STATS_SETTLE_SECONDS)
    conn = await asyncpg.connect(db.admin_dsn)
    try:
        rows = await conn.fetch(
            "select funcname, calls from pg_catalog.pg_stat_user_functions"
            " where schemaname = 'public' and funcname = any($1::text[])",
            list(COUNTED),
        )
    finally:
        await conn.close()
    calls = dict.fromkeys(COUNTED, 0)
    calls.update({r["funcname"]: int(r["calls"]) for r in rows})
    return calls


async def measure(
    server: Server,
    workdir: Path,
    seconds: int,
    db: Database,
    db_pid: int,
    keys: tuple[str, ...] = ("get", "chat"),
    count_calls: bool = False,
    sessions: int = SESSIONS,
    cache_counts: bool = False,
) -> dict[str, dict[str, float]]:
    """wrk on GET /api/session and POST /api/chat with the cookies of *sessions* visitors;
    rates, latencies, CPU, (``count_calls``) database calls per GET and (``cache_counts``,
    1 worker) the read cache's hits and misses during the GET run."""
    await wait_http(server.port, "/api/session")
    cookies = workdir / f"cookies-{server.port}.txt"
    made = await make_cookies(server.port, sessions, 16 if sessions <= SESSIONS else 32)
    cookies.write_text("\n".join(made) + "\n")
    body = workdir / "chat.json"
    body.write_text(CHAT_BODY)
    loop = asyncio.get_running_loop()
    # With more visitors than the read cache holds, the rotation starts at the oldest cookie
    # (made first: already evicted) and the measured run carries on where the warm-up stopped
    # (past the up to CONNECTIONS requests it still had in flight), so every read is one the
    # cache has evicted, as it would be in the steady state.
    many = sessions > SESSIONS
    warm = await loop.run_in_executor(None, wrk, server.port, "/api/session", cookies, 1, None,
                                      0 if many else None)  # fmt: skip
    position = int(warm["sent"]) + CONNECTIONS if many else None
    pids = [p.pid for p in server.procs]
    results = {}
    for key, path, payload in (("get", "/api/session", None), ("chat", "/api/chat", body)):
        if key not in keys:
            continue
        counting = count_calls and key == "get"
        calls0 = await function_calls(db) if counting else {}
        cache0 = await read_cache_counts(server.port) if cache_counts and key == "get" else {}
        cpu0 = tree_cpu_seconds(pids), tree_cpu_seconds([db_pid])
        result = await loop.run_in_executor(None, wrk, server.port, path, cookies, seconds, payload,
                                            position)  # fmt: skip
        cpu1 = tree_cpu_seconds(pids), tree_cpu_seconds([db_pid])
        if cache0:
            cache1 = await read_cache_counts(server.port)
            for name in ("hits", "misses"):
                result[f"cache_{name}"] = cache1[name] - cache0[name]
        done = max(1.0, result["rps"] * result["seconds"])
        result["server_us"] = (cpu1[0] - cpu0[0]) / done * 1e6
        result["db_us"] = (cpu1[1] - cpu0[1]) / done * 1e6
        if counting:
            calls1 = await function_calls(db)
            for name in COUNTED:
                result[f"{name}_calls"] = calls1[name] - calls0[name]
            result["requests"] = done
        results[key] = result
    return results


async def run(db: Database, seconds: float, logs: Path) -> list[Row]:
    ensure_wrk()
    whole = max(1, round(seconds))
    db_pid = postmaster_pid(db.pg)
    await db.execute(f"alter database \"{db.name}\" set track_functions = 'pl'")
    # The database alone on GET /api/session's RPC, 8 clients: the ceiling of any server.
    await db.create_visitors(1, VISITORS)
    ceiling = await pgbench(db, seconds=whole, base=0, script=GET_SESSION_SQL)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bevsession-wrk-") as tmp:
        workdir = Path(tmp)
        for workers in WORKERS:
            figures: dict[str, dict[str, dict[str, float]]] = {}
            for name in ("ours", "base"):
                if name == "ours":
                    server = start_ours(db, workers, logs / "serve.log")
                else:
                    server = start_baseline(workers, logs / "baseline.log")
                try:
                    figures[name] = await measure(
                        server, workdir, whole, db, db_pid, count_calls=name == "ours"
                    )
                finally:
                    server.stop()
            if workers == 1:  # every GET unseals and asks the database: the cost of no cache
                server = start_ours(db, workers, logs / "serve.log", read_cache=False)
                try:
                    figures["uncached"] = await measure(
                        server, workdir, whole, db, db_pid, keys=("get",)
                    )
                finally:
                    server.stop()
                # More visitors than the read cache holds, against the same baseline app
                # with as many visitors (its cookies need no cache: no database behind it).
                for name in ("many", "many_base"):
                    if name == "many":
                        server = start_ours(db, workers, logs / "serve.log")
                    else:
                        server = start_baseline(workers, logs / "baseline.log")
                    try:
                        figures[name] = await measure(
                            server, workdir, whole, db, db_pid, keys=("get",),
                            sessions=MANY_VISITORS, cache_counts=name == "many",
                        )  # fmt: skip
                    finally:
                        server.stop()
            ours, base = figures["ours"], figures["base"]
            ref = f"aiohttp-session Fernet app, {workers}w"
            for key, label in (("get", "GET /api/session"), ("chat", "POST /api/chat")):
                aim = 0.8 if key == "get" else None
                rows += [
                    compare(f"{label} req/s, {workers} worker(s)", ours[key]["rps"], "req/s",
                            ref, base[key]["rps"], aim=aim),
                    compare(f"{label} p50, {workers} worker(s)", ours[key]["p50"], "ms",
                            ref, base[key]["p50"], higher_is_better=False),
                    compare(f"{label} p99, {workers} worker(s)", ours[key]["p99"], "ms",
                            ref, base[key]["p99"], higher_is_better=False),
                    compare(f"{label} server CPU/request, {workers}w", ours[key]["server_us"],
                            "µs", ref, base[key]["server_us"], higher_is_better=False),
                    compare(f"{label} PostgreSQL CPU/request, {workers}w", ours[key]["db_us"],
                            "µs"),
                ]  # fmt: skip
                if key == "get":
                    get = ours["get"]
                    rows += [
                        compare(f"{label} get_session calls/request, {workers}w",
                                get["get_session_calls"] / get["requests"], "calls"),
                        compare(f"{label} touch_sessions calls/s, {workers}w",
                                get["touch_sessions_calls"] / get["seconds"], "calls/s"),
                        compare(f"{label} req/s, {workers}w, vs the database alone",
                                get["rps"], "req/s", "pgbench get_session.sql, 8 clients",
                                ceiling["tps"]),
                    ]  # fmt: skip
                    if "uncached" in figures:
                        off = figures["uncached"]["get"]
                        rows += [
                            compare(f"{label} req/s, {workers}w, read cache off", off["rps"],
                                    "req/s", ref, base["get"]["rps"]),
                            compare(f"{label} p99, {workers}w, read cache off", off["p99"],
                                    "ms", ref, base["get"]["p99"], higher_is_better=False),
                        ]  # fmt: skip
                    if "many" in figures:
                        rows += many_visitor_rows(label, workers, figures["many"]["get"],
                                                  figures["many_base"]["get"])  # fmt: skip
    return rows


def many_visitor_rows(
    label: str, workers: int, ours: dict[str, float], base: dict[str, float]
) -> list[Row]:
    """GET with MANY_VISITORS cookies: rate against the baseline app with as many visitors;
    latency, CPU and the read cache's hit rate say why."""
    many = f"{workers}w, {MANY_VISITORS} visitors"
    ref = f"aiohttp-session Fernet app, {many}"
    looked_up = ours["cache_hits"] + ours["cache_misses"]
    return [
        compare(f"{label} req/s, {many}", ours["rps"], "req/s", ref, base["rps"], aim=0.5),
        compare(f"{label} p99, {many}", ours["p99"], "ms", ref, base["p99"],
                higher_is_better=False),
        compare(f"{label} server CPU/request, {many}", ours["server_us"], "µs", ref,
                base["server_us"], higher_is_better=False),
        compare(f"{label} PostgreSQL CPU/request, {many}", ours["db_us"], "µs"),
        compare(f"{label} read-cache hit rate, {many}",
                ours["cache_hits"] / looked_up * 100 if looked_up else None, "%"),
    ]  # fmt: skip
