"""Server and PostgreSQL CPU per cold ``GET /api/session``, with the edge worker in-process.

    python -m bench.read_cpu [--cache off|evicted|warm] [--sessions 6000] [--profile FILE]

A cold read is a cookie this worker holds no copy of: with the read cache off
(``SESSION_READ_CACHE_SECONDS=0``, ``--cache off``) or with more visitors than it holds
(``--cache evicted``: ``SESSION_READ_CACHE_ENTRIES`` a sixth of ``--sessions``, so the rotation
evicts each cookie before it comes round again, as ``python -m bench``'s 20,000 visitors do).
``--sessions`` above the sealer's 4,096 cached keys makes every unseal a first sight.
``--cache warm`` is the comparison: every read a hit of a copy the worker holds (no unseal, no
database), so what a cold read costs beyond it is the cold read's own work.

The real app (``create_app``) serves on loopback in this process, on a throwaway PostgreSQL
(the postgres transport); the client runs in another process (``--client``) and never stores
a cookie (as wrk), so this process's CPU is the worker's alone, and PostgreSQL's is counted
from its processes. Each pass reads every cookie once, 16 at a time.

``--profile FILE``: one more pass under cProfile with the process CPU clock, saved to FILE and
summarised per read (``bench.chat_cpu``'s table). The profiler inflates every figure; compare
shares, or compare with an unprofiled run.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from bench.chat_cpu import summary
from bench.env import cluster_context, database, free_port, postmaster_pid, tree_cpu_seconds
from bench.run_server import COOKIE_NAME, PASSWORD, make_cookies

CONCURRENCY = 16


async def client(port: int, cookies: list[str]) -> dict[str, int]:
    """GET /api/session once per cookie, CONCURRENCY at a time; statuses and cookie writes."""
    url = f"http://127.0.0.1:{port}/api/session"
    todo = iter(cookies)
    counts: dict[str, int] = {}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:

        async def worker() -> None:
            for cookie in todo:
                async with http.get(url, headers={"Cookie": cookie}) as response:
                    await response.read()
                    key = str(response.status)
                    counts[key] = counts.get(key, 0) + 1
                    if COOKIE_NAME in response.cookies:
                        counts["set-cookie"] = counts.get("set-cookie", 0) + 1

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return counts


async def drive(port: int, cookie_file: Path, reads: int, pg_pid: int) -> dict[str, float]:
    """One pass of the client process; this process's and PostgreSQL's µs per read."""
    before, pg_before = os.times(), tree_cpu_seconds([pg_pid])
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.read_cpu", "--client", str(port), str(cookie_file),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await proc.communicate()
    after, pg_after = os.times(), tree_cpu_seconds([pg_pid])
    counts = json.loads(out)
    if counts.get("200") != reads:
        raise RuntimeError(f"reads answered {counts}")
    return {
        "user": (after.user - before.user) / reads * 1e6,
        "system": (after.system - before.system) / reads * 1e6,
        "postgres": (pg_after - pg_before) / reads * 1e6,
        "set_cookie": counts.get("set-cookie", 0) / reads * 100,
    }


async def run(args: argparse.Namespace) -> None:
    from bevsession_edge.app import create_app
    from bevsession_edge.config import load_settings

    for name in [k for k in os.environ if k.startswith(("SESSION_", "BEVSESSION_", "SUPABASE_"))]:
        del os.environ[name]
    os.environ.pop("DATABASE_URL", None)
    cache: dict[str, float] = {
        "off": {"session_read_cache_seconds": 0},
        "evicted": {"session_read_cache_entries": max(1, args.sessions // 6)},
        "warm": {"session_read_cache_entries": args.sessions * 2},
    }[args.cache]
    async with cluster_context() as pg:
        with tempfile.TemporaryDirectory() as tmp:
            db = await database(pg, "read_cpu")
            settings = load_settings(
                database_url=db.app_dsn,
                session_password=PASSWORD,
                transport="postgres",
                client_session_rate="off",
                **cache,
            )
            runner = web.AppRunner(create_app(settings), access_log=None)
            await runner.setup()
            port = free_port()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            pg_pid = postmaster_pid(pg)
            try:
                cookie_file = Path(tmp) / "cookies.txt"
                cookies = await make_cookies(port, args.sessions, 32)
                cookie_file.write_text("\n".join(cookies) + "\n")
                n = len(cookies)
                await drive(port, cookie_file, n, pg_pid)  # warm: pools, code paths
                for label in ("pass 1", "pass 2"):
                    f = await drive(port, cookie_file, n, pg_pid)
                    print(f"{label}: server {f['user'] + f['system']:5.0f} µs/read (user"
                          f" {f['user']:.0f}, system {f['system']:.0f}), PostgreSQL"
                          f" {f['postgres']:5.0f} µs/read, Set-Cookie on {f['set_cookie']:.0f} %,"
                          f" {n} reads, cache {args.cache}", flush=True)  # fmt: skip
                if args.profile:
                    profile = cProfile.Profile(time.process_time)
                    profile.enable()
                    await drive(port, cookie_file, n, pg_pid)
                    profile.disable()
                    profile.dump_stats(args.profile)
                    print(f"\nprofile of {n} cold reads (process CPU clock), saved to"
                          f" {args.profile}")  # fmt: skip
                    print(summary(profile, n).replace("(per turn)", "(per read)"))
            finally:
                await runner.cleanup()


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--client":
        port, cookie_file = int(sys.argv[2]), Path(sys.argv[3])
        cookies = [c for c in cookie_file.read_text().splitlines() if c.startswith(COOKIE_NAME)]
        print(json.dumps(asyncio.run(client(port, cookies))))
        return 0
    description = __doc__.splitlines()[0] if __doc__ else None
    parser = argparse.ArgumentParser(prog="python -m bench.read_cpu", description=description)
    parser.add_argument("--cache", choices=("off", "evicted", "warm"), default="off")
    parser.add_argument("--sessions", type=int, default=6000, help="cookies, each read once a pass")
    parser.add_argument("--profile", help="cProfile one more pass into this file")
    asyncio.run(run(parser.parse_args()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
