"""Server CPU per ``POST /api/chat`` turn, with the edge worker in this process: where it goes.

    python -m bench.chat_cpu [--turns 3] [--warm 9] [--sessions 128] [--profile FILE] [--floor]

The real app (``create_app``) serves on loopback in this process, on a throwaway PostgreSQL
(the postgres transport, as the visitor role); the load comes from a client in another process
(``--client``), so this process's CPU time is the worker's alone: HTTP, middleware, cookie
unseal/seal, detection, the two RPCs (asyncpg), parsing, reply, JSON. PostgreSQL's CPU is in
its own processes and not counted.

``--floor`` measures the same way a bare aiohttp handler that makes the same two RPCs (same
SQL, same transport, the same signals, computed once) and parses nothing: no cookie seal or
unseal, no detection, no pydantic. What a turn costs beyond it is the session layer's own work.

Two figures: ``fresh`` (new sessions, ``--turns`` turns each, as ``python -m bench --quick``
sees them) and ``warm`` (the same sessions after ``--warm`` more turns each: a full history
window, detection histories at their cap). Cookies are never updated by the client (as the
wrk run of ``python -m bench``), so every turn unseals its cookie and reseals it.

``--profile FILE``: the ``warm`` turns once more under cProfile with the process CPU clock
(waiting for the database costs nothing there), saved to FILE and summarised: cumulative and
self time per turn of the busiest functions. The profiler's own cost inflates every figure
(about threefold); compare shares, or compare with an unprofiled run.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiohttp import web
from pydantic import BaseModel, ConfigDict

from bench.env import cluster_context, database, free_port
from bench.run_server import CHAT_BODY, COOKIE_NAME, PASSWORD, make_cookies

CONCURRENCY = 16
FLOOR_REPLY = "Thanks, so far I understand you work with a supplier, a craft-sized team, beer."


async def client(port: int, cookies: list[str], turns: int) -> dict[int, int]:
    """POST /api/chat *turns* times over *cookies* (round robin), CONCURRENCY at a time."""
    url = f"http://127.0.0.1:{port}/api/chat"
    todo = iter(range(turns))
    statuses: dict[int, int] = {}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:

        async def worker() -> None:
            for i in todo:
                headers = {"Cookie": cookies[i % len(cookies)], "Content-Type": "application/json"}
                async with http.post(url, data=CHAT_BODY, headers=headers) as response:
                    await response.read()
                    statuses[response.status] = statuses.get(response.status, 0) + 1

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return statuses


async def drive(port: int, cookie_file: Path, turns: int) -> tuple[float, float]:
    """Run the client process for *turns* turns; this process's user and system µs per turn."""
    before = os.times()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.chat_cpu", "--client", str(port), str(cookie_file),
        str(turns), stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await proc.communicate()
    after = os.times()
    statuses = json.loads(out)
    if set(statuses) != {"200"}:
        raise RuntimeError(f"chat turns answered {statuses}")
    return ((after.user - before.user) / turns * 1e6, (after.system - before.system) / turns * 1e6)


def summary(profile: cProfile.Profile, turns: int, top: int = 30) -> str:
    """The busiest functions of *profile*, cumulative and self µs per turn."""
    stats = pstats.Stats(profile, stream=io.StringIO())
    rows = []
    entries = stats.stats.items()  # type: ignore[attr-defined]  # pstats keeps it untyped
    for (file, line, name), (_, calls, self_s, cum_s, _) in entries:
        where = file.split("site-packages/")[-1].split("python3.11/")[-1]
        where = where.split("/functions/")[-1].split("/python_client/")[-1]
        rows.append((cum_s, self_s, calls, f"{where}:{line}({name})"))
    lines = [f"{'cum µs':>8} {'self µs':>8} {'calls':>6}  function (per turn)"]
    by_self = sorted(rows, key=lambda r: -r[1])[:top]
    by_cum = sorted(rows, key=lambda r: -r[0])[:top]
    for title, chosen in (("by cumulative time", by_cum), ("by self time", by_self)):
        lines.append(f"-- {title}")
        lines += [f"{c / turns * 1e6:8.0f} {s / turns * 1e6:8.0f} {n / turns:6.1f}  {f}"
                  for c, s, n, f in chosen]  # fmt: skip
    return "\n".join(lines)


class _Nothing(BaseModel):
    """Reads nothing of a result: the JSON parser only skips it."""

    model_config = ConfigDict(extra="ignore")


def floor_app(dsn: str) -> web.Application:
    """The same two RPCs per turn from a bare handler (see ``--floor``)."""
    from bevsession.transports.base import Visitor
    from bevsession.transports.postgres import PostgresTransport
    from bevsession_edge.detection import KeywordSignalDetector

    message = json.loads(CHAT_BODY)["message"]
    signals = [s.to_rpc() for s in KeywordSignalDetector().detect(message)]
    transport = web.AppKey("transport", PostgresTransport)

    async def session(request: web.Request) -> web.Response:
        response = web.json_response({})
        response.set_cookie(COOKIE_NAME, str(uuid.uuid4()))
        return response

    async def chat(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        who = Visitor(uuid.UUID(request.cookies[COOKIE_NAME]))
        args = {"content": body["message"], "signals": signals, "history_limit": 20}
        t = request.app[transport]
        await t.call_model("begin_chat_turn", args, _Nothing, identity=who)
        await t.call_model("finish_chat_turn", {"content": FLOOR_REPLY}, _Nothing, identity=who)
        return web.json_response({"reply": FLOOR_REPLY})

    async def database(app: web.Application) -> AsyncIterator[None]:
        app[transport] = await PostgresTransport.connect(dsn)
        yield
        await app[transport].close()

    app = web.Application()
    app.cleanup_ctx.append(database)
    app.router.add_get("/api/session", session)
    app.router.add_post("/api/chat", chat)
    return app


async def run(args: argparse.Namespace) -> None:
    from bevsession_edge.app import create_app
    from bevsession_edge.config import load_settings

    for name in [k for k in os.environ if k.startswith(("SESSION_", "BEVSESSION_", "SUPABASE_"))]:
        del os.environ[name]
    os.environ.pop("DATABASE_URL", None)
    async with cluster_context() as pg:
        with tempfile.TemporaryDirectory() as tmp:
            db = await database(pg, "chat_cpu")
            settings = load_settings(
                database_url=db.app_dsn, session_password=PASSWORD, transport="postgres"
            )
            app = floor_app(db.app_dsn) if args.floor else create_app(settings)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            port = free_port()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            try:
                cookie_file = Path(tmp) / "cookies.txt"
                cookies = await make_cookies(port, args.sessions)
                cookie_file.write_text("\n".join(cookies) + "\n")
                n = args.sessions * args.turns
                user, system = await drive(port, cookie_file, n)
                print(f"fresh: {user + system:6.0f} µs/turn (user {user:.0f}, system {system:.0f}),"
                      f" {n} turns", flush=True)  # fmt: skip
                await drive(port, cookie_file, args.sessions * args.warm)
                user, system = await drive(port, cookie_file, n)
                print(f"warm:  {user + system:6.0f} µs/turn (user {user:.0f}, system {system:.0f}),"
                      f" {n} turns", flush=True)  # fmt: skip
                if args.profile:
                    profile = cProfile.Profile(time.process_time)
                    profile.enable()
                    await drive(port, cookie_file, n)
                    profile.disable()
                    profile.dump_stats(args.profile)
                    print(
                        f"\nprofile of {n} warm turns (process CPU clock), saved to {args.profile}"
                    )
                    print(summary(profile, n))
            finally:
                await runner.cleanup()


def main() -> int:
    if len(sys.argv) == 5 and sys.argv[1] == "--client":
        port, cookie_file, turns = int(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
        cookies = [c for c in cookie_file.read_text().splitlines() if c.startswith(COOKIE_NAME)]
        print(json.dumps(asyncio.run(client(port, cookies, turns))))
        return 0
    description = __doc__.splitlines()[0] if __doc__ else None
    parser = argparse.ArgumentParser(prog="python -m bench.chat_cpu", description=description)
    parser.add_argument("--sessions", type=int, default=128, help="a multiple of 16")
    parser.add_argument("--turns", type=int, default=3, help="measured turns per session")
    parser.add_argument("--warm", type=int, default=9, help="turns per session before 'warm'")
    parser.add_argument("--profile", help="cProfile the warm turns into this file")
    parser.add_argument("--floor", action="store_true", help="the bare two-RPC handler instead")
    asyncio.run(run(parser.parse_args()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
