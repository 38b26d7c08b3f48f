"""API fuzzing: schemathesis against ``/openapi.json`` of the REAL server (a subprocess).

Schemathesis reads the document the server serves and generates requests from it — valid ones
(which must be accepted) and invalid ones (which must be refused with a 4xx) — in its examples,
coverage and fuzzing phases, and runs every check it has: no 5xx, status codes, content types,
headers and bodies exactly as documented, valid data accepted, invalid data rejected, wrong
methods answered 405 with ``Allow``. Any finding fails this test with schemathesis' own report.

Bounded: ``BEVSESSION_SCHEMATHESIS_EXAMPLES`` cases per operation and phase (default 40), a fixed
seed (reproducible; ``BEVSESSION_SCHEMATHESIS_SEED`` to change it) and a time budget.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import aiohttp

from e2e_server import COOKIE_NAME, RunningServer, StartServer, Visitor, db_fetch, linking_env

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
EXAMPLES = int(os.environ.get("BEVSESSION_SCHEMATHESIS_EXAMPLES", "40"))
SEED = os.environ.get("BEVSESSION_SCHEMATHESIS_SEED", "20261124")
MAX_SECONDS = 120


def run_schemathesis(server: RunningServer, workdir: Path, *extra: str) -> tuple[int, str]:
    """``schemathesis run`` against the live server; (exit code, its whole output)."""
    assert SCHEMATHESIS.is_file(), "schemathesis is not installed (pip install -e .[dev])"
    command = [
        str(SCHEMATHESIS), "run", server.url("/openapi.json"),
        "--checks", "all",
        "--mode", "all",
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", str(EXAMPLES),
        "--seed", SEED,
        "--workers", "1",
        "--request-timeout", "15",
        "--generation-database", "none",
        "--no-color",
        *extra,
    ]  # fmt: skip
    env = {
        **os.environ,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "SCHEMATHESIS_HOOKS": "",
    }
    proc = subprocess.run(
        command, cwd=workdir, env=env, capture_output=True, text=True, timeout=MAX_SECONDS,
        check=False,
    )  # fmt: skip
    return proc.returncode, proc.stdout + proc.stderr


async def test_schemathesis_finds_no_5xx_and_no_schema_violation(
    server_factory: StartServer, tmp_path: Path
) -> None:
    server = await server_factory(env=linking_env())  # linking on: tokens are verified
    code, output = await asyncio.to_thread(run_schemathesis, server, tmp_path)
    summary = "\n".join(output.splitlines()[-60:])
    assert code == 0, f"schemathesis found problems (exit {code}):\n{output[-12000:]}"
    tested = re.search(r"(\d+)\s+generated", output)
    assert tested is None or int(tested.group(1)) > 0, summary
    print(summary)
    # the run really reached the database: chat turns were stored
    stored = await db_fetch(server, "select count(*) as n from bevsession.conversation_history")
    assert stored[0]["n"] > 0, "no chat turn was accepted during the fuzzing run"
    log = server.log_text()
    assert "Traceback" not in log, f"the server logged an unhandled error:\n{log[-4000:]}"


async def test_schemathesis_as_a_returning_visitor(
    server_factory: StartServer, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    """The same run with a real session cookie on every request: the known-visitor paths (a
    stored history, the rate limit, clear and forget of a real session) get fuzzed too."""
    server = await server_factory(env=linking_env())  # linking on: tokens are verified
    visitor = Visitor(http, server)
    await visitor.chat("I run sales at a craft brewery and need to prove ROI")
    assert visitor.cookie is not None
    code, output = await asyncio.to_thread(
        run_schemathesis, server, tmp_path, "--header", f"Cookie: {COOKIE_NAME}={visitor.cookie}"
    )
    assert code == 0, f"schemathesis found problems (exit {code}):\n{output[-12000:]}"
    rows = await db_fetch(
        server,
        "select message_count, revoked_at is not null as revoked from bevsession.sessions"
        " where message_count > 2 order by message_count desc limit 1",
    )
    assert rows, "the visitor's session took no further chat turn during the run"
    print(f"returning visitor: {rows[0]['message_count']} messages, revoked={rows[0]['revoked']}")
