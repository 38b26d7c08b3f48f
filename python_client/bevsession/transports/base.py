"""What a transport is: something that runs one RPC for one identity and returns its JSON.

The session service knows only this interface, so the supabase (HTTP via PostgREST) and the
postgres (asyncpg) transports are interchangeable and one test suite runs against both.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from uuid import UUID

__all__ = ["Identity", "Service", "Transport", "Visitor", "Worker"]


@dataclass(frozen=True, slots=True)
class Visitor:
    """A call on behalf of one anonymous visitor: role ``session_visitor``, RLS by session id."""

    session_id: UUID


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
