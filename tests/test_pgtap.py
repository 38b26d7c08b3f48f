"""The pgTAP suite (``supabase/tests/database/*.test.sql``) run by pg_prove.

Run as ``supabase test db`` runs it, against this test's throwaway database (cloned from the
migrated template), so the database tests are part of every ``pytest`` run and pytest's closing
line covers them too. A failure shows pg_prove's whole output: which file, which assertion,
have/want.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from bevsession.migrations import project_dir

MIN_ASSERTIONS = 60


def test_pgtap_suite_passes(pg_env: dict[str, str]) -> None:
    pg_prove = shutil.which("pg_prove")
    if pg_prove is None:
        pytest.fail(
            "pg_prove is not installed: apt-get install -y libtap-parser-sourcehandler-pgtap-perl "
            "postgresql-15-pgtap (./dev test installs both)"
        )
    tests = project_dir() / "supabase" / "tests"
    assert sorted(tests.rglob("*.test.sql")), f"no pgTAP files under {tests}"

    # The flags `supabase test db` uses; the connection comes from PGHOST/PGPORT/PGUSER/PGDATABASE
    # (pg_prove's -d URL parsing breaks on '=').
    proc = subprocess.run(
        [pg_prove, "--ext", ".pg", "--ext", ".sql", "-r", str(tests)],
        env=pg_env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = f"{proc.stdout}\n{proc.stderr}"
    assert proc.returncode == 0, f"pg_prove failed (exit {proc.returncode}):\n{output}"
    assert "Result: PASS" in proc.stdout, output

    summary = re.search(r"Files=(\d+), Tests=(\d+)", proc.stdout)
    assert summary, f"no pg_prove summary line:\n{output}"
    assert int(summary[2]) >= MIN_ASSERTIONS, f"only {summary[2]} pgTAP assertions ran:\n{output}"
