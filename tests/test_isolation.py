"""Session A can never see or change session B's data, on either transport, even all at once.

The service gives a visitor call no way to name another session (the id becomes the claims, RLS
keys on them); these tests check the outcome from the outside: every operation for A leaves B's
rows exactly as they were and returns nothing of B's, and many sessions interleaved over one
connection pool each land in their own session.
"""

from __future__ import annotations

import asyncio
import random
import uuid

import asyncpg
import pytest

from bevsession.errors import SessionNotFound, SessionRevoked
from bevsession.service import SessionService


async def snapshot_of(db_dsn: str, session_id: uuid.UUID) -> dict[str, object]:
    """Every row of *session_id*, read as superuser (bypassing RLS)."""
    conn = await asyncpg.connect(db_dsn)
    try:
        return {
            table: [dict(r) for r in await conn.fetch(
                f"select * from bevsession.{table} where {key} = $1 order by 1", session_id  # noqa: S608
            )]
            for table, key in (("sessions", "id"), ("user_personas", "session_id"),
                               ("conversation_history", "session_id"),
                               ("persona_signals", "session_id"))
        }  # fmt: skip
    finally:
        await conn.close()


async def test_every_operation_of_a_leaves_b_alone(
    local_service: SessionService, db_dsn: str
) -> None:
    service = local_service
    a, b = uuid.uuid4(), uuid.uuid4()
    await service.begin_chat_turn(
        b, "B's secret message",
        signals=[{"signal_type": "b_only", "signal_text": "B evidence",
                  "signal_strength": "strong", "vector": "org_type",
                  "vector_value": "b_secret_kind", "pain_points_inferred": ["b_pain"]}],
    )  # fmt: skip
    await service.finish_chat_turn(b, "reply to B")
    await service.update_persona(b, {"large_score": 0.9, "questions_asked": ["B question"]})
    before = await snapshot_of(db_dsn, b)

    # A does everything it can
    outputs = [
        await service.get_session(a),
        await service.update_persona(a, {"sales_focus_score": 0.1,
                                         "pain_points_detected": ["a_pain"]}),
        await service.record_persona_signal(a, {"signal_type": "a", "signal_text": "A",
                                                "signal_strength": "weak"}),
        await service.add_conversation_message(a, "user", "A says hi"),
        await service.get_conversation_history(a, limit=200),
        await service.get_conversation_history(a, limit=200, before=2**62),
        await service.begin_chat_turn(a, "A again", history_limit=200),
        await service.finish_chat_turn(a, "reply to A"),
        await service.clear_session(a),
        await service.forget_session(a),
    ]  # fmt: skip
    text = " ".join(o.model_dump_json() for o in outputs)
    for secret in (str(b), "B's secret", "reply to B", "b_pain", "b_secret_kind", "B question"):
        assert secret not in text
    assert await snapshot_of(db_dsn, b) == before


async def test_a_cannot_continue_b_after_b_is_cleared(service: SessionService) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    await service.get_session(a)
    await service.get_session(b)
    await service.clear_session(b)
    with pytest.raises(SessionRevoked):
        await service.get_session(b)
    assert (await service.get_session(a)).session.revoked_at is None  # A unaffected
    with pytest.raises(SessionNotFound):  # and a new id has nothing of anyone's
        await service.get_conversation_history(uuid.uuid4())


@pytest.mark.parametrize("sessions", [40])
async def test_interleaved_sessions_land_in_their_own_rows(
    service: SessionService, sessions: int
) -> None:
    """40 sessions x 5 calls, all gathered at once over one pool: nothing crosses over."""
    ids = [uuid.uuid4() for _ in range(sessions)]
    await asyncio.gather(*(service.get_session(i) for i in ids))

    async def five_calls(i: int, session_id: uuid.UUID) -> list[object]:
        return [
            await service.add_conversation_message(session_id, "user", f"{session_id} first"),
            await service.record_persona_signal(session_id, {
                "signal_type": f"s{i}", "signal_text": str(session_id), "signal_strength": "weak",
                "pain_points_inferred": [f"p{i}"]}),
            await service.update_persona(session_id, {"questions_asked": [str(session_id)]}),
            await service.add_conversation_message(session_id, "assistant", f"{session_id} second"),
            await service.get_conversation_history(session_id),
        ]  # fmt: skip

    # interleave: every session's calls run concurrently with every other session's
    order = list(enumerate(ids))
    random.shuffle(order)
    results = await asyncio.gather(*(five_calls(i, sid) for i, sid in order))

    for (i, session_id), calls in zip(order, results, strict=True):
        first, signal, update, second, history = calls
        assert first.session.session_id == session_id  # type: ignore[attr-defined]
        assert signal.persona.pain_points_detected == [f"p{i}"]  # type: ignore[attr-defined]
        assert update.persona.questions_asked == [str(session_id)]  # type: ignore[attr-defined]
        assert second.session.message_count == 2  # type: ignore[attr-defined]
        contents = [m.message_content for m in history.messages]  # type: ignore[attr-defined]
        assert contents == [f"{session_id} first", f"{session_id} second"]
        assert {m.session_id for m in history.messages} == {session_id}  # type: ignore[attr-defined]
