"""The bodies of the HTTP API (docs/http-api.md) as pydantic models: one definition each.

The handlers build their responses as these models and parse requests with them, and
``openapi.py`` generates the document's ``components.schemas`` from them, so what the server
sends and what the document promises cannot drift apart. camelCase on the wire (aliases),
snake_case in Python. Vocabularies — score and vector names, read-cache counters — are imported
from where they are defined, never listed here.

Two values travel as the plain dicts they already are, documented as a model's shape
(:class:`DocumentedAs`): the persona (dumped once for the cookie and the reply; a cookie's is
answered as the cookie carries it) and the read cache's figures. The error body is
``http_errors.Error``, beside the code that renders every error (this module imports the read
cache, which imports what raises those errors).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from uuid import UUID

from aiohttp import web
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    create_model,
    field_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from bevsession.models import (
    ConversationMessage,
    DeletedCounts,
    DetectionHistory,
    DetectionVectors,
    LinkCounts,
    Mode,
    PersonaScores,
    Role,
)

from .read_cache import READ_CACHE_COUNTERS
from .session_cookie import PERSONA_LEFT_OUT

__all__ = [
    "ChatMessage",
    "ChatRequest",
    "ChatResponse",
    "Cleared",
    "DocumentedAs",
    "Forgotten",
    "History",
    "Linked",
    "Metrics",
    "Persona",
    "ReadCacheFigures",
    "SessionSummary",
    "Status",
    "json_of",
]

Millis = Annotated[int, Field(ge=0, description="milliseconds since the epoch")]
Count = Annotated[int, Field(ge=0)]


class _Body(BaseModel):
    """A body of the HTTP API: camelCase on the wire. A response states every field it has
    (``null`` included), so the serialised schema lists them all as required."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, validate_by_alias=True,
        serialize_by_alias=True, frozen=True, json_schema_serialization_defaults_required=True,
    )  # fmt: skip


def json_of(
    body: BaseModel, headers: Mapping[str, str] | None = None, *, status: int = 200
) -> web.Response:
    """*body* as the JSON response, by alias (one dump, in pydantic's serialiser)."""
    return web.json_response(
        text=body.model_dump_json(by_alias=True), status=status, headers=headers
    )


@dataclass(frozen=True, slots=True)
class DocumentedAs:
    """``Annotated[dict[str, Any], DocumentedAs(Model)]``: the value is a dict made elsewhere,
    sent as it is (no validation into *model*, no second dump), and the document gives it
    *model*'s schema."""

    model: type[BaseModel]

    def __get_pydantic_json_schema__(
        self, _: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return handler(self.model.__pydantic_core_schema__)


# --- the persona, as the cookie carries it and the API shows it ----------------------------------
_SHOWN = ConfigDict(json_schema_serialization_defaults_required=True)
_HISTORIES: dict[str, Any] = {
    name: (list[DetectionHistory], Field(default_factory=list, exclude=True))
    for name in PERSONA_LEFT_OUT["detection_vectors"]
}

PersonaVectors = create_model(
    "PersonaVectors",
    __base__=DetectionVectors,
    __config__=_SHOWN,
    __doc__="The detection vectors: each one's current value and confidence.",
    vectors_updated_at=(Millis, 0),
    **_HISTORIES,
)
Persona = create_model(
    "Persona",
    __base__=PersonaScores,
    __config__=_SHOWN,
    __doc__="Who the visitor seems to be, with the seed's snake_case names (PersonaScores "
    "without detection histories and questions, which stay in the database).",
    detection_vectors=(PersonaVectors, Field(default_factory=PersonaVectors)),
    questions_asked=(list[str], Field(default_factory=list, exclude=True)),
)
PersonaJson = Annotated[dict[str, Any], DocumentedAs(Persona)]


# --- requests ------------------------------------------------------------------------------------
class ChatRequest(_Body):
    """``POST /api/chat`` body; unknown keys are refused, not ignored. The configured
    ``MAX_MESSAGE_CHARS`` is checked by the handler (and stated by the document)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    message: str = Field(min_length=1)

    @field_validator("message")
    @classmethod
    def _storable(cls, value: str) -> str:
        """PostgreSQL text cannot hold NUL: say so here rather than echo the database's words."""
        if "\x00" in value:
            raise ValueError("must not contain NUL (\\u0000) characters")
        return value


# --- responses -----------------------------------------------------------------------------------
class SessionSummary(_Body):
    """``GET /api/session``: the session as its cookie keeps it."""

    session_id: UUID
    created_at: Millis
    last_activity_at: Millis
    last_message_at: Millis | None
    message_count: Count
    current_mode: Mode
    has_completed_onboarding: bool
    has_brochure: bool
    is_data_connected: bool
    # text as the cookie has it (a Node app's cookie is answered as it is, not re-formatted)
    user_id: Annotated[str, Field(json_schema_extra={"format": "uuid"})] | None = Field(
        description="the account the session is linked to, if any"
    )
    persona: PersonaJson


class ChatResponse(_Body):
    """``POST /api/chat``: the assistant's reply and the persona after this turn."""

    reply: str
    persona: PersonaJson
    session_id: UUID
    message_count: Count


class ChatMessage(_Body):
    """One message of a history page."""

    id: UUID
    role: Role
    content: str
    created_at: Millis
    generation_mode: str | None
    ui_specification: Any
    token_count: Count

    @classmethod
    def of(cls, stored: ConversationMessage) -> ChatMessage:
        return cls(
            id=stored.id,
            role=stored.message_role,
            content=stored.message_content,
            created_at=stored.created_at,
            generation_mode=stored.generation_mode,
            ui_specification=stored.ui_specification,
            token_count=stored.token_count,
        )


class History(_Body):
    """``GET /api/chat/history``: newest messages, oldest first; ``next`` is the cursor of the
    page before (``null``: no more)."""

    messages: list[ChatMessage]
    next: int | None


class Cleared(_Body):
    """``DELETE /api/session``: the session is revoked, its cookie deleted."""

    cleared: Literal[True] = True
    session_id: UUID


class Forgotten(_Body):
    """``DELETE /api/session/data``: what was erased; the cookie is deleted."""

    forgotten: Literal[True] = True
    session_id: UUID
    deleted: DeletedCounts


class Linked(_Body):
    """``POST /api/session/link``: the session now belongs to the account."""

    session_id: UUID
    user_id: UUID
    linked: LinkCounts = Field(
        description="rows this call attached (all 0 when the session was already linked to "
        "this account)"
    )


class Status(_Body):
    """``/healthz`` and ``/readyz``."""

    status: str


_COUNTERS: dict[str, Any] = {name: (Count, ...) for name in READ_CACHE_COUNTERS}
ReadCacheFigures = create_model(
    "ReadCacheFigures",
    __config__=ConfigDict(extra="forbid"),
    __doc__="This worker's read cache: its sizes and counters since start (ReadCache.snapshot).",
    maxAgeSeconds=(float, Field(ge=0)),
    **_COUNTERS,
)


class Metrics(_Body):
    """``GET /metrics``: this worker's counters."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=False)

    cookie_rejections: dict[str, Count] = Field(
        description="refused cookies since start, by reason"
    )
    read_cache: Annotated[dict[str, int | float], DocumentedAs(ReadCacheFigures)] | None = Field(
        None,
        exclude_if=lambda figures: figures is None,
        description="this worker's read cache (absent when disabled)",
    )
