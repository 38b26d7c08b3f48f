"""The bodies of the HTTP API (api_models.py): what they send, what they refuse, and that what
they send is what the document they generate says. No server: the live responses are checked
against the served document in test_openapi.py."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel, ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from bevsession.models import (
    VECTOR_NAMES,
    ConversationMessage,
    DeletedCounts,
    LinkCounts,
    PersonaScores,
)
from bevsession_edge import api_models as api
from bevsession_edge.http_errors import error_response
from bevsession_edge.openapi import component_schemas
from bevsession_edge.session_cookie import persona_json, persona_summary

NOW = 1_700_000_000_000
SEED_PERSONA: dict[str, Any] = {  # as the seed's Node app keeps it: histories and questions
    "detection_vectors": {
        "functional_role": "sales", "functional_role_confidence": 0.6,
        "functional_role_history": [{"value": "sales", "confidence": 0.6, "strength": "strong",
                                     "evidence": "I run sales", "detected_at": NOW}],
        "vectors_updated_at": NOW,
    },
    "craft_score": 0.7, "pain_points_detected": ["roi"], "pain_points_confidence": {"roi": 0.5},
    "overall_confidence": 0.4, "total_interactions": 3, "questions_asked": ["what do you sell?"],
}  # fmt: skip


def sent(body: BaseModel) -> Any:
    """The JSON a handler sends for *body*."""
    response = api.json_of(body)
    assert response.content_type == "application/json"
    assert response.text is not None
    return json.loads(response.text)


def conforms(name: str, instance: Any) -> bool:
    """*instance* is valid against the component *name* of the generated document."""
    doc = {"components": {"schemas": component_schemas()}}
    registry: Registry = Registry().with_resource(
        "urn:doc", Resource.from_contents(doc, default_specification=DRAFT202012)
    )
    schema = {"$ref": f"urn:doc#/components/schemas/{name}"}
    return Draft202012Validator(schema, registry=registry).is_valid(instance)


def summary(**changes: Any) -> api.SessionSummary:
    fields: dict[str, Any] = {
        "session_id": uuid.uuid4(), "created_at": NOW, "last_activity_at": NOW,
        "last_message_at": None, "message_count": 0, "current_mode": "fresh",
        "has_completed_onboarding": False, "has_brochure": False, "is_data_connected": False,
        "user_id": None, "persona": persona_json(PersonaScores()),
    }  # fmt: skip
    return api.SessionSummary(**(fields | changes))


# --- the persona ----------------------------------------------------------------------------------
def test_the_persona_summary_is_one_shape_for_the_cookie_the_reply_and_the_document() -> None:
    persona = PersonaScores.model_validate(SEED_PERSONA)
    dumped = persona_json(persona)
    assert dumped == persona_summary(persona.model_dump(mode="json"))
    assert "questions_asked" not in dumped
    assert not any(k.endswith("_history") for k in dumped["detection_vectors"])
    # the document's Persona is that shape: it sends back exactly what the summary holds
    assert api.Persona.model_validate(dumped).model_dump(mode="json") == dumped
    assert conforms("Persona", dumped)
    assert set(dumped["detection_vectors"]) >= set(VECTOR_NAMES)


def test_a_persona_travels_as_it_is_not_re_formatted() -> None:
    """A cookie's persona (a Node app's may have fewer keys) is sent as the cookie has it."""
    partial = {"craft_score": 1, "pain_points_detected": []}
    assert sent(summary(persona=partial))["persona"] == partial
    assert sent(summary(persona=partial))["persona"]["craft_score"] == 1  # not 1.0


# --- responses: the wire's keys, nulls and omissions ----------------------------------------------
def test_the_session_summary_is_camel_case_and_states_its_nulls() -> None:
    body = sent(summary())
    assert list(body) == [
        "sessionId", "createdAt", "lastActivityAt", "lastMessageAt", "messageCount",
        "currentMode", "hasCompletedOnboarding", "hasBrochure", "isDataConnected", "userId",
        "persona",
    ]  # fmt: skip
    assert body["userId"] is None and body["lastMessageAt"] is None
    assert conforms("SessionSummary", body)
    linked = sent(summary(user_id=str(uuid.uuid4()), last_message_at=NOW, message_count=2))
    assert conforms("SessionSummary", linked)


def test_the_other_responses_are_as_documented() -> None:
    sid, uid = uuid.uuid4(), uuid.uuid4()
    persona = persona_json(PersonaScores.model_validate(SEED_PERSONA))
    stored = ConversationMessage(
        id=uuid.uuid4(), seq=1, session_id=sid, message_role="assistant",
        message_content="hi", ui_specification={"type": "card"}, generation_mode="fast",
        token_count=1, created_at=NOW,
    )  # fmt: skip
    bodies: dict[str, tuple[BaseModel, dict[str, Any]]] = {
        "ChatResponse": (
            api.ChatResponse(reply="hi", persona=persona, session_id=sid, message_count=2),
            {"reply": "hi", "persona": persona, "sessionId": str(sid), "messageCount": 2},
        ),
        "History": (
            api.History(messages=[api.ChatMessage.of(stored)], next=None),
            {
                "messages": [
                    {
                        "id": str(stored.id),
                        "role": "assistant",
                        "content": "hi",
                        "createdAt": NOW,
                        "generationMode": "fast",
                        "uiSpecification": {"type": "card"},
                        "tokenCount": 1,
                    }
                ],
                "next": None,
            },
        ),
        "Cleared": (api.Cleared(session_id=sid), {"cleared": True, "sessionId": str(sid)}),
        "Forgotten": (
            api.Forgotten(session_id=sid, deleted=DeletedCounts(messages=2, signals=1, personas=1)),
            {
                "forgotten": True,
                "sessionId": str(sid),
                "deleted": {"messages": 2, "signals": 1, "personas": 1},
            },
        ),
        "Linked": (
            api.Linked(
                session_id=sid,
                user_id=uid,
                linked=LinkCounts(sessions=1, personas=1, messages=2, signals=1),
            ),
            {
                "sessionId": str(sid),
                "userId": str(uid),
                "linked": {"sessions": 1, "personas": 1, "messages": 2, "signals": 1},
            },
        ),
        "Status": (api.Status(status="ok"), {"status": "ok"}),
    }
    for name, (model, expected) in bodies.items():
        body = sent(model)
        assert body == expected and list(body) == list(expected), name
        assert conforms(name, body), name


def test_metrics_leave_out_a_read_cache_that_is_off() -> None:
    off = sent(api.Metrics(cookie_rejections={"bad_mac": 2}, read_cache=None))
    assert off == {"cookieRejections": {"bad_mac": 2}}
    figures = {"maxAgeSeconds": 2, "entries": 1, "pending": 0, "hits": 3, "misses": 1,
               "flushes": 1, "touched": 1, "validated": 0, "stale": 0, "lapsed": 0,
               "flushFailures": 0}  # fmt: skip
    on = api.json_of(api.Metrics(cookie_rejections={}, read_cache=figures)).text
    assert on is not None and '"maxAgeSeconds":2,' in on, "integers stay integers"
    assert json.loads(on)["readCache"] == figures
    assert conforms("Metrics", json.loads(on)) and conforms("Metrics", off)
    assert not conforms("Metrics", {"cookieRejections": {}, "readCache": {"hits": 1}})


def test_an_error_body_is_the_documented_one() -> None:
    response = error_response(429, "rate_limited", "slow down", **{"Retry-After": "3"})
    assert response.status == 429 and response.headers["Retry-After"] == "3"
    assert response.text is not None
    body = json.loads(response.text)
    assert body == {"error": {"code": "rate_limited", "message": "slow down"}}
    assert conforms("Error", body)


# --- requests -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [{}, {"message": ""}, {"message": 5}, {"message": "hi", "extra": 1}, {"message": "a\x00b"},
     {"message": None}, {"message": ["hi"]}],
)  # fmt: skip
def test_a_chat_request_refuses_a_bad_body(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        api.ChatRequest.model_validate(body)


def test_a_chat_request_takes_a_message() -> None:
    assert api.ChatRequest.model_validate({"message": "hi"}).message == "hi"
    assert conforms("ChatRequest", {"message": "hi"})
    assert not conforms("ChatRequest", {"message": "hi", "extra": 1})
