"""What :class:`~bevsession.service.SessionService` accepts: its parameters as pydantic types,
and the one place where a refused argument becomes :class:`~bevsession.errors.InvalidInput`.

Each service method is wrapped by :func:`validated` (pydantic's ``validate_call``), so its
annotations are its rules: no method checks a limit or a type by hand. The limits come from
:mod:`bevsession.limits`, which a test keeps equal to the SQL's domains; the database checks
everything again and stays the authority — this only refuses earlier, before any I/O, with the
same exception and code (``22023``) the SQL would raise.

Inputs a caller may give in a wider form (a session id as text, a signal or an update as a dict
or as its model) are validated *into the form the RPC takes*: a :class:`~uuid.UUID`, the
signal's or the update's JSON object. The annotation a caller's type checker sees stays the
wide one.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import timedelta
from typing import Annotated, Any, ParamSpec, TypeVar
from uuid import UUID

from pydantic import Field, PlainValidator, ValidationError, validate_call
from pydantic_core import PydanticCustomError

from .errors import InvalidInput
from .limits import (
    MAX_ESTIMATED_READ_TIME_CHARS,
    MAX_HISTORY_PAGE,
    MAX_MESSAGE_CHARS,
    MAX_PAIN_POINTS,
    MAX_PURGE_BATCH,
    MAX_SIGNALS_PER_TURN,
    MAX_TOUCH_BATCH,
    MIN_RETENTION_MS,
)
from .models import Identifier, PainPoint, PersonaSignal, PersonaUpdate

__all__ = [
    "AccountId",
    "CookieContent",
    "GenerationMode",
    "HistoryLimit",
    "MessageContent",
    "PainPoints",
    "PurgeBatch",
    "ReadTime",
    "RetentionAge",
    "SeenMs",
    "SessionId",
    "SignalJson",
    "Signals",
    "TokenBudget",
    "UpdatesJson",
    "invalid_input",
    "validated",
]

P = ParamSpec("P")
R = TypeVar("R")


def _uuid(value: object) -> UUID:
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        raise PydanticCustomError("uuid_type", "must be a UUID") from None


def _json_object(value: object) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise PydanticCustomError(
            "dict_type", "must be a JSON object (the cookie's SessionData)"
        )  # fmt: skip
    return dict(value)


# --- the parameters ------------------------------------------------------------------------
SessionId = Annotated[UUID | str, PlainValidator(_uuid)]
AccountId = SessionId
MessageContent = Annotated[str, Field(strict=True, max_length=MAX_MESSAGE_CHARS)]
HistoryLimit = Annotated[int, Field(strict=True, ge=1, le=MAX_HISTORY_PAGE)]
TokenBudget = Annotated[int, Field(strict=True, ge=1)]
GenerationMode = Identifier
ReadTime = Annotated[str, Field(max_length=MAX_ESTIMATED_READ_TIME_CHARS)]
PainPoints = Annotated[Sequence[PainPoint], Field(max_length=MAX_PAIN_POINTS)]
# A signal, validated into its JSON object: one element of begin_chat_turn's ``signals``, or
# record_persona_signal's arguments.
SignalJson = Annotated[
    PersonaSignal | Mapping[str, Any],
    PlainValidator(lambda value: PersonaSignal.model_validate(value).to_rpc()),
]
Signals = Annotated[Sequence[SignalJson], Field(max_length=MAX_SIGNALS_PER_TURN)]
# update_persona's ``updates``: exactly the keys that were set.
UpdatesJson = Annotated[
    PersonaUpdate | Mapping[str, Any],
    PlainValidator(lambda value: PersonaUpdate.model_validate(value).to_rpc()),
]
CookieContent = Annotated[Mapping[str, Any], PlainValidator(_json_object)]
# One touch or validation batch: session id → the last_activity_at (ms) the database confirmed.
SeenMs = Annotated[
    Mapping[UUID, Annotated[int, Field(strict=True)]], Field(max_length=MAX_TOUCH_BATCH)
]
RetentionAge = Annotated[timedelta, Field(strict=True, ge=timedelta(milliseconds=MIN_RETENTION_MS))]
PurgeBatch = Annotated[int, Field(strict=True, ge=1, le=MAX_PURGE_BATCH)]


# --- the one place a refusal becomes InvalidInput -------------------------------------------
def invalid_input(exc: ValidationError, parameters: Sequence[str] = ()) -> InvalidInput:
    """The first refusal as ``"<parameter>[.<key>…]: <why>"`` (code ``22023``, as the SQL's).

    *parameters* names the positions of positional arguments, which pydantic reports by index.
    """
    first = exc.errors(include_url=False)[0]
    loc = list(first["loc"])
    if loc and isinstance(loc[0], int) and loc[0] < len(parameters):
        loc[0] = parameters[loc[0]]
    where = ".".join(str(part) for part in loc) or "input"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return InvalidInput(f"{where}: {first['msg']}{more}", code="22023")


def validated(
    method: Callable[P, Coroutine[Any, Any, R]],
) -> Callable[P, Coroutine[Any, Any, R]]:
    """``validate_call`` for an async service method, refusals raised as ``InvalidInput``.

    pydantic validates an async function's arguments when the call is awaited, before its
    body runs; the body makes no pydantic calls of its own that could fail with a
    ``ValidationError`` (a result the models do not describe is a ``DatabaseError``).
    """
    checked = validate_call(method)
    parameters = tuple(inspect.signature(method).parameters)

    @functools.wraps(method)
    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await checked(*args, **kwargs)
        except ValidationError as exc:
            raise invalid_input(exc, parameters) from None

    return call
