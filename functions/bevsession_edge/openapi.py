"""The OpenAPI 3.1 document of the HTTP API: ``paths`` written here, ``components.schemas``
generated from the models the handlers return (api_models.py, http_errors.Error).

The paths stay hand-written: what each route answers, and when, is prose a model cannot carry;
every schema they name is a model's. A test checks live responses against the document.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, models_json_schema

from . import api_models as bodies
from .config import Settings
from .http_errors import Error

REF = "#/components/schemas/{model}"
REQUESTS: tuple[type[BaseModel], ...] = (bodies.ChatRequest,)
RESPONSES: tuple[type[BaseModel], ...] = (
    bodies.SessionSummary, bodies.ChatResponse, bodies.History, bodies.Cleared,
    bodies.Forgotten, bodies.Linked, bodies.Status, bodies.Metrics, Error,
)  # fmt: skip


class _Schemas(GenerateJsonSchema):
    """No per-field titles: pydantic would make them from the aliases ("Sessionid")."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def _referenced(schemas: dict[str, Any], roots: list[str]) -> dict[str, Any]:
    """The schemas *roots* reach through ``$ref``s, in their order (a model's definitions can
    include one that its serialised form leaves out, e.g. the detection histories)."""
    prefix = REF.format(model="")
    reached: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in reached:
            continue
        reached.add(name)
        stack: list[Any] = [schemas[name]]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                ref = node.get("$ref")
                if isinstance(ref, str) and ref.startswith(prefix):
                    todo.append(ref.removeprefix(prefix))
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
    return {name: schema for name, schema in schemas.items() if name in reached}


@cache
def component_schemas() -> dict[str, Any]:
    """``components.schemas``: the bodies' JSON Schemas (2020-12, OpenAPI 3.1's dialect),
    requests as they are validated, responses as they are serialised."""
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        *((model, "validation") for model in REQUESTS),
        *((model, "serialization") for model in RESPONSES),
    ]
    _, top = models_json_schema(models, ref_template=REF, schema_generator=_Schemas)
    return _referenced(top["$defs"], [model.__name__ for model, _ in models])


def _with_settings(schemas: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The schemas with what this server's settings limit (a copy; the cached ones stay)."""
    chat = schemas[bodies.ChatRequest.__name__]
    message = {**chat["properties"]["message"], "maxLength": settings.max_message_chars}
    return {**schemas, bodies.ChatRequest.__name__: {**chat, "properties": {"message": message}}}


def _error_response(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF.format(model=Error.__name__)}}},
    }
    if retry_after:
        response["headers"] = {
            "Retry-After": {
                "description": "seconds to wait before retrying",
                "schema": {"type": "integer", "minimum": 0},
            }
        }
    return response


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}},
    }


# The session cookie is optional: without one (or with one that does not open) the request is a
# new visitor, never a 401. OpenAPI says "optional" with an empty requirement next to it.
COOKIE_SECURITY: list[dict[str, list[str]]] = [{"sessionCookie": []}, {}]
# Linking needs the access token; the cookie stays optional (a first request links a new session).
LINK_SECURITY: list[dict[str, list[str]]] = [
    {"bearerAuth": [], "sessionCookie": []},
    {"bearerAuth": []},
]


def openapi_document(settings: Settings) -> dict[str, Any]:
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
                    "responses": {"200": _json(bodies.SessionSummary, "the session"), **errors},
                },
                "delete": {
                    "summary": "Clear: revoke the session and delete the cookie",
                    "security": COOKIE_SECURITY,
                    "responses": {"200": _json(bodies.Cleared, "revoked"), **writes},
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
                        "200": _json(bodies.Linked, "linked (counts: rows this call attached)"),
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
                    "responses": {"200": _json(bodies.Forgotten, "erased"), **writes},
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
                                "schema": {"$ref": REF.format(model=bodies.ChatRequest.__name__)}
                            }
                        },
                    },
                    "responses": {
                        "200": _json(bodies.ChatResponse, "the assistant's reply"),
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
                    "responses": {"200": _json(bodies.History, "a page of messages"), **errors},
                }
            },
            "/healthz": {
                "get": {
                    "summary": "The process is up",
                    "responses": {"200": _json(bodies.Status, "up")},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "This worker's counters (loopback, or Bearer METRICS_TOKEN)",
                    "responses": {
                        "200": _json(bodies.Metrics, "counters since start"),
                        "403": _error_response("not loopback and no METRICS_TOKEN bearer"),
                    },
                }
            },
            "/readyz": {
                "get": {
                    "summary": "The database answers",
                    "responses": {
                        "200": _json(bodies.Status, "ready"),
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
            "schemas": _with_settings(component_schemas(), settings),
        },
    }
