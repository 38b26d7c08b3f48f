"""A real browser on the demo page: headless Chromium (Debian's ``chromium``) via playwright-core.

The browser sends a message through the chat form, gets the assistant's reply, cannot see the
session cookie from JavaScript (httpOnly), and after a reload is still the same session with its
history rendered. The page draws the persona as a picture (a bar per detection vector and per
score, chips for the pain points, the conversation as chat bubbles); the test checks that
drawing against the API's persona after the turn and after the reload, and a failure names the
screenshots the browser took. ``./dev test`` installs Chromium from Debian; a machine without it
FAILS this test with that message — it never skips. No browser is ever downloaded (no
``playwright install``): tests/interop/browser_check.mjs launches /usr/bin/chromium.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bevsession.models import SCORE_NAMES, VECTOR_NAMES
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


def run_browser(base_url: str, message: str, shots: Path) -> dict[str, Any]:
    """What browser_check.mjs saw; its screenshots go to *shots*."""
    profile = tempfile.mkdtemp(prefix="bevsession-chromium-")
    try:
        proc = subprocess.run(
            ["node", "browser_check.mjs", base_url, message, profile, str(shots)],
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
        pytest.fail(
            f"browser_check.mjs failed ({proc.returncode}):\n{proc.stderr[-4000:]}\n"
            f"screenshots: {shot_list(shots)}"
        )
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def shot_list(shots: Path) -> str:
    return ", ".join(str(p) for p in sorted(shots.glob("*.png"))) or f"none in {shots}"


@contextlib.contextmanager
def screenshots_on_failure(shots: Path) -> Iterator[None]:
    """A failed assertion names the browser's screenshots: the page as it looked."""
    try:
        yield
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nscreenshots of the page: {shot_list(shots)}") from exc


def percent(value: float) -> str:
    return f"{round(value * 100)}%"


def assert_the_persona_is_drawn(picture: dict[str, Any], persona: dict[str, Any]) -> None:
    """*picture* (browser_check.mjs's readPicture) draws *persona*: a bar for the overall
    confidence, per detection vector (its confidence) and per score, each filled to its share
    and saying its number in text and in ARIA, with plain-word labels; a chip per pain point."""
    vectors = persona["detection_vectors"]
    expected = {("overall", "overall_confidence"): persona["overall_confidence"]}
    expected |= {("vectors", name): vectors[f"{name}_confidence"] for name in VECTOR_NAMES}
    expected |= {("scores", name): persona[name] for name in SCORE_NAMES}
    bars = {(bar["list"], bar["name"]): bar for bar in picture["bars"]}
    assert list(bars) == list(expected), "one bar per vector and score, in the API's order"
    for key, value in expected.items():
        bar = bars[key]
        assert bar["valueNow"] == pytest.approx(value) and bar["valueMax"] == 1, bar
        assert bar["track"]["width"] > 50 and bar["track"]["height"] > 0, f"not drawn: {bar}"
        assert bar["fill"]["width"] == pytest.approx(value * bar["track"]["width"], abs=1.5), bar
        assert "_" not in bar["text"] and bar["label"] and bar["label"] in bar["text"], bar
        assert percent(value) in bar["text"] and percent(value) in bar["valueText"], bar

    role = bars[("vectors", "functional_role")]
    assert role["label"] == "Functional role", role
    role_confidence = percent(vectors["functional_role_confidence"])
    assert role["valueText"] == f"Sales, {role_confidence} confidence", role
    assert bars[("vectors", "org_type")]["label"] == "Organisation type"
    assert bars[("scores", "sales_focus_score")]["label"] == "Sales focus"
    assert bars[("scores", "mid_sized_score")]["label"] == "Mid-sized"
    unknown = bars[("vectors", "product_focus")]
    assert vectors["product_focus"] is None and "not yet known" in unknown["text"], unknown

    chips = picture["chips"]
    assert [chip["name"] for chip in chips] == persona["pain_points_detected"], chips
    confidence = persona["pain_points_confidence"]["roi_proof"]
    assert chips[0]["text"] == f"ROI proof {percent(confidence)}", chips
    assert all(chip["box"]["height"] > 0 and chip["box"]["width"] > 0 for chip in chips), chips


def assert_the_chat_is_drawn(picture: dict[str, Any], reply: str) -> None:
    """The turn as two bubbles: the visitor's on the right, the assistant's on the left, each in
    its own colour."""
    user, assistant = picture["bubbles"]
    assert (user["role"], user["text"]) == ("user", MESSAGE), user
    assert (assistant["role"], assistant["text"]) == ("assistant", reply), assistant
    assert user["box"]["height"] > 0 and assistant["box"]["height"] > 0, picture["bubbles"]
    assert user["box"]["right"] > assistant["box"]["right"], picture["bubbles"]
    assert user["box"]["left"] > assistant["box"]["left"], picture["bubbles"]
    assert user["background"] != assistant["background"], picture["bubbles"]


async def test_the_demo_page_chats_and_keeps_the_session_across_a_reload(
    server: RunningServer, tmp_path: Path
) -> None:
    ensure_browser()
    shots = tmp_path / "screenshots"
    shots.mkdir()
    result = run_browser(server.base_url, MESSAGE, shots)
    with screenshots_on_failure(shots):
        await check_the_run(server, result)


async def check_the_run(server: RunningServer, result: dict[str, Any]) -> None:
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

    # The picture: what the message taught (a role, an organisation type and size, a pain point)
    # is drawn after the turn and again after the reload, from the persona the API returns.
    persona = result["persona"]
    vectors = persona["detection_vectors"]
    assert (vectors["functional_role"], vectors["org_type"], vectors["org_size"]) == (
        "sales", "supplier", "craft"
    ), vectors  # fmt: skip
    assert persona["pain_points_detected"] == ["roi_proof"], persona
    assert persona["sales_focus_score"] > 0 and persona["overall_confidence"] > 0, persona
    for picture in (result["pictureAfterChat"], result["pictureAfterReload"]):
        assert_the_persona_is_drawn(picture, persona)
        assert_the_chat_is_drawn(picture, result["reply"])

    rows = await db_fetch(
        server,
        "select count(*) as n from bevsession.conversation_history where session_id = $1::uuid",
        sid,
    )
    assert rows[0]["n"] == 2, "the browser's turn is stored under the session it shows"
