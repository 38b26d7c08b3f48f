"""What a transport is: something that runs one RPC for one identity and returns its JSON.

The session service knows only this interface, so the supabase (HTTP via PostgREST) and the
postgres (asyncpg) transports are interchangeable and one test suite runs against both.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar
from uuid import UUID

from pydantic import BaseModel

__all__ = ["Identity", "Service", "Transport", "Visitor", "Worker"]

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Visitor:
    """A call on behalf of one anonymous visitor: role ``session_visitor``, RLS by session id.

    ``linked_user_id`` is set for one call only, ``link_session``, once the edge worker has
    verified the visitor's access token for that account: it becomes the ``linked_user_id``
    claim, which is how the database learns which account to link (never an argument).
    """

    session_id: UUID
    linked_user_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class Worker:
    """The edge worker's own calls as ``session_worker``: batched touches, re-checks of its read
    cache, seal key registration, the session policy — nothing more (no RLS bypass)."""


@dataclass(frozen=True, slots=True)
class Service:
    """An admin call as ``service_role`` (bypasses RLS): analytics and retention only."""


Identity = Visitor | Worker | Service


class Transport(ABC):
    """Carries one RPC (a function in schema ``public``) to the database.

    ``call`` returns the function's JSON decoded to Python (``None`` for void), raises a
    :class:`bevsession.errors.SessionError` for every database or network failure, and a
    ``ValueError`` before any I/O for a function or argument name outside the known API.
    """

    name: str = "abstract"

    @abstractmethod
    async def call(self, fn: str, args: Mapping[str, Any], *, identity: Identity) -> Any:
        """Run ``public.<fn>(<name> => <value>, …)`` as *identity*, in one transaction."""

    async def call_model(
        self, fn: str, args: Mapping[str, Any], model: type[M], *, identity: Identity
    ) -> M:
        """:meth:`call`, with the function's JSON validated as *model* (pydantic's
        ``ValidationError`` when it does not fit).

        This default validates what :meth:`call` decoded. A transport that receives the JSON
        as text overrides it to hand the text straight to ``model.model_validate_json``: one
        pass in pydantic-core, no Python dicts and lists built in between, and whatever
        *model* does not name (e.g. persona snapshots a lean result leaves out) only skipped.
        """
        return model.model_validate(await self.call(fn, args, identity=identity))

    @abstractmethod
    async def ping(self) -> None:
        """Raise ``DatabaseUnavailable`` unless the database answers (health checks)."""

    @abstractmethod
    async def close(self) -> None:
        """Release every connection; the transport cannot be used afterwards."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
