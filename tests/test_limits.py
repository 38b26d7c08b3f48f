"""python_client/bevsession/limits.py states the database's limits: each constant is the literal
of the domain CHECK its comment names (read back from pg_constraint of a migrated database), and
MAX_SIGNALS_PER_TURN is begin_chat_turn's own check, tested by calling it.
"""

from __future__ import annotations

import io
import json
import re
import tokenize
import uuid
from pathlib import Path

import asyncpg
import pytest

from bevsession import limits, models

LIMITS_SOURCE = Path(limits.__file__)
NOT_A_DOMAIN = {"MAX_SIGNALS_PER_TURN"}  # a literal in begin_chat_turn's body (tested below)


def domains_named_in_comments() -> dict[str, str]:
    """{constant: domain} from the ``# domain bevsession.<name>`` comment on each constant."""
    found: dict[str, str] = {}
    tokens = list(tokenize.generate_tokens(io.StringIO(LIMITS_SOURCE.read_text()).readline))
    for i, tok in enumerate(tokens):
        if tok.type != tokenize.COMMENT or not (
            m := re.match(r"#\s*domain (bevsession\.\w+)", tok.string)
        ):
            continue
        line = [t for t in tokens[:i] if t.start[0] == tok.start[0]]
        assert line and line[0].type == tokenize.NAME, tok.line
        found[line[0].string] = m[1]
    return found


DOMAINS = domains_named_in_comments()


def test_every_limit_names_its_domain() -> None:
    """No constant escapes the comparison below: each names a domain, or is tested by behaviour."""
    assert set(limits.__all__) == set(DOMAINS) | NOT_A_DOMAIN
    assert not set(DOMAINS) & NOT_A_DOMAIN
    for name in limits.__all__:
        assert isinstance(getattr(limits, name), int), name
        assert getattr(models, name) == getattr(limits, name), f"models re-exports {name}"


async def domain_checks(conn: asyncpg.Connection, domain: str) -> list[tuple[str, str]]:
    rows = await conn.fetch(
        "select c.conname, pg_get_constraintdef(c.oid) as def from pg_constraint c"
        " where c.contypid = $1::regtype and c.contype = 'c' order by c.conname",
        domain,
    )
    return [(r["conname"], r["def"]) for r in rows]


@pytest.mark.parametrize("name", sorted(DOMAINS))
async def test_limit_is_the_domain_check_literal(owner: asyncpg.Connection, name: str) -> None:
    value = getattr(limits, name)
    checks = await domain_checks(owner, DOMAINS[name])
    assert len(checks) == 1, f"{DOMAINS[name]}: expected one CHECK, found {checks}"
    ((conname, definition),) = checks
    # MAX_*: the upper bound "<= N"; MIN_*: the lower bound ">= N" (between a and b: both)
    operator = "<=" if name.startswith("MAX_") else ">="
    assert name.startswith(("MAX_", "MIN_")), name
    bounds = [int(n) for n in re.findall(rf"{operator} \(?(\d+)\)?", definition)]
    assert bounds == [value], f"{name} = {value}, but {DOMAINS[name]} is {definition}"
    # the constraint's name is the error message; it states the same number
    assert re.search(rf"\b{value}\b", conname), f"{DOMAINS[name]}: {conname!r} does not say {value}"


async def begin_turn_as_visitor(conn: asyncpg.Connection, signals: list[dict[str, str]]) -> str:
    """begin_chat_turn straight in SQL, as a visitor (no Python validation on the way)."""
    claims = json.dumps({"role": "session_visitor", "session_id": str(uuid.uuid4())})
    async with conn.transaction():
        await conn.execute("select set_config('request.jwt.claims', $1, true)", claims)
        await conn.execute("set local role session_visitor")
        result: str = await conn.fetchval(
            "select public.begin_chat_turn(content => 'hi', signals => $1::jsonb)::text",
            json.dumps(signals),
        )
    return result


async def test_max_signals_per_turn_is_begin_chat_turns(owner: asyncpg.Connection) -> None:
    n = limits.MAX_SIGNALS_PER_TURN
    signal = {"signal_type": "s", "signal_text": "t", "signal_strength": "weak"}

    accepted = json.loads(await begin_turn_as_visitor(owner, [signal] * n))
    assert accepted["persona"]["total_interactions"] == n

    with pytest.raises(asyncpg.PostgresError) as info:
        await begin_turn_as_visitor(owner, [signal] * (n + 1))
    assert info.value.sqlstate == "22023"
    assert info.value.args[0] == f"signals: at most {n} signals"

    definition = await owner.fetchval(
        "select pg_get_functiondef("
        "'public.begin_chat_turn(text, jsonb, integer, text)'::regprocedure)"
    )
    assert f"> {n} then" in definition
