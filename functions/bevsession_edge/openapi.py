"""The OpenAPI 3.1 document of the HTTP API, written out by hand and kept true by a test.

Hand-written on purpose: the API is small, and a document that a test checks against live
responses says exactly what clients get (limits included), which generated ones rarely do.
"""

from __future__ import annotations

from typing import Any

from .config import Settings
from .read_cache import READ_CACHE_COUNTERS

SCORE = {"type": "number", "minimum": 0, "maximum": 1}
MILLIS = {"type": "integer", "minimum": 0, "description": "milliseconds since the epoch"}
NULLABLE_MILLIS = {"type": ["integer", "null"], "minimum": 0}
SCORE_NAMES = [
    "sales_focus_score",
    "marketing_focus_score",
    "operations_focus_score",
    "compliance_focus_score",
    "supplier_score",
    "distributor_score",
    "craft_score",
    "mid_sized_score",
    "large_score",
]
VECTORS = ("functional_role", "org_type", "org_size", "product_focus")


def _error_response(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if retry_after:
        response["headers"] = {
            "Retry-After": {
                "description": "seconds to wait before retrying",
                "schema": {"type": "integer", "minimum": 0},
            }
        }
    return response


def _json(ref: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


# The session cookie is optional: without one (or with one that does not open) the request is a
# new visitor, never a 401. OpenAPI says "optional" with an empty requirement next to it.
COOKIE_SECURITY: list[dict[str, list[str]]] = [{"sessionCookie": []}, {}]
# Linking needs the access token; the cookie stays optional (a first request links a new session).
LINK_SECURITY: list[dict[str, list[str]]] = [
    {"bearerAuth": [], "sessionCookie": []},
    {"bearerAuth": []},
]
UUID_STRING = {"type": "string", "format": "uuid"}


def openapi_document(settings: Settings) -> dict[str, Any]:
    vectors: dict[str, Any] = {"vectors_updated_at": MILLIS}
    for v in VECTORS:
        vectors[v] = {"type": ["string", "null"]}
        vectors[f"{v}_confidence"] = SCORE
    persona = {
        "type": "object",
        "required": [
            "detection_vectors",
            *SCORE_NAMES,
            "pain_points_detected",
            "overall_confidence",
            "total_interactions",
        ],
        "properties": {
            "detection_vectors": {"type": "object", "properties": vectors},
            **{name: SCORE for name in SCORE_NAMES},
            "pain_points_detected": {"type": "array", "items": {"type": "string"}},
            "pain_points_confidence": {"type": "object", "additionalProperties": SCORE},
            "overall_confidence": SCORE,
            "total_interactions": {"type": "integer", "minimum": 0},
        },
    }
    limit_max = settings.history_page_max
    errors = {
        "400": _error_response("invalid JSON or input"),
        "429": _error_response(
            "this client address started too many sessions (CLIENT_SESSION_RATE) or took too "
            "many chat turns (CLIENT_CHAT_RATE); retry after Retry-After seconds",
            retry_after=True,
        ),
        "503": _error_response(
            "the database is unavailable; retry after Retry-After seconds", retry_after=True
        ),
    }
    # state-changing routes: a browser's request from another origin is refused (guards.py)
    writes = {
        **errors,
        "403": _error_response(
            "forbidden_origin: Sec-Fetch-Site cross-site, or an Origin that is neither this "
            "server's nor one of ALLOWED_ORIGINS"
        ),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "bevgenie-session edge worker",
            "version": "0.1.0",
            "description": "Anonymous, encrypted, stateful sessions (iron Fe26.2 cookie) with a "
            "persona and a conversation history stored in Supabase/PostgreSQL.",
        },
        "servers": [{"url": "/"}],
        "paths": {
            "/api/session": {
                "get": {
                    "summary": "The visitor's session (created on first visit)",
                    "security": COOKIE_SECURITY,
                    "responses": {"200": _json("SessionSummary", "the session"), **errors},
                },
                "delete": {
                    "summary": "Clear: revoke the session and delete the cookie",
                    "security": COOKIE_SECURITY,
                    "responses": {"200": _json("Cleared", "revoked"), **writes},
                },
            },
            "/api/session/link": {
                "post": {
                    "summary": "A visitor who signed in: link the session to the account",
                    "description": "Attaches the session (created if new) and its persona, "
                    "messages and signals to the Supabase Auth account of the Bearer access "
                    "token, which is verified first (signature against the project's JWKS or "
                    "the legacy secret, aud 'authenticated', exp). Idempotent for the same "
                    "account; the cookie keeps working.",
                    "security": LINK_SECURITY,
                    "responses": {
                        "200": _json("Linked", "linked (counts: rows this call attached)"),
                        "401": {
                            **_error_response(
                                "no access token, or one refused: expired, forged, another "
                                "audience, an unknown key, or another account's token for a "
                                "session linked already (code linked_to_another_account); "
                                "nothing was changed"
                            ),
                            "headers": {
                                "WWW-Authenticate": {
                                    "description": "Bearer challenge (RFC 6750)",
                                    "schema": {"type": "string"},
                                }
                            },
                        },
                        "501": _error_response(
                            "linking is not configured on this server (no JWKS, no JWT secret)"
                        ),
                        "503": _error_response(
                            "the database or the project's JWKS is unavailable; retry after "
                            "Retry-After seconds",
                            retry_after=True,
                        ),
                    },
                }
            },
            "/api/session/data": {
                "delete": {
                    "summary": "Forget: erase the visitor's messages, signals and persona",
                    "security": COOKIE_SECURITY,
                    "responses": {"200": _json("Forgotten", "erased"), **writes},
                }
            },
            "/api/chat": {
                "post": {
                    "summary": "One chat turn: store the message and signals, reply, store reply",
                    "security": COOKIE_SECURITY,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/ChatRequest"}
                            }
                        },
                    },
                    "responses": {
                        "200": _json("ChatResponse", "the assistant's reply"),
                        "413": _error_response("body too large"),
                        "415": _error_response("not application/json"),
                        **writes,
                        "429": _error_response(
                            "this session's chat rate limit is used up, or this client "
                            "address's (CLIENT_SESSION_RATE, CLIENT_CHAT_RATE); retry after "
                            "Retry-After seconds",
                            retry_after=True,
                        ),
                    },
                }
            },
            "/api/chat/history": {
                "get": {
                    "summary": "The newest messages, oldest first, with a keyset cursor",
                    "security": COOKIE_SECURITY,
                    "parameters": [
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "schema": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": limit_max,
                                "default": 20,
                            },
                        },
                        {
                            "name": "before",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 2**62},
                        },
                        {
                            "name": "tokenBudget",
                            "in": "query",
                            "required": False,
                            "description": "only the newest messages whose token counts fit",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000000},
                        },
                    ],
                    "responses": {"200": _json("History", "a page of messages"), **errors},
                }
            },
            "/healthz": {
                "get": {
                    "summary": "The process is up",
                    "responses": {"200": _json("Status", "up")},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "This worker's counters (loopback, or Bearer METRICS_TOKEN)",
                    "responses": {
                        "200": _json("Metrics", "counters since start"),
                        "403": _error_response("not loopback and no METRICS_TOKEN bearer"),
                    },
                }
            },
            "/readyz": {
                "get": {
                    "summary": "The database answers",
                    "responses": {
                        "200": _json("Status", "ready"),
                        "503": _error_response("the database does not answer", retry_after=True),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
            "/": {
                "get": {
                    "summary": "The demo chat page",
                    "responses": {
                        "200": {
                            "description": "HTML",
                            "content": {"text/html": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "sessionCookie": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": settings.session_cookie_name,
                    "description": "the sealed session (iron Fe26.2); optional: a request "
                    "without one, or with one that does not open, is a new visitor",
                },
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "the visitor's Supabase Auth access token (ES256/RS256 "
                    "from the project's JWKS, or HS256 with the legacy JWT secret)",
                },
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                            },
                        }
                    },
                },
                "Persona": persona,
                "SessionSummary": {
                    "type": "object",
                    "required": [
                        "sessionId",
                        "createdAt",
                        "lastActivityAt",
                        "messageCount",
                        "currentMode",
                        "hasCompletedOnboarding",
                        "hasBrochure",
                        "isDataConnected",
                        "persona",
                    ],
                    "properties": {
                        "sessionId": {"type": "string", "format": "uuid"},
                        "createdAt": MILLIS,
                        "lastActivityAt": MILLIS,
                        "lastMessageAt": NULLABLE_MILLIS,
                        "messageCount": {"type": "integer", "minimum": 0},
                        "currentMode": {"enum": ["fresh", "returning", "data_connected"]},
                        "hasCompletedOnboarding": {"type": "boolean"},
                        "hasBrochure": {"type": "boolean"},
                        "isDataConnected": {"type": "boolean"},
                        "userId": {
                            "type": ["string", "null"],
                            "format": "uuid",
                            "description": "the account the session is linked to, if any",
                        },
                        "persona": {"$ref": "#/components/schemas/Persona"},
                    },
                },
                "Linked": {
                    "type": "object",
                    "required": ["sessionId", "userId", "linked"],
                    "properties": {
                        "sessionId": UUID_STRING,
                        "userId": UUID_STRING,
                        "linked": {
                            "type": "object",
                            "description": "rows this call attached (all 0 when the session "
                            "was already linked to this account)",
                            "required": ["sessions", "personas", "messages", "signals"],
                            "properties": {
                                "sessions": {"type": "integer", "minimum": 0, "maximum": 1},
                                **{
                                    k: {"type": "integer", "minimum": 0}
                                    for k in ("personas", "messages", "signals")
                                },
                            },
                        },
                    },
                },
                "ChatRequest": {
                    "type": "object",
                    "required": ["message"],
                    "additionalProperties": False,
                    "properties": {
                        "message": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": settings.max_message_chars,
                        }
                    },
                },
                "ChatResponse": {
                    "type": "object",
                    "required": ["reply", "persona", "sessionId", "messageCount"],
                    "properties": {
                        "reply": {"type": "string"},
                        "persona": {"$ref": "#/components/schemas/Persona"},
                        "sessionId": {"type": "string", "format": "uuid"},
                        "messageCount": {"type": "integer", "minimum": 0},
                    },
                },
                "History": {
                    "type": "object",
                    "required": ["messages", "next"],
                    "properties": {
                        "messages": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["id", "role", "content", "createdAt"],
                                "properties": {
                                    "id": {"type": "string", "format": "uuid"},
                                    "role": {"enum": ["user", "assistant", "system"]},
                                    "content": {"type": "string"},
                                    "createdAt": MILLIS,
                                    "generationMode": {"type": ["string", "null"]},
                                    "uiSpecification": {},
                                    "tokenCount": {"type": "integer", "minimum": 0},
                                },
                            },
                        },
                        "next": {"type": ["integer", "null"]},
                    },
                },
                "Cleared": {
                    "type": "object",
                    "required": ["cleared", "sessionId"],
                    "properties": {
                        "cleared": {"const": True},
                        "sessionId": {"type": "string", "format": "uuid"},
                    },
                },
                "Forgotten": {
                    "type": "object",
                    "required": ["forgotten", "sessionId", "deleted"],
                    "properties": {
                        "forgotten": {"const": True},
                        "sessionId": {"type": "string", "format": "uuid"},
                        "deleted": {
                            "type": "object",
                            "properties": {
                                k: {"type": "integer", "minimum": 0}
                                for k in ("messages", "signals", "personas")
                            },
                        },
                    },
                },
                "Status": {
                    "type": "object",
                    "required": ["status"],
                    "properties": {"status": {"type": "string"}},
                },
                "Metrics": {
                    "type": "object",
                    "required": ["cookieRejections"],
                    "properties": {
                        "cookieRejections": {
                            "type": "object",
                            "description": "refused cookies since start, by reason",
                            "additionalProperties": {"type": "integer", "minimum": 0},
                        },
                        "readCache": {
                            "type": "object",
                            "description": "this worker's read cache (absent when disabled)",
                            "required": ["maxAgeSeconds", *READ_CACHE_COUNTERS],
                            "additionalProperties": False,
                            "properties": {
                                "maxAgeSeconds": {"type": "number", "minimum": 0},
                                **{
                                    k: {"type": "integer", "minimum": 0}
                                    for k in READ_CACHE_COUNTERS
                                },
                            },
                        },
                    },
                },
            },
        },
    }
