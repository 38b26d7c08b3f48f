"""SessionService against a real database, once per transport (postgres, supabase, supabase-live).

Every operation is run and its result checked against the persona rules of docs/rpc-api.md, and
every result model is checked to dump back to exactly the JSON the SQL function returned.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import pytest
from pydantic import BaseModel

from bevsession.errors import InvalidInput, SessionNotFound, SessionRevoked
from bevsession.models import (
    VECTOR_NAMES,
    ChatTurnBegin,
    ClearResult,
    ForgetResult,
    HistoryPage,
    MessageResult,
    PersonaScores,
    PersonaSignal,
    PersonaUpdateResult,
    SessionSnapshot,
    SessionStats,
    SignalResult,
)
from bevsession.service import SessionService
from bevsession.transports.base import Service, Transport, Visitor


def without_session_persona(dumped: dict[str, Any]) -> dict[str, Any]:
    """A result's dump minus the persona the model copies into its session."""
    if isinstance(dumped.get("session"), dict):
        dumped["session"] = {k: v for k, v in dumped["session"].items() if k != "persona"}
    return dumped


def assert_round_trip(model: type[BaseModel], raw: Any) -> None:
    parsed = model.model_validate(raw)
    assert without_session_persona(parsed.model_dump(mode="json")) == raw


def sid() -> uuid.UUID:
    return uuid.uuid4()


# --- get_session ---------------------------------------------------------------------------------
async def test_get_session_creates_then_touches(service: SessionService) -> None:
    session_id = sid()
    first = await service.get_session(session_id)
    assert first.created is True
    assert first.session.session_id == session_id
    assert first.session.message_count == 0
    assert first.session.current_mode == "fresh"
    assert first.persona == PersonaScores()  # the seed's DEFAULT_PERSONA_SCORES
    assert first.session.persona == first.persona

    second = await service.get_session(session_id)
    assert second.created is False
    assert second.session.created_at == first.session.created_at
    assert second.session.last_activity_at >= first.session.last_activity_at

    untouched = await service.get_session(session_id, touch=False)
    assert untouched.session.last_activity_at == second.session.last_activity_at


async def test_session_data_has_the_seed_camel_case_names(service: SessionService) -> None:
    snap = await service.get_session(sid())
    seed = snap.session.model_dump(mode="json", by_alias=True)
    names = {"sessionId", "createdAt", "lastActivityAt", "messageCount", "currentMode",
             "hasCompletedOnboarding", "hasBrochure", "isDataConnected", "persona"}  # fmt: skip
    assert names <= set(seed)
    assert type(snap.session).model_validate(seed) == snap.session


# --- update_persona ------------------------------------------------------------------------------
async def test_update_persona_sets_clamps_merges_and_counts(service: SessionService) -> None:
    session_id = sid()
    await service.get_session(session_id)
    result = await service.update_persona(
        session_id,
        {
            "sales_focus_score": 0.85,
            "supplier_score": 1.7,  # clamped to 1
            "craft_score": -3,  # clamped to 0
            "pain_points_detected": ["execution_blind_spot"],
            "pain_points_confidence": {"execution_blind_spot": 0.6},
            "questions_asked": ["how do you prove roi?"],
            "current_mode": "returning",
            "has_completed_onboarding": True,
        },
    )
    persona = result.persona
    assert persona.sales_focus_score == 0.85
    assert persona.supplier_score == 1.0
    assert persona.craft_score == 0.0
    assert persona.pain_points_detected == ["execution_blind_spot"]
    assert persona.pain_points_confidence == {"execution_blind_spot": 0.6}
    assert persona.questions_asked == ["how do you prove roi?"]
    assert persona.total_interactions == 1
    # 0.5·V + 0.3·S + 0.2·P with V = 0, S = (0.85 + 1 + 0)/3, P = 1/3
    assert persona.overall_confidence == round(0.3 * (0.85 + 1.0) / 3 + 0.2 / 3, 4)
    assert result.session.current_mode == "returning"
    assert result.session.has_completed_onboarding is True

    again = await service.update_persona(
        session_id, {"pain_points_detected": ["roi_proof", "execution_blind_spot"]}
    )
    assert again.persona.pain_points_detected == ["execution_blind_spot", "roi_proof"]
    assert again.persona.sales_focus_score == 0.85  # untouched keys stay
    assert again.persona.total_interactions == 2


async def test_update_persona_needs_an_existing_session(service: SessionService) -> None:
    with pytest.raises(SessionNotFound) as info:
        await service.update_persona(sid(), {"sales_focus_score": 0.5})
    assert info.value.code == "PT404"


# --- record_persona_signal -----------------------------------------------------------------------
async def test_record_persona_signal_applies_the_rules(service: SessionService) -> None:
    session_id = sid()
    await service.get_session(session_id)
    signal = PersonaSignal(
        signal_type="role_mention",
        signal_text="I run sales for a brewery",
        signal_strength="strong",
        pain_points_inferred=["roi_proof"],
        score_updates={"sales_focus_score": 0.3},
        vector="functional_role",
        vector_value="sales",
    )
    result = await service.record_persona_signal(session_id, signal)
    p = result.persona
    assert p.sales_focus_score == 0.3
    assert p.pain_points_detected == ["roi_proof"]
    assert p.pain_points_confidence == {"roi_proof": 0.5}  # 0 + 0.5·(1 - 0)
    dv = p.detection_vectors
    assert (dv.functional_role, dv.functional_role_confidence) == ("sales", 0.5)
    assert len(dv.functional_role_history) == 1
    assert dv.functional_role_history[0].value == "sales"
    assert dv.vectors_updated_at > 0
    # V = 0.5/4, S = 0.3/3, P = 1/3
    assert p.overall_confidence == round(0.5 * 0.125 + 0.3 * 0.1 + 0.2 / 3, 4)
    assert result.signal.confidence_before == 0
    assert result.signal.confidence_after == p.overall_confidence
    assert result.signal.signal_type == "role_mention"

    # same value again reinforces: 0.5 + 0.5·(1 - 0.5) = 0.75; a different weak value loses
    await service.record_persona_signal(session_id, signal)
    weak = signal.model_copy(update={"signal_strength": "weak", "vector_value": "marketing"})
    last = await service.record_persona_signal(session_id, weak)
    dv = last.persona.detection_vectors
    assert dv.functional_role == "sales"
    assert dv.functional_role_confidence == round(0.75 * 0.9, 4)
    assert [h.value for h in dv.functional_role_history] == ["sales", "sales", "marketing"]
    assert last.persona.total_interactions == 3


async def test_detection_history_is_capped_at_ten(service: SessionService) -> None:
    session_id = sid()
    await service.get_session(session_id)
    signal = {"signal_type": "t", "signal_text": "wine", "signal_strength": "weak",
              "vector": "product_focus", "vector_value": "wine"}  # fmt: skip
    for _ in range(12):
        result = await service.record_persona_signal(session_id, signal)
    assert len(result.persona.detection_vectors.product_focus_history) == 10


# --- messages and history ------------------------------------------------------------------------
async def test_add_conversation_message_snapshots_and_counts(service: SessionService) -> None:
    session_id = sid()
    await service.get_session(session_id)
    await service.update_persona(session_id, {"distributor_score": 0.4})
    spec = {"layout": "brochure", "sections": [{"title": "ROI", "items": [1, 2.5, None]}]}
    result = await service.add_conversation_message(
        session_id, "assistant", "Here is your brochure", "returning", spec, "2 min", ["roi_proof"]
    )
    msg = result.message
    assert msg.message_role == "assistant"
    assert msg.message_content == "Here is your brochure"
    assert msg.generation_mode == "returning"
    assert msg.ui_specification == spec
    assert msg.estimated_read_time == "2 min"
    assert msg.pain_points_inferred == ["roi_proof"]
    assert msg.session_id == session_id
    assert result.session.message_count == 1
    assert result.session.last_message == "Here is your brochure"
    assert result.session.last_message_at == msg.created_at
    (stored,) = (await service.get_conversation_history(session_id)).messages
    assert stored.id == msg.id
    assert stored.persona_snapshot is not None
    assert stored.persona_snapshot.distributor_score == 0.4


async def test_history_pages_newest_first_returned_oldest_first(service: SessionService) -> None:
    session_id = sid()
    await service.get_session(session_id)
    for i in range(7):
        await service.add_conversation_message(session_id, "user", f"m{i}")
    page = await service.get_conversation_history(session_id, limit=3)
    assert [m.message_content for m in page.messages] == ["m4", "m5", "m6"]
    assert page.next_before == page.messages[0].seq
    page2 = await service.get_conversation_history(session_id, limit=3, before=page.next_before)
    assert [m.message_content for m in page2.messages] == ["m1", "m2", "m3"]
    page3 = await service.get_conversation_history(session_id, limit=3, before=page2.next_before)
    assert [m.message_content for m in page3.messages] == ["m0"]
    assert page3.next_before is None
    everything = await service.get_conversation_history(session_id)
    assert len(everything.messages) == 7
    assert everything.next_before is None


# --- the chat turn -------------------------------------------------------------------------------
async def test_chat_turn_in_two_calls(service: SessionService) -> None:
    session_id = sid()
    signals = [
        PersonaSignal(signal_type="org_mention", signal_text="we are a brewery",
                      signal_strength="strong", vector="org_type", vector_value="supplier",
                      score_updates={"supplier_score": 0.2}),
        PersonaSignal(signal_type="pain_point_mention", signal_text="prove roi",
                      signal_strength="medium", pain_points_inferred=["roi_proof"]),
    ]  # fmt: skip
    text = "We are a brewery; prove ROI"
    begun = await service.begin_chat_turn(session_id, text, signals=signals)
    assert begun.created is True
    assert begun.persona.detection_vectors.org_type == "supplier"
    assert begun.persona.supplier_score == 0.2
    assert begun.persona.total_interactions == 2
    assert begun.message.message_role == "user"
    assert begun.message.pain_points_inferred == ["roi_proof"]
    (stored,) = (await service.get_conversation_history(session_id)).messages
    assert stored.id == begun.message.id
    assert stored.persona_snapshot == begun.persona  # post-signal snapshot
    assert [
        (m.message_role, m.message_content, m.token_count, m.created_at)
        for m in begun.history.messages
    ] == [
        (begun.message.message_role, begun.message.message_content, begun.message.token_count,
         begun.message.created_at)
    ]  # fmt: skip
    assert begun.session.persona == begun.persona

    finished = await service.finish_chat_turn(
        session_id, "Happy to help", ui_specification={"cta": "demo"}, generation_mode="fresh"
    )
    assert finished.message.message_role == "assistant"
    assert finished.session.message_count == 2

    second = await service.begin_chat_turn(session_id, "and distributors?", history_limit=2)
    assert second.created is False
    contents = [m.message_content for m in second.history.messages]
    assert contents == ["Happy to help", "and distributors?"]
    assert second.history.next_before is not None


PROMPT_FIELDS = {"message_role", "message_content", "generation_mode", "token_count", "created_at"}


async def test_chat_turn_history_holds_prompt_messages_only(transport: Transport) -> None:
    """begin_chat_turn's history: exactly what a prompt reads, no ids, UI spec or snapshot; the
    message a call returns has no snapshot either; history pages keep the snapshots."""
    me = Visitor(sid())

    async def call(fn: str, args: dict[str, Any]) -> Any:
        return await transport.call(fn, args, identity=me)

    signal = {
        "signal_type": "s",
        "signal_text": "t",
        "signal_strength": "strong",
        "vector": "org_type",
        "vector_value": "supplier",
        "pain_points_inferred": ["a_b"],
    }
    first = await call(
        "begin_chat_turn", {"content": "hi", "signals": [signal], "generation_mode": "fresh"}
    )
    reply = await call(
        "finish_chat_turn",
        {
            "content": "hello",
            "ui_specification": {"k": 1},
            "generation_mode": "fresh",
            "estimated_read_time": "1 min",
        },
    )
    added = await call("add_conversation_message", {"role": "system", "content": "ctx"})
    second = await call("begin_chat_turn", {"content": "more", "history_limit": 10})
    for result in (first, reply, added, second):
        assert "persona_snapshot" not in result["message"]
    for turn, expected in ((first, ["hi"]), (second, ["hi", "hello", "ctx", "more"])):
        messages = turn["history"]["messages"]
        assert [m["message_content"] for m in messages] == expected
        for m in messages:
            assert set(m) == PROMPT_FIELDS, m
    last = second["history"]["messages"][-1]
    assert last == {k: second["message"][k] for k in PROMPT_FIELDS}
    assert second["history"]["messages"][1]["generation_mode"] == "fresh"
    assert ChatTurnBegin.model_validate(second).history.messages[1].message_role == "assistant"

    page = await call("get_conversation_history", {"history_limit": 10})
    assert [m["message_content"] for m in page["messages"]] == ["hi", "hello", "ctx", "more"]
    assert all(isinstance(m["persona_snapshot"], dict) for m in page["messages"])
    assert page["messages"][0]["persona_snapshot"] == first["persona"]


async def test_user_message_and_reply_store_the_same_snapshot(
    local_service: SessionService, owner: asyncpg.Connection
) -> None:
    """The snapshot is built once per turn: the reply stores its turn's user message snapshot,
    even when the persona changed between begin and finish."""
    session_id = sid()
    begun = await local_service.begin_chat_turn(
        session_id, "we brew beer",
        signals=[{"signal_type": "org", "signal_text": "brewery", "signal_strength": "strong",
                  "vector": "org_type", "vector_value": "supplier",
                  "score_updates": {"supplier_score": 0.3}}],
    )  # fmt: skip
    changed = await local_service.update_persona(session_id, {"sales_focus_score": 0.9})
    assert changed.persona != begun.persona
    await local_service.finish_chat_turn(session_id, "cheers")

    rows = await owner.fetch(
        "select message_role::text as role, persona_snapshot::text as snapshot"
        " from bevsession.conversation_history where session_id = $1 order by seq",
        session_id,
    )
    assert [r["role"] for r in rows] == ["user", "assistant"]
    user_snapshot, reply_snapshot = (json.loads(r["snapshot"]) for r in rows)
    assert reply_snapshot == user_snapshot
    assert PersonaScores.model_validate(user_snapshot) == begun.persona

    # a second turn takes a new snapshot (the persona as it is now), and its reply that one
    second = await local_service.begin_chat_turn(session_id, "and sales?")
    await local_service.finish_chat_turn(session_id, "sure")
    rows = await owner.fetch(
        "select persona_snapshot::text as snapshot from bevsession.conversation_history"
        " where session_id = $1 order by seq offset 2",
        session_id,
    )
    user_snapshot, reply_snapshot = (json.loads(r["snapshot"]) for r in rows)
    assert reply_snapshot == user_snapshot
    assert PersonaScores.model_validate(user_snapshot) == second.persona
    assert second.persona.sales_focus_score == 0.9


async def test_brief_chat_turn_reads_what_the_full_one_holds(service: SessionService) -> None:
    """The lean results the edge worker uses: the same session, persona and history window."""
    session_id = sid()
    signal = PersonaSignal(signal_type="org_mention", signal_text="we are a brewery",
                           signal_strength="strong", vector="org_type", vector_value="supplier",
                           score_updates={"supplier_score": 0.2})  # fmt: skip
    first = await service.begin_chat_turn_brief(session_id, "We are a brewery", signals=[signal])
    assert first.session.session_id == session_id
    assert first.session.message_count == 1
    assert first.session.persona is None  # the brief result does not copy it there
    assert first.persona.detection_vectors.org_type == "supplier"
    assert first.persona.detection_vectors.org_type_history  # histories are still parsed
    assert [(m.message_role, m.message_content) for m in first.history.messages] == [
        ("user", "We are a brewery")
    ]
    done = await service.finish_chat_turn_brief(session_id, "Cheers", generation_mode="fresh")
    assert done.session.message_count == 2
    assert done.session.last_message == "Cheers"

    second = await service.begin_chat_turn_brief(session_id, "and distributors?", history_limit=2)
    page = await service.get_conversation_history(session_id, limit=2)
    snap = await service.get_session(session_id, touch=False)
    assert second.persona == snap.persona
    assert second.session == snap.session.model_copy(update={"persona": None})
    assert [
        (m.message_role, m.message_content, m.created_at, m.generation_mode, m.token_count)
        for m in second.history.messages
    ] == [
        (m.message_role, m.message_content, m.created_at, m.generation_mode, m.token_count)
        for m in page.messages
    ]
    assert [m.generation_mode for m in second.history.messages] == ["fresh", None]


async def test_read_session_reads_what_get_session_holds_and_writes_nothing(
    service: SessionService,
) -> None:
    """The cold read: no row → nothing (adopt it); else the session and the persona's summary
    as get_session has them (histories and questions at their defaults), nothing touched."""
    session_id = sid()
    missing = await service.read_session(session_id)
    assert missing.session is None and missing.persona is None
    with pytest.raises(SessionNotFound):
        await service.update_persona(session_id, {"craft_score": 0.1})  # read created nothing
    signal = PersonaSignal(signal_type="role_mention", signal_text="I run sales",
                           signal_strength="strong", vector="functional_role",
                           vector_value="sales")  # fmt: skip
    await service.begin_chat_turn(session_id, "I run sales", signals=[signal])
    full = await service.get_session(session_id, touch=False)
    read = await service.read_session(session_id)
    assert read.session == full.session.model_copy(update={"persona": None, "last_message": None})
    assert read.persona is not None and read.settled is True
    assert full.persona.detection_vectors.functional_role_history  # the summary leaves it out
    summary = full.persona.model_copy(
        update={
            "questions_asked": [],
            "detection_vectors": full.persona.detection_vectors.model_copy(
                update={f"{vector}_history": [] for vector in VECTOR_NAMES}
            ),
        }
    )
    assert read.persona == summary
    assert read.read_at >= full.session.last_activity_at
    again = await service.get_session(session_id, touch=False)
    assert again.session.last_activity_at == full.session.last_activity_at, "read touches nothing"
    await service.clear_session(session_id)
    with pytest.raises(SessionRevoked):
        await service.read_session(session_id)


# --- clear and forget ----------------------------------------------------------------------------
async def test_clear_session_revokes_for_good(service: SessionService) -> None:
    session_id = sid()
    await service.get_session(session_id)
    cleared = await service.clear_session(session_id)
    assert cleared.session_id == session_id
    again = await service.clear_session(session_id)  # idempotent
    assert again.revoked_at == cleared.revoked_at
    for call in (
        lambda: service.get_session(session_id),
        lambda: service.begin_chat_turn(session_id, "hi"),
        lambda: service.add_conversation_message(session_id, "user", "hi"),
        lambda: service.get_conversation_history(session_id),
        lambda: service.update_persona(session_id, {"craft_score": 0.1}),
    ):
        with pytest.raises(SessionRevoked) as info:
            await call()
        assert info.value.code == "PT403"


async def test_forget_session_erases_and_keeps_a_tombstone(service: SessionService) -> None:
    session_id = sid()
    await service.begin_chat_turn(
        session_id,
        "hello",
        signals=[{"signal_type": "x", "signal_text": "y", "signal_strength": "weak"}],
    )
    await service.finish_chat_turn(session_id, "hi there")
    forgotten = await service.forget_session(session_id)
    assert forgotten.session_id == session_id
    assert forgotten.deleted.model_dump() == {"messages": 2, "signals": 1, "personas": 1}
    again = await service.forget_session(session_id)
    assert again.deleted.model_dump() == {"messages": 0, "signals": 0, "personas": 0}
    with pytest.raises(SessionRevoked):
        await service.get_session(session_id)


# --- admin ---------------------------------------------------------------------------------------
async def test_admin_session_stats_counts(service: SessionService) -> None:
    before = await service.admin_session_stats()
    a, b = sid(), sid()
    await service.begin_chat_turn(a, "one")
    await service.get_session(b)
    await service.clear_session(b)
    after = await service.admin_session_stats()
    assert after.sessions.total - before.sessions.total == 2
    assert after.sessions.revoked - before.sessions.revoked == 1
    assert after.messages - before.messages == 1
    assert after.personas - before.personas == 2


# --- input validation ----------------------------------------------------------------------------
async def test_python_refuses_bad_input_before_any_io(service: SessionService) -> None:
    session_id = sid()
    x = {"signal_type": "x", "signal_text": "y"}
    bad_calls = [
        lambda: service.update_persona(session_id, {"overall_confidence": 1}),
        lambda: service.update_persona(session_id, {"current_mode": "asleep"}),
        lambda: service.record_persona_signal(session_id, {**x, "signal_strength": "huge"}),
        lambda: service.record_persona_signal(
            session_id, {**x, "signal_strength": "weak", "score_updates": {"charm_score": 0.1}}),
        lambda: service.add_conversation_message(session_id, "robot", "hi"),
        lambda: service.add_conversation_message(session_id, "user", "x" * 8001),
        lambda: service.add_conversation_message(
            session_id, "user", "x", pain_points_inferred=["Not Snake"]),
        lambda: service.get_conversation_history(session_id, limit=0),
        lambda: service.begin_chat_turn(session_id, "x", history_limit=201),
        lambda: service.begin_chat_turn(session_id, "x", generation_mode="Bad Mode"),
    ]  # fmt: skip
    for call in bad_calls:
        with pytest.raises(InvalidInput) as info:
            await call()
        assert info.value.code == "22023"
    with pytest.raises(InvalidInput):
        await service.get_session("not-a-uuid")


# --- the JSON contract ---------------------------------------------------------------------------
async def test_models_dump_back_to_the_sql_json(transport: Transport) -> None:
    """Each result model reproduces the SQL function's JSON exactly (no field lost or added)."""
    me = Visitor(sid())

    async def call(fn: str, args: dict[str, Any], identity: Any = me) -> Any:
        return await transport.call(fn, args, identity=identity)

    assert_round_trip(SessionSnapshot, await call("get_session", {"touch": True}))
    assert_round_trip(
        PersonaUpdateResult,
        await call("update_persona", {"updates": {"sales_focus_score": 0.25, "has_brochure": True,
                                                  "last_generated_brochure_id": "b-1",
                                                  "last_brochure_generated_at": 1700000000123}}),
    )  # fmt: skip
    assert_round_trip(
        SignalResult,
        await call("record_persona_signal", {
            "signal_type": "t", "signal_text": "ops", "signal_strength": "medium",
            "pain_points_inferred": ["a_b"], "score_updates": {"operations_focus_score": 0.1},
            "vector": "functional_role", "vector_value": "operations"}),
    )  # fmt: skip
    assert_round_trip(
        MessageResult,
        await call("add_conversation_message", {"role": "system", "content": "ctx",
                                                "ui_specification": {"k": [1, "v"]}}),
    )  # fmt: skip
    assert_round_trip(
        ChatTurnBegin,
        await call("begin_chat_turn", {"content": "hi", "signals": [
            {"signal_type": "s", "signal_text": "t", "signal_strength": "weak",
             "vector": "org_size", "vector_value": "craft"}]}),
    )  # fmt: skip
    assert_round_trip(MessageResult, await call("finish_chat_turn", {"content": "ok"}))
    assert_round_trip(HistoryPage, await call("get_conversation_history", {"history_limit": 2}))
    assert_round_trip(SessionStats, await call("admin_session_stats", {}, Service()))
    assert_round_trip(ClearResult, await call("clear_session", {}))
    assert_round_trip(ForgetResult, await call("forget_session", {}))


async def test_signal_model_matches_the_sql_normalisation(service: SessionService) -> None:
    """A PersonaSignal's JSON is what begin_chat_turn's signals elements accept."""
    session_id = sid()
    signal = PersonaSignal(signal_type="x", signal_text="t", signal_strength="weak",
                           pain_points_inferred=["a", "a", "b"])  # fmt: skip
    begun = await service.begin_chat_turn(session_id, "hi", signals=[signal])
    assert begun.persona.pain_points_detected == ["a", "b"]
