"""The models: the seed's shapes and vocabularies, forward-compatible results, strict inputs."""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from bevsession import models
from bevsession.models import (
    SCORE_NAMES,
    VECTOR_NAMES,
    NewMessage,
    PainPoint,
    PersonaScores,
    PersonaSignal,
    PersonaUpdate,
    SessionData,
)

SEED_DEFAULT_PERSONA = {
    "detection_vectors": {
        "functional_role": None, "functional_role_confidence": 0, "functional_role_history": [],
        "org_type": None, "org_type_confidence": 0, "org_type_history": [],
        "org_size": None, "org_size_confidence": 0, "org_size_history": [],
        "product_focus": None, "product_focus_confidence": 0, "product_focus_history": [],
        "vectors_updated_at": 0,
    },
    "supplier_score": 0, "distributor_score": 0, "craft_score": 0, "mid_sized_score": 0,
    "large_score": 0, "sales_focus_score": 0, "marketing_focus_score": 0,
    "operations_focus_score": 0, "compliance_focus_score": 0, "pain_points_detected": [],
    "pain_points_confidence": {}, "overall_confidence": 0, "total_interactions": 0,
}  # fmt: skip


def test_default_persona_is_the_seeds() -> None:
    dumped = PersonaScores().model_dump()
    assert dumped.pop("questions_asked") == []  # the seed's table column, not in its interface
    assert dumped == SEED_DEFAULT_PERSONA
    assert PersonaScores.model_validate(SEED_DEFAULT_PERSONA) == PersonaScores()


def test_session_data_camel_case_both_ways() -> None:
    sid = uuid.uuid4()
    seed = {"sessionId": str(sid), "createdAt": 1, "lastActivityAt": 2, "messageCount": 3,
            "currentMode": "returning", "hasCompletedOnboarding": True, "hasBrochure": False,
            "isDataConnected": False, "persona": SEED_DEFAULT_PERSONA}  # fmt: skip
    session = SessionData.model_validate(seed)
    assert session.session_id == sid
    assert session.persona == PersonaScores()
    assert SessionData.model_validate(session.model_dump()) == session
    out = session.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert out["sessionId"] == str(sid)
    assert out["currentMode"] == "returning"
    with pytest.raises(ValidationError):
        SessionData.model_validate({**seed, "currentMode": "asleep"})


def test_results_ignore_new_keys_but_check_ranges() -> None:
    assert PersonaScores.model_validate({"sales_focus_score": 0.5, "added_later": 1})
    with pytest.raises(ValidationError):
        PersonaScores.model_validate({"sales_focus_score": 1.5})
    with pytest.raises(ValidationError):
        PersonaScores.model_validate({"total_interactions": -1})


def test_signal_rules() -> None:
    ok = PersonaSignal(signal_type="role_mention", signal_text="sales", signal_strength="strong",
                       vector="functional_role", vector_value="sales",
                       score_updates={"sales_focus_score": -0.2})  # fmt: skip
    assert ok.to_rpc() == {
        "signal_type": "role_mention", "signal_text": "sales", "signal_strength": "strong",
        "pain_points_inferred": [], "score_updates": {"sales_focus_score": -0.2},
        "vector": "functional_role", "vector_value": "sales",
    }  # fmt: skip
    base: dict[str, Any] = {"signal_type": "t", "signal_text": "x", "signal_strength": "weak"}
    bad: list[dict[str, Any]] = [
        {**base, "signal_strength": "loud"},
        {**base, "signal_type": "Role"},
        {**base, "vector": "org_type"},
        {**base, "vector_value": "sales"},
        {**base, "vector": "mood", "vector_value": "happy"},
        {**base, "score_updates": {"charm_score": 0.1}},
        {**base, "score_updates": {"craft_score": 1.5}},
        {**base, "pain_points_inferred": ["Has Space"]},
        {**base, "pain_points_inferred": [f"p{i}" for i in range(33)]},
        {**base, "signal_text": "x" * 2001},
        {**base, "surprise": 1},
    ]
    for data in bad:
        with pytest.raises(ValidationError):
            PersonaSignal.model_validate(data)
    # duplicates collapse in SQL, so 33 entries naming 32 pain points are fine
    PersonaSignal.model_validate({**base, "pain_points_inferred": ["a"] * 33})


def test_persona_update_sends_only_what_was_set() -> None:
    update = PersonaUpdate(sales_focus_score=0.85, pain_points_detected=["execution_blind_spot"])
    assert update.to_rpc() == {"sales_focus_score": 0.85,
                               "pain_points_detected": ["execution_blind_spot"]}  # fmt: skip
    assert PersonaUpdate(last_generated_brochure_id=None).to_rpc() == {
        "last_generated_brochure_id": None
    }
    for data in ({"overall_confidence": 1}, {"sales_focus_score": None},
                 {"sales_focus_score": float("nan")}, {"current_mode": "x"},
                 {"questions_asked": ["q" * 1001]}):  # fmt: skip
        with pytest.raises(ValidationError):
            PersonaUpdate.model_validate(data)


def test_new_message_limits() -> None:
    NewMessage(role="user", content="😀" * 8000)  # code points, as char_length counts
    with pytest.raises(ValidationError):
        NewMessage(role="user", content="😀" * 8001)
    with pytest.raises(ValidationError):
        NewMessage(role="robot", content="x")
    with pytest.raises(ValidationError):
        NewMessage(role="user", content="x", estimated_read_time="x" * 21)


def test_vocabularies() -> None:
    assert len(SCORE_NAMES) == 9
    assert VECTOR_NAMES == ("functional_role", "org_type", "org_size", "product_focus")


@given(
    st.builds(
        PersonaSignal,
        signal_type=st.from_regex(r"\A[a-z][a-z0-9_]{0,20}\Z"),
        signal_text=st.text(max_size=50),
        signal_strength=st.sampled_from(["weak", "medium", "strong"]),
        pain_points_inferred=st.lists(st.from_regex(r"\A[a-z][a-z0-9_]{0,10}\Z"), max_size=5),
        score_updates=st.dictionaries(
            st.sampled_from(SCORE_NAMES), st.floats(-1, 1, allow_nan=False)
        ),
    )
)
def test_signal_json_round_trip(signal: PersonaSignal) -> None:
    assert PersonaSignal.model_validate(signal.to_rpc()) == signal


# --- chat-turn results: JSON text straight into the models ------------------------------------
def chat_turn_json(history: list[dict[str, Any]], message: dict[str, Any]) -> dict[str, Any]:
    sid = str(uuid.uuid4())
    session = {"session_id": sid, "created_at": 1, "last_activity_at": 2, "message_count": 3}
    persona = {**SEED_DEFAULT_PERSONA, "craft_score": 0.25}
    return {"session": session, "persona": persona, "message": message, "created": False,
            "history": {"messages": history, "tokens": 9, "next_before": None}}  # fmt: skip


def stored_message(seq: int, role: str, content: str, **extra: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "seq": seq, "session_id": str(uuid.uuid4()),
            "message_role": role, "message_content": content, "generation_mode": None,
            "token_count": 5, "created_at": 1000 + seq, **extra}  # fmt: skip


def prompt_message(stored: dict[str, Any]) -> dict[str, Any]:
    """What begin_chat_turn's history holds of a stored message."""
    keys = ("message_role", "message_content", "generation_mode", "token_count", "created_at")
    return {key: stored[key] for key in keys}


def test_chat_turn_from_json_text_is_the_same_as_from_python() -> None:
    """``model_validate_json`` (the postgres transport) and ``model_validate`` agree, the
    persona copied into the session included, or left alone when the session has its own."""
    first = stored_message(1, "user", "hi")
    raw = chat_turn_json(
        [prompt_message(first), prompt_message(stored_message(2, "assistant", "hello"))], first
    )
    from_json = models.ChatTurnBegin.model_validate_json(json.dumps(raw))
    assert from_json == models.ChatTurnBegin.model_validate(raw)
    assert from_json.session.persona == from_json.persona
    assert [m.message_content for m in from_json.history.messages] == ["hi", "hello"]
    raw["session"]["persona"] = None  # a session that says it has none keeps none
    assert models.ChatTurnBegin.model_validate_json(json.dumps(raw)).session.persona is None
    assert models.ChatTurnBegin.model_validate(raw).session.persona is None


def test_chat_turn_brief_reads_lean_and_full_history_items() -> None:
    """The brief result takes prompt history items (``message_role``, ``message_content``,
    ``created_at``, ``generation_mode``, ``token_count``), and ignores any other key of an item."""
    lean = [
        {"message_role": "user", "message_content": "we brew", "created_at": 5,
         "generation_mode": None, "token_count": 6},
        {"message_role": "assistant", "message_content": "cheers", "created_at": 6,
         "generation_mode": "fresh", "token_count": 6},
    ]  # fmt: skip
    full = [
        stored_message(1, "user", "we brew", persona_snapshot=SEED_DEFAULT_PERSONA),
        stored_message(2, "assistant", "cheers", generation_mode="fresh"),
    ]
    for history in (lean, full):
        message = {k: v for k, v in full[0].items() if k != "persona_snapshot"}
        text = json.dumps(chat_turn_json(history, message))
        brief = models.ChatTurnBrief.model_validate_json(text)
        assert [(m.message_role, m.message_content, m.generation_mode, m.token_count)
                for m in brief.history.messages] == [
            ("user", "we brew", None, 6 if history is lean else 5),
            ("assistant", "cheers", "fresh", 6 if history is lean else 5),
        ]  # fmt: skip
        assert brief.persona.craft_score == 0.25
        assert brief.session.message_count == 3
        assert brief.session.persona is None
        finish = models.ChatTurnFinishBrief.model_validate_json(text)
        assert finish.session == brief.session
    with pytest.raises(ValidationError):  # the history is still required, and its roles checked
        models.ChatTurnBrief.model_validate_json(
            json.dumps(chat_turn_json([{**lean[0], "message_role": "robot"}], full[0]))
        )


# --- the vocabularies are the SQL's (the limits: tests/test_limits.py) -------------------------
async def test_vocabularies_match_the_sql(db_dsn: str) -> None:
    conn = await asyncpg.connect(db_dsn)
    try:
        assert await conn.fetchval(
            "select enum_range(null::bevsession.score_name)::text[]"
        ) == list(SCORE_NAMES)
        assert await conn.fetchval(
            "select enum_range(null::bevsession.vector_name)::text[]"
        ) == list(VECTOR_NAMES)
    finally:
        await conn.close()


async def test_pain_point_pattern_is_the_sqls(db_dsn: str) -> None:
    """Python's PainPoint accepts exactly the strings the domain bevsession.identifier accepts."""
    rng = random.Random(4)
    alphabet = "abcz09_AZ-é \n"
    samples = ["a", "a" * 64, "a" * 65, "1a", "_a", "a\n", "\na", "ab_9", "", "é", "aé"]
    samples += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8))) for _ in range(400)]
    adapter = TypeAdapter(PainPoint)

    def python_ok(text: str) -> bool:
        try:
            adapter.validate_python(text)
        except ValidationError:
            return False
        return True

    conn = await asyncpg.connect(db_dsn)
    try:
        await conn.execute(
            "create function pg_temp.is_identifier(s text) returns boolean language plpgsql as $$"
            " begin perform s::bevsession.identifier; return true;"
            " exception when check_violation then return false; end $$"
        )
        rows = await conn.fetch(
            "select s, pg_temp.is_identifier(s) ok from unnest($1::text[]) s", samples
        )
    finally:
        await conn.close()
    for row in rows:
        assert python_ok(row["s"]) == row["ok"], repr(row["s"])
