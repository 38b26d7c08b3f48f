"""``touch_sessions``: the batched activity of reads an edge worker answered from checked cookies.

Each test names sessions the way a worker would (id → the ``last_activity_at`` the database
returned when it confirmed them) and checks what the database touched and which copies it
calls stale: gone, revoked, expired, busy (locked by a writer) or changed since the check.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import asyncpg
import pytest

from bevsession.errors import InvalidInput, PermissionDenied
from bevsession.models import MAX_TOUCH_BATCH
from bevsession.service import SessionService
from bevsession.transports.base import Service, Transport, Visitor


async def confirmed(service: SessionService) -> tuple[uuid.UUID, int]:
    """A session the way a worker holds it: the id and the ms its check returned."""
    session_id = uuid.uuid4()
    snap = await service.get_session(session_id)
    return session_id, snap.session.last_activity_at


async def backdate(owner: asyncpg.Connection, session_id: uuid.UUID, seconds: int) -> None:
    """Move the whole session (and its persona) *seconds* into the past."""
    shift = timedelta(seconds=seconds)
    await owner.execute(
        "update bevsession.sessions set created_at = created_at - $2::interval,"
        " last_activity_at = last_activity_at - $2::interval,"
        " last_message_at = last_message_at - $2::interval where id = $1",
        session_id,
        shift,
    )
    await owner.execute(
        "update bevsession.user_personas set last_updated = last_updated - $2::interval,"
        " created_at = created_at - $2::interval where session_id = $1",
        session_id,
        shift,
    )


async def last_activity_ms(owner: asyncpg.Connection, session_id: uuid.UUID) -> int:
    value = await owner.fetchval(
        "select bevsession.to_ms(last_activity_at) from bevsession.sessions where id = $1",
        session_id,
    )
    assert isinstance(value, int)
    return value


async def settled(
    local_service: SessionService, owner: asyncpg.Connection
) -> tuple[uuid.UUID, int]:
    """A confirmed session whose last change is well before its check (nothing to report)."""
    session_id = uuid.uuid4()
    await local_service.get_session(session_id)
    await backdate(owner, session_id, 30)
    snap = await local_service.get_session(session_id)  # the worker's check, now
    return session_id, snap.session.last_activity_at


# --- every transport -----------------------------------------------------------------------------
async def test_a_visitor_cannot_touch_sessions(transport: Transport) -> None:
    with pytest.raises(PermissionDenied):
        await transport.call(
            "touch_sessions",
            {"session_ids": [str(uuid.uuid4())], "seen_ms": [0]},
            identity=Visitor(uuid.uuid4()),
        )


async def test_unknown_sessions_are_stale_and_new_ones_touched(service: SessionService) -> None:
    missing = uuid.uuid4()
    new, seen = await confirmed(service)  # checked at its creation: creating is no change
    result = await service.touch_sessions({missing: 0, new: seen})
    assert result.touched == 1
    assert result.stale == [missing]


async def test_a_revoked_session_is_stale(service: SessionService) -> None:
    session_id, seen = await confirmed(service)
    await service.clear_session(session_id)
    result = await service.touch_sessions({session_id: seen})
    assert (result.touched, result.stale) == (0, [session_id])


async def test_bad_arguments_are_refused(service: SessionService, transport: Transport) -> None:
    too_many = {uuid.uuid4(): 0 for _ in range(MAX_TOUCH_BATCH + 1)}
    with pytest.raises(InvalidInput):
        await service.touch_sessions(too_many)
    with pytest.raises(InvalidInput):
        await service.touch_sessions({uuid.uuid4(): "soon"})  # type: ignore[dict-item]
    empty = await service.touch_sessions({})
    assert (empty.touched, empty.stale) == (0, [])
    for args in (
        {"session_ids": [str(uuid.uuid4())], "seen_ms": []},
        {"session_ids": [str(uuid.uuid4())], "seen_ms": [None]},
    ):
        with pytest.raises(InvalidInput) as info:
            await transport.call("touch_sessions", args, identity=Service())
        assert info.value.code == "22023"


# --- the local database (clocks moved, locks held) -----------------------------------------------
async def test_a_settled_session_is_touched(
    local_service: SessionService, owner: asyncpg.Connection
) -> None:
    session_id, seen = await settled(local_service, owner)
    await owner.execute(
        "update bevsession.sessions set last_activity_at = last_activity_at - interval '5 minutes'"
        " where id = $1",
        session_id,
    )
    before = await last_activity_ms(owner, session_id)
    result = await local_service.touch_sessions({session_id: seen})
    assert (result.touched, result.stale) == (1, [])
    assert await last_activity_ms(owner, session_id) >= before + 5 * 60_000 - 1000


async def test_a_change_after_the_check_is_stale(
    local_service: SessionService, owner: asyncpg.Connection
) -> None:
    session_id, seen = await settled(local_service, owner)
    await local_service.update_persona(session_id, {"craft_score": 0.4})  # another writer
    result = await local_service.touch_sessions({session_id: seen})
    assert (result.touched, result.stale) == (0, [session_id])

    chat_id, chat_seen = await settled(local_service, owner)
    await local_service.add_conversation_message(chat_id, "user", "hello")
    result = await local_service.touch_sessions({chat_id: chat_seen})
    assert (result.touched, result.stale) == (0, [chat_id])


async def test_expired_sessions_are_stale_and_not_revived(
    local_service: SessionService, owner: asyncpg.Connection
) -> None:
    idle, idle_seen = await settled(local_service, owner)
    old, old_seen = await settled(local_service, owner)
    await owner.execute(
        "update bevsession.sessions set last_activity_at = now() - interval '25 hours'"
        " where id = $1",
        idle,
    )  # the default idle timeout is 24 hours
    await owner.execute(
        "update bevsession.sessions set created_at = now() - interval '31 days' where id = $1", old
    )
    idle_before = await last_activity_ms(owner, idle)
    result = await local_service.touch_sessions({idle: idle_seen, old: old_seen})
    assert result.touched == 0 and set(result.stale) == {idle, old}
    assert await last_activity_ms(owner, idle) == idle_before, "an idle session must stay idle"


async def test_a_busy_session_is_stale_and_never_waited_for(
    local_service: SessionService, owner: asyncpg.Connection
) -> None:
    busy, busy_seen = await settled(local_service, owner)
    calm, calm_seen = await settled(local_service, owner)
    transaction = owner.transaction()
    await transaction.start()
    try:
        await owner.execute("select 1 from bevsession.sessions where id = $1 for update", busy)
        result = await asyncio.wait_for(
            local_service.touch_sessions({busy: busy_seen, calm: calm_seen}), timeout=5
        )
    finally:
        await transaction.rollback()
    assert (result.touched, result.stale) == (1, [busy])


async def test_the_oldest_check_of_a_repeated_id_decides(
    local_service: SessionService, owner: asyncpg.Connection
) -> None:
    session_id, seen = await settled(local_service, owner)
    await local_service.update_persona(session_id, {"craft_score": 0.4})
    changed_ms = await owner.fetchval(
        "select bevsession.to_ms(last_updated) from bevsession.user_personas where session_id = $1",
        session_id,
    )
    assert isinstance(changed_ms, int)
    ids = [str(session_id), str(session_id)]
    raw = await local_service.transport.call(
        "touch_sessions",
        {"session_ids": ids, "seen_ms": [changed_ms + 60_000, seen]},
        identity=Service(),
    )
    assert raw == {"touched": 0, "stale": [str(session_id)]}
