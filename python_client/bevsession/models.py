"""Pydantic v2 models of what the RPCs take and return (docs/rpc-api.md, the SQL is the truth).

Two kinds, configured differently on purpose:

- **Results** (SessionData, PersonaScores, ConversationMessage, …) parse the JSON the SQL
  functions return. Field names are the SQL's snake_case; ``model_dump(mode="json")`` gives back
  exactly that JSON (tests compare the two). Unknown keys are ignored, so a worker still running
  the previous release keeps working while a migration adds a field.
  :class:`SessionData` also has the seed's camelCase names as aliases
  (``model_dump(by_alias=True)`` → ``sessionId``, ``createdAt``, …).
- **Lean results** (ChatTurnBrief, ChatTurnFinishBrief) parse the same JSON into only what the
  edge worker reads per chat turn; the rest of the document is skipped by the parser.
- **Inputs** (PersonaSignal, PersonaUpdate, NewMessage, …) come from outside (an LLM, a request):
  ``extra="forbid"`` and the same limits the SQL enforces, so most mistakes are caught before a
  round trip. The SQL checks everything again; it stays the authority.

Timestamps are integer milliseconds since the epoch (the seed's ``Date.now()``), scores floats
in [0, 1].
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Final, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AliasGenerator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic.alias_generators import to_camel

from bevsession.limits import (
    MAX_BROCHURE_ID_CHARS,
    MAX_ESTIMATED_READ_TIME_CHARS,
    MAX_HISTORY_PAGE,
    MAX_MESSAGE_CHARS,
    MAX_PAIN_POINTS,
    MAX_PURGE_BATCH,
    MAX_QUESTION_CHARS,
    MAX_QUESTIONS,
    MAX_SEED_BATCH,
    MAX_SIGNAL_TEXT_CHARS,
    MAX_SIGNALS_PER_TURN,
    MAX_TOUCH_BATCH,
    MIN_RETENTION_MS,
)

__all__ = [
    "MAX_ESTIMATED_READ_TIME_CHARS",
    "MAX_HISTORY_PAGE",
    "MAX_MESSAGE_CHARS",
    "MAX_PAIN_POINTS",
    "MAX_PURGE_BATCH",
    "MAX_QUESTIONS",
    "MAX_QUESTION_CHARS",
    "MAX_SEED_BATCH",
    "MAX_SIGNALS_PER_TURN",
    "MAX_SIGNAL_TEXT_CHARS",
    "MAX_TOUCH_BATCH",
    "MIN_RETENTION_MS",
    "SCORE_NAMES",
    "VECTOR_NAMES",
    "AdoptionSnapshot",
    "ChatTurnBegin",
    "ChatTurnBrief",
    "ChatTurnFinish",
    "ChatTurnFinishBrief",
    "ClearResult",
    "ConversationMessage",
    "DeletedCounts",
    "DetectionHistory",
    "DetectionVectors",
    "ForgetResult",
    "HistoryMessage",
    "HistoryPage",
    "Identifier",
    "MessageResult",
    "NewMessage",
    "PainPoint",
    "PersonaScores",
    "PersonaSignal",
    "PersonaUpdate",
    "PersonaUpdateResult",
    "PromptHistory",
    "PromptMessage",
    "PurgeCounts",
    "PurgeResult",
    "ScoreName",
    "SessionCounts",
    "SessionData",
    "SessionRead",
    "SessionSnapshot",
    "SessionStats",
    "SignalRecord",
    "SignalResult",
    "TouchResult",
    "ValidateResult",
]

ScoreName = Literal[
    "sales_focus_score", "marketing_focus_score", "operations_focus_score",
    "compliance_focus_score", "supplier_score", "distributor_score",
    "craft_score", "mid_sized_score", "large_score",
]  # fmt: skip
SCORE_NAMES: Final[tuple[ScoreName, ...]] = ScoreName.__args__  # type: ignore[attr-defined]
VectorName = Literal["functional_role", "org_type", "org_size", "product_focus"]
VECTOR_NAMES: Final[tuple[VectorName, ...]] = VectorName.__args__  # type: ignore[attr-defined]
Strength = Literal["weak", "medium", "strong"]
Role = Literal["user", "assistant", "system"]
Mode = Literal["fresh", "returning", "data_connected"]

# bevsession.is_identifier: pain points, signal types, vector values, generation modes.
Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
PainPoint = Identifier
Score = Annotated[float, Field(ge=0, le=1)]
Millis = int


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


Number = Annotated[float, AfterValidator(_finite)]
Delta = Annotated[float, Field(ge=-1, le=1)]


class _Result(BaseModel):
    """Parsed from SQL JSON: tolerant of new keys, frozen (a result is a fact)."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class _Input(BaseModel):
    """Built from outside data: unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- persona -------------------------------------------------------------------------------------
class DetectionHistory(_Result):
    """One detection of a vector value (the newest 10 are kept per vector)."""

    value: str
    confidence: Score
    strength: Strength
    evidence: str
    detected_at: Millis


class DetectionVectors(_Result):
    """The four detection vectors: current value, its confidence, recent detections."""

    functional_role: str | None = None
    functional_role_confidence: Score = 0.0
    functional_role_history: list[DetectionHistory] = Field(default_factory=list)
    org_type: str | None = None
    org_type_confidence: Score = 0.0
    org_type_history: list[DetectionHistory] = Field(default_factory=list)
    org_size: str | None = None
    org_size_confidence: Score = 0.0
    org_size_history: list[DetectionHistory] = Field(default_factory=list)
    product_focus: str | None = None
    product_focus_confidence: Score = 0.0
    product_focus_history: list[DetectionHistory] = Field(default_factory=list)
    vectors_updated_at: Millis = 0


class PersonaScores(_Result):
    """Who we think the visitor is (the seed's PersonaScores; defaults = DEFAULT_PERSONA_SCORES)."""

    detection_vectors: DetectionVectors = Field(default_factory=DetectionVectors)
    sales_focus_score: Score = 0.0
    marketing_focus_score: Score = 0.0
    operations_focus_score: Score = 0.0
    compliance_focus_score: Score = 0.0
    supplier_score: Score = 0.0
    distributor_score: Score = 0.0
    craft_score: Score = 0.0
    mid_sized_score: Score = 0.0
    large_score: Score = 0.0
    pain_points_detected: list[PainPoint] = Field(default_factory=list)
    pain_points_confidence: dict[PainPoint, Score] = Field(default_factory=dict)
    overall_confidence: Score = 0.0
    total_interactions: int = Field(0, ge=0)
    questions_asked: list[str] = Field(default_factory=list)


# --- session -------------------------------------------------------------------------------------
class SessionData(_Result):
    """The session row (the seed's SessionData); ``persona`` is filled when the RPC returned one.

    ``model_dump(by_alias=True)`` gives the seed's camelCase JSON; validation accepts both.
    """

    model_config = ConfigDict(
        extra="ignore",
        frozen=True,
        alias_generator=AliasGenerator(alias=to_camel),
        validate_by_name=True,
        validate_by_alias=True,
    )

    session_id: UUID
    user_id: UUID | None = None
    created_at: Millis
    last_activity_at: Millis
    last_message_at: Millis | None = None
    last_message: str | None = None
    message_count: int = Field(0, ge=0)
    current_mode: Mode = "fresh"
    has_completed_onboarding: bool = False
    has_brochure: bool = False
    is_data_connected: bool = False
    last_generated_brochure_id: str | None = None
    last_brochure_generated_at: Millis | None = None
    revoked_at: Millis | None = None
    persona: PersonaScores | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


def _with_persona(result: Any) -> Any:
    """Put a result's persona into its session, so ``result.session.persona`` is current
    (unless the session's JSON carried one of its own).

    An *after* validator: a *before* one would make ``model_validate_json`` turn the whole
    document into Python dicts first and validate those, losing the one-pass JSON parse.
    """
    session = result.session
    if "persona" not in session.model_fields_set:
        # a frozen result, still being built: set its field directly
        object.__setattr__(
            result, "session", session.model_copy(update={"persona": result.persona})
        )
    return result


# --- messages ------------------------------------------------------------------------------------
class ConversationMessage(_Result):
    """One stored chat message (history pages add the persona snapshot it was stored with)."""

    id: UUID
    seq: int
    session_id: UUID
    message_role: Role
    message_content: str
    pain_points_inferred: list[PainPoint] = Field(default_factory=list)
    ui_specification: Any = None
    generation_mode: str | None = None
    estimated_read_time: str | None = None
    token_count: int = Field(ge=0)
    created_at: Millis


class HistoryMessage(ConversationMessage):
    """A message of a history page, with the persona as it was when the message was stored."""

    persona_snapshot: PersonaScores | None = None


class PromptMessage(_Result):
    """A message as a prompt reads it (the chat turn's history): no ids, no snapshot, no UI spec."""

    message_role: Role
    message_content: str
    generation_mode: str | None = None
    token_count: int = Field(ge=0)
    created_at: Millis


class PromptHistory(_Result):
    """``begin_chat_turn``'s history: the newest prompt messages, oldest first."""

    messages: list[PromptMessage] = Field(default_factory=list)
    tokens: int = Field(0, ge=0)
    next_before: int | None = None


class HistoryPage(_Result):
    """Newest messages, oldest first; ``next_before`` continues to older ones (None: no more).

    ``tokens`` is the sum of the messages' stored token counts (what the page costs a prompt).
    """

    messages: list[HistoryMessage] = Field(default_factory=list)
    tokens: int = Field(0, ge=0)
    next_before: int | None = None


class SessionPolicy(_Result):
    """The two expiries the database enforces (seconds; idle ``None`` = no idle timeout)."""

    absolute_lifetime_seconds: int = Field(gt=0)
    idle_timeout_seconds: int | None = Field(None, gt=0)


class SealKeyCheck(_Result):
    """Password ids whose fingerprint differs from the first one the database saw."""

    changed: list[str] = Field(default_factory=list)


# --- signals -------------------------------------------------------------------------------------
class SignalRecord(_Result):
    """The audit row of one applied signal, with the overall confidence before and after."""

    id: UUID
    signal_type: str
    signal_text: str
    signal_strength: Strength
    pain_points_inferred: list[PainPoint] = Field(default_factory=list)
    score_updates: dict[ScoreName, float] = Field(default_factory=dict)
    vector: VectorName | None = None
    vector_value: str | None = None
    confidence_before: Score
    confidence_after: Score
    created_at: Millis


# --- RPC results ---------------------------------------------------------------------------------
class SessionSnapshot(_Result):
    """``get_session``: the session and its persona; ``created`` on the first call."""

    session: SessionData
    persona: PersonaScores
    created: bool

    _merge = model_validator(mode="after")(_with_persona)


class AdoptionSnapshot(SessionSnapshot):
    """``adopt_session``: as ``get_session``, plus what the cookie brought.

    ``adopted`` is true when the session was created from the cookie (or an imported session
    was completed from it); ``dropped`` counts, by reason, what the rules of the seed import
    changed or refused in the cookie (docs/from-the-seed.md), e.g. ``{"score_clamped": 2}``.
    """

    adopted: bool = False
    dropped: dict[str, int] = Field(default_factory=dict)


class SessionRead(_Result):
    """``read_session``: the session for a read, taken without a lock or a write.

    ``session`` None: the read would need a write (no row yet, an import to complete): call
    ``adopt_session``. Otherwise ``persona`` is the summary (no detection histories, no
    questions: they keep their empty defaults), ``read_at`` the database's clock at the read
    (the ``seen_ms`` a batched ``touch_sessions`` reports it with) and ``settled`` whether no
    other transaction had locked or changed the row it read (a copy may be kept only then).
    ``session.persona`` is not filled in.
    """

    session: SessionData | None = None
    persona: PersonaScores | None = None
    read_at: Millis = 0
    settled: bool = False


class PersonaUpdateResult(_Result):
    """``update_persona``: the persona after the update and the session (flags, mode)."""

    persona: PersonaScores
    session: SessionData

    _merge = model_validator(mode="after")(_with_persona)


class SignalResult(_Result):
    """``record_persona_signal``: the audit row and the persona after the signal."""

    signal: SignalRecord
    persona: PersonaScores


class MessageResult(_Result):
    """``add_conversation_message``: the stored message and the session (counters)."""

    message: ConversationMessage
    session: SessionData


class ChatTurnBegin(_Result):
    """``begin_chat_turn``: everything a reply needs, after the user's message was stored."""

    session: SessionData
    persona: PersonaScores
    message: ConversationMessage
    history: PromptHistory
    created: bool

    _merge = model_validator(mode="after")(_with_persona)


class ChatTurnFinish(MessageResult):
    """``finish_chat_turn``: the stored assistant reply and the session."""


# --- lean chat-turn results: what the edge worker reads, nothing more ---------------------------
# The same JSON as ChatTurnBegin / ChatTurnFinish, parsed into less: the stored message is
# skipped by the JSON parser, never built.
class ChatTurnBrief(_Result):
    """``begin_chat_turn`` as a reply needs it: the session (its ``persona`` is left unset), the
    persona after this turn's signals and the history window. :class:`ChatTurnBegin` has all."""

    session: SessionData
    persona: PersonaScores
    history: PromptHistory


class ChatTurnFinishBrief(_Result):
    """``finish_chat_turn``'s session (counters, timestamps); the stored reply is skipped."""

    session: SessionData


class ClearResult(_Result):
    """``clear_session``: the session is revoked for good (data kept for analytics)."""

    session_id: UUID
    revoked_at: Millis


class DeletedCounts(_Result):
    messages: int = Field(ge=0)
    signals: int = Field(ge=0)
    personas: int = Field(ge=0)


class ForgetResult(_Result):
    """``forget_session``: what was erased; the session stays as a revoked tombstone."""

    session_id: UUID
    deleted: DeletedCounts


class LinkCounts(_Result):
    """Rows one ``link_session`` call attached to the account (all 0 when already linked)."""

    sessions: int = Field(ge=0, le=1)
    personas: int = Field(ge=0)
    messages: int = Field(ge=0)
    signals: int = Field(ge=0)


class LinkResult(_Result):
    """``link_session``: the session (created if it was new) now belongs to ``user_id``."""

    session_id: UUID
    user_id: UUID
    linked: LinkCounts
    session: SessionData
    created: bool = False


class SessionCounts(_Result):
    total: int = Field(ge=0)
    active: int = Field(ge=0)
    revoked: int = Field(ge=0)
    forgotten: int = Field(ge=0)


class SessionStats(_Result):
    """``admin_session_stats``: counts for analytics (service role only)."""

    sessions: SessionCounts
    personas: int = Field(ge=0)
    messages: int = Field(ge=0)
    signals: int = Field(ge=0)


class PurgeCounts(_Result):
    """What one ``purge_sessions`` call deleted."""

    idle_sessions: int = Field(ge=0)
    revoked_sessions: int = Field(ge=0)
    expired_sessions: int = Field(0, ge=0)  # past the absolute lifetime by the retention age
    personas: int = Field(ge=0)
    messages: int = Field(ge=0)
    signals: int = Field(ge=0)


class PurgeResult(_Result):
    """``purge_sessions``: counts, the cutoff used (ms), and whether a batch limit was hit."""

    cutoff: Millis
    deleted: PurgeCounts
    more: bool


class TouchResult(_Result):
    """``touch_sessions``: how many sessions were touched, and the ids whose copy is stale."""

    touched: int = Field(ge=0)
    stale: list[UUID] = Field(default_factory=list)


class ValidateResult(_Result):
    """``validate_sessions``: how many copies are still valid, the ids whose copy is stale, and
    which of those are revoked (refused for good)."""

    valid: int = Field(ge=0)
    stale: list[UUID] = Field(default_factory=list)
    revoked: list[UUID] = Field(default_factory=list)


# --- inputs --------------------------------------------------------------------------------------
class PersonaSignal(_Input):
    """One persona signal from a detector; ``score_updates`` are deltas in [-1, 1]."""

    signal_type: Identifier
    signal_text: str = Field(max_length=MAX_SIGNAL_TEXT_CHARS)
    signal_strength: Strength
    pain_points_inferred: list[PainPoint] = Field(default_factory=list)
    score_updates: dict[ScoreName, Delta] = Field(default_factory=dict)
    vector: VectorName | None = None
    vector_value: Identifier | None = None

    @model_validator(mode="after")
    def _check(self) -> PersonaSignal:
        if (self.vector is None) != (self.vector_value is None):
            raise ValueError("vector and vector_value go together")
        if len(set(self.pain_points_inferred)) > MAX_PAIN_POINTS:
            raise ValueError(f"at most {MAX_PAIN_POINTS} pain points")
        return self

    def to_rpc(self) -> dict[str, Any]:
        """The signal as the SQL's JSON object (also one element of ``signals``)."""
        return self.model_dump(mode="json")


class PersonaUpdate(_Input):
    """The keys ``update_persona`` accepts; only the keys given are sent.

    Scores and confidences are absolute and clamped to [0, 1] by the SQL (not refused);
    ``pain_points_detected`` is merged as a set union, ``questions_asked`` appended.
    """

    sales_focus_score: Number | None = None
    marketing_focus_score: Number | None = None
    operations_focus_score: Number | None = None
    compliance_focus_score: Number | None = None
    supplier_score: Number | None = None
    distributor_score: Number | None = None
    craft_score: Number | None = None
    mid_sized_score: Number | None = None
    large_score: Number | None = None
    pain_points_detected: list[PainPoint] | None = Field(None, max_length=MAX_PAIN_POINTS)
    pain_points_confidence: dict[PainPoint, Number] | None = None
    questions_asked: (
        list[Annotated[str, StringConstraints(max_length=MAX_QUESTION_CHARS)]] | None
    ) = None
    current_mode: Mode | None = None
    has_completed_onboarding: bool | None = None
    has_brochure: bool | None = None
    is_data_connected: bool | None = None
    last_generated_brochure_id: str | None = Field(None, max_length=MAX_BROCHURE_ID_CHARS)
    last_brochure_generated_at: Millis | None = None

    @model_validator(mode="after")
    def _no_null_values(self) -> PersonaUpdate:
        nullable = {"last_generated_brochure_id", "last_brochure_generated_at"}
        for name in self.model_fields_set - nullable:
            if getattr(self, name) is None:
                raise ValueError(f"{name} may not be null")
        return self

    def to_rpc(self) -> dict[str, Any]:
        """``updates``: exactly the keys that were set."""
        return self.model_dump(mode="json", exclude_unset=True)


class NewMessage(_Input):
    """A message to store (``add_conversation_message``)."""

    role: Role
    content: str = Field(max_length=MAX_MESSAGE_CHARS)
    generation_mode: Identifier | None = None
    ui_specification: Any = None
    estimated_read_time: str | None = Field(None, max_length=MAX_ESTIMATED_READ_TIME_CHARS)
    pain_points_inferred: list[PainPoint] = Field(default_factory=list, max_length=MAX_PAIN_POINTS)
