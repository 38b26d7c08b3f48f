"""A real browser on the demo page: headless Chromium (Debian's ``chromium``) via playwright-core.

The browser sends a message through the chat form, gets the assistant's reply, cannot see the
session cookie from JavaScript (httpOnly), and after a reload is still the same session with its
history rendered. ``./dev test`` installs Chromium from Debian; a machine without it FAILS this
test with that message — it never skips. No browser is ever downloaded (no
``playwright install``): tests/interop/browser_check.mjs launches /usr/bin/chromium.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest

from e2e_server import (
    COOKIE_NAME,
    RunningServer,
    clean_env,
    db_fetch,
)
from interop.node_iron import INTEROP_DIR, ensure_node_modules

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
MESSAGE = "I run sales at a craft brewery and need to prove ROI"


def ensure_browser() -> None:
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"the browser test needs Chromium at {CHROMIUM}; `./dev test` installs it "
            "(Debian package `chromium`: apt-get install -y chromium)"
        )
    ensure_node_modules()
    pinned = json.loads((INTEROP_DIR / "package.json").read_text())["dependencies"][
        "playwright-core"
    ]
    manifest = INTEROP_DIR / "node_modules" / "playwright-core" / "package.json"
    installed = json.loads(manifest.read_text())["version"] if manifest.is_file() else None
    if installed != pinned:
        pytest.fail(
            f"{INTEROP_DIR}/node_modules has playwright-core {installed}, package.json pins "
            f"{pinned}; `./dev test` runs `npm ci` there (never `npx playwright install`: the "
            "browser is Debian's chromium)"
        )


def run_browser(base_url: str, message: str) -> dict[str, Any]:
    profile = tempfile.mkdtemp(prefix="bevsession-chromium-")
    try:
        proc = subprocess.run(
            ["node", "browser_check.mjs", base_url, message, profile],
            cwd=INTEROP_DIR,
            env=clean_env(CHROMIUM=str(CHROMIUM)),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    if proc.returncode != 0 or not proc.stdout.strip():
        pytest.fail(f"browser_check.mjs failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


async def test_the_demo_page_chats_and_keeps_the_session_across_a_reload(
    server: RunningServer,
) -> None:
    ensure_browser()
    result = run_browser(server.base_url, MESSAGE)
    assert result["ok"], result.get("error", result)
    assert result["pageStatus"] == 200

    sid = result["sessionIdOnLoad"]
    assert uuid.UUID(sid).version == 4, sid
    assert result["sessionIdAfterChat"] == sid
    assert result["sessionIdAfterReload"] == sid, "the reload must bring the same session back"
    assert result["reply"], "the assistant answered"
    assert result["messageCountAfterChat"] == "2"

    assert COOKIE_NAME not in result["documentCookie"], "the session cookie must be httpOnly"
    assert COOKIE_NAME not in result["documentCookieAfterReload"]
    cookies = {c["name"]: c for c in result["cookies"]}
    assert COOKIE_NAME in cookies, (
        f"the browser did not keep the session cookie: {result['cookies']}"
    )
    assert cookies[COOKIE_NAME]["httpOnly"] is True
    assert cookies[COOKIE_NAME]["sameSite"] == "Lax"
    assert cookies[COOKIE_NAME]["path"] == "/"

    log = result["logAfterReload"]
    assert [item["role"] for item in log] == ["user", "assistant"], log
    assert log[0]["text"] == MESSAGE
    assert log[1]["text"] == result["reply"]

    # The browser asks for /favicon.ico on its own; the demo page has none (a JSON 404). Any
    # other failed request or console error is the page's or the API's fault.
    favicon = f"{server.base_url}/favicon.ico"
    bad = [r for r in result["badResponses"] if r["url"] != favicon]
    assert bad == [], bad
    errors = [e for e in result["consoleErrors"] if e["url"] != favicon]
    assert errors == [], errors
    assert result["pageErrors"] == [], result["pageErrors"]
    assert result["failedRequests"] == [], result["failedRequests"]

    rows = await db_fetch(
        server,
        "select count(*) as n from bevsession.conversation_history where session_id = $1::uuid",
        sid,
    )
    assert rows[0]["n"] == 2, "the browser's turn is stored under the session it shows"
