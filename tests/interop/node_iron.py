"""Runs the real iron-session under Node for the interop tests, in batches: 8.0.4
(``iron.mjs``) and 9.0.1 (``iron9.mjs``, installed as the npm alias ``iron-session-9``).

``npm ci`` is run here when ``node_modules`` is missing or older than the lock, so plain
``pytest`` works as well as ``./dev test``. Anything missing is a test FAILURE with the command
that fixes it, never a skip: the interop proof must not silently disappear from CI.

iron-session 9.0.1 declares Node >= 22.13; it runs here on the Node the machine has (Debian's or
NodeSource's 20 at the time of writing, where ``npm ci`` only warns), through the same WebCrypto
calls and iron-webcrypto 2's own base64 (it uses ``Uint8Array.fromBase64`` only where a newer
Node has it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

INTEROP_DIR = Path(__file__).resolve().parent
# package folder under node_modules -> the version the tests pin
PINNED = {
    "iron-session": "8.0.4",
    "iron-webcrypto": "1.2.1",
    "iron-session-9": "9.0.1",
    "iron-session-9/node_modules/iron-webcrypto": "2.0.0",
    "cookie": "2.0.2",  # what iron-session 9 parses Cookie headers with
}
SCRIPTS = {8: "iron.mjs", 9: "iron9.mjs"}


def _installed_version(package: str) -> str | None:
    manifest = INTEROP_DIR / "node_modules" / package / "package.json"
    if not manifest.exists():
        return None
    version: str = json.loads(manifest.read_text())["version"]
    return version


def _stale() -> bool:
    marker = INTEROP_DIR / "node_modules" / ".package-lock.json"
    lock = INTEROP_DIR / "package-lock.json"
    return not marker.exists() or lock.stat().st_mtime > marker.stat().st_mtime


def ensure_node_modules() -> None:
    """Install the pinned packages if needed; fail the test with a clear message otherwise."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            pytest.fail(f"interop tests need `{tool}` (Node 20+): apt-get install nodejs npm")
    if _stale() or any(_installed_version(p) != v for p, v in PINNED.items()):
        proc = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=INTEROP_DIR,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if proc.returncode != 0:
            pytest.fail(
                f"`npm ci` in {INTEROP_DIR} failed ({proc.returncode}); the interop tests need "
                f"the pinned iron-session:\n{proc.stderr[-2000:]}"
            )
    wrong = {p: _installed_version(p) for p, v in PINNED.items() if _installed_version(p) != v}
    if wrong:
        pytest.fail(f"{INTEROP_DIR}/node_modules has {wrong}, the tests pin {PINNED}")


def run_iron(ops: list[dict[str, Any]], version: int = 8) -> list[dict[str, Any]]:
    """Run a batch of operations through iron-session *version* (8: tests/interop/iron.mjs,
    9: tests/interop/iron9.mjs); one result per op."""
    script = SCRIPTS[version]
    proc = subprocess.run(
        ["node", script],
        cwd=INTEROP_DIR,
        input=json.dumps({"ops": ops}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"node {script} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    results: list[dict[str, Any]] = json.loads(proc.stdout)["results"]
    assert len(results) == len(ops)
    return results
