"""Every benchmark, side by side with what it is compared against, in one run: ``python -m bench``.

    python -m bench            # the full run (about 5 minutes on 2 cores)
    python -m bench --quick    # a smoke run (about 1 minute; growth stops at 10^5 rows)
    python -m bench --skip server,growth

Starts a throwaway PostgreSQL (``LocalPostgres.throwaway_cluster()`` + migrations), installs or
starts what each figure is compared with, prints one table and writes ``bench/out/results.json``
as ``{"rows": [{name, value, unit, reference, reference_value, ratio, aim}]}``. ``ratio`` is
oriented so that higher is better for us; ``aim`` is the ratio we want (null: information).

1. sealing  — seal/unseal ops/s: ours vs Node iron-session vs aiohttp-session's Fernet;
2. database — chat turns/s: pgbench on the SQL functions vs ``SessionService`` (the postgres
   transport; the supabase transport only against a real Supabase stack the environment names,
   ``SUPABASE_URL`` and the project's keys), and round trips per turn; then
   ``SessionService`` vs a minimal hand-written turn (``sql/bench/minimal_turn.sql``) vs
   langchain-postgres' chat history, on visitors seeded with 18 messages;
3. server   — wrk against ``bevsession serve`` vs a minimal aiohttp-session app, 1 and 2 workers;
4. growth   — history latency at 10^4 / 10^5 / 10^6 message rows, and the plan it uses.

It prints figures and asserts nothing: they depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
from pathlib import Path

from bench.env import (
    ROOT,
    MissingTool,
    cluster_context,
    database,
    ensure_wrk,
    pgbench_path,
    require_aiohttp_session,
    require_langchain_postgres,
    require_node,
)
from bench.report import Row, print_table, write_json

SECTIONS = ("sealing", "database", "server", "growth")
OUT = ROOT / "bench" / "out"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a ~1 minute smoke run")
    parser.add_argument(
        "--skip", default="", help=f"comma-separated sections: {','.join(SECTIONS)}"
    )
    parser.add_argument("--out", type=Path, default=OUT / "results.json", help="the JSON file")
    args = parser.parse_args()
    skipped = {s.strip() for s in args.skip.split(",") if s.strip()}
    if unknown := skipped - set(SECTIONS):
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    args.sections = [s for s in SECTIONS if s not in skipped]
    return args


def check_tools(sections: list[str]) -> None:
    """Fail before anything long starts, saying what to install."""
    if "sealing" in sections or "server" in sections:
        require_aiohttp_session()
    if "sealing" in sections:
        require_node()
    if "database" in sections:
        require_langchain_postgres()
    if "server" in sections:
        ensure_wrk()


async def run(args: argparse.Namespace) -> list[Row]:
    quick = args.quick
    rows: list[Row] = []
    notes: list[str] = []
    logs = OUT / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    def section(name: str) -> float:
        print(f"bench: {name} …", file=sys.stderr, flush=True)
        return time.perf_counter()

    def done(name: str, started: float) -> None:
        print(f"bench: {name} done in {time.perf_counter() - started:.0f} s", file=sys.stderr,
              flush=True)  # fmt: skip

    if "sealing" in args.sections:
        from bench import run_sealing

        t = section("sealing")
        rows += run_sealing.run(0.25 if quick else 1.0)
        done("sealing", t)
    if not set(args.sections) & {"database", "server", "growth"}:
        return rows

    async with cluster_context() as pg:
        pgbench_path(pg)
        if "database" in args.sections:
            from bench import run_database

            t = section("database")
            rows += await run_database.run(await database(pg, "db"), 3 if quick else 10, notes)
            from bench import run_chat

            rows += await run_chat.run(await database(pg, "chat"), 3 if quick else 10,
                                       250 if quick else 1000)  # fmt: skip
            done("database", t)
        if "server" in args.sections:
            from bench import run_server

            t = section("server")
            rows += await run_server.run(await database(pg, "server"), 2 if quick else 5, logs)
            done("server", t)
        if "growth" in args.sections:
            from bench import run_growth

            t = section("growth")
            sizes = (10**4, 10**5) if quick else (10**4, 10**5, 10**6)
            grown, steps = await run_growth.run(await database(pg, "growth"), sizes,
                                                100 if quick else 300)  # fmt: skip
            rows += grown
            notes.append("history_page's keyset scan, EXPLAIN (ANALYZE, BUFFERS) as the visitor:")
            for step in steps:
                notes.append(f"  {step.rows:>9,} rows: {step.plan_line}  [{step.buffers_line}]")
            done("growth", t)
    args.notes = notes
    return rows


def main() -> int:
    args = parse_args()
    args.notes = []
    try:
        check_tools(args.sections)
    except MissingTool as exc:
        print(f"python -m bench: {exc}", file=sys.stderr)
        return 2
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    rows = asyncio.run(run(args))
    elapsed, load_after = time.perf_counter() - started, os.getloadavg()[0]
    title = (
        f"bevgenie-session benchmarks{' (--quick)' if args.quick else ''} — "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, {elapsed:.0f} s; "
        "ratio > 1 is better for us"
    )
    print_table(rows, title)
    for line in args.notes:
        print(line)
    # Everything here shares the machine's cores: other work skews absolute figures (ratios
    # of figures measured side by side less so). The 1-minute load says how busy it was.
    print(f"load average (1 min) before: {load_before:.2f}, after: {load_after:.2f} "
          f"on {os.cpu_count()} cores")  # fmt: skip
    write_json(rows, args.out)
    print(f"\nwrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
