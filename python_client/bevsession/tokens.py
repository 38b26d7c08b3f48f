"""Per-session identity: the claims a visitor's RPC runs with, and the JWT that carries them.

A visitor call runs as the least-privilege role ``session_visitor`` with a ``session_id``
claim; RLS compares rows with that claim. The supabase transport sends the claims as an HS256
JWT signed with the project's JWT secret (PostgREST verifies it and copies the payload into
``request.jwt.claims``); the postgres transport puts the very same payload into
``request.jwt.claims`` itself. Both read the payload from :meth:`Claims.visitor`, so
the two paths cannot drift apart.

Tokens live five minutes by default: a token only has to survive one HTTP request, and a short
life limits the harm of one that leaks into a log. Minting costs about 20 µs (see
``python -m bench.rpc``), two orders of magnitude below one RPC, so tokens are not cached.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final
from uuid import UUID

import jwt

__all__ = [
    "DEFAULT_ISSUER",
    "DEFAULT_TTL",
    "SERVICE_ROLE",
    "VISITOR_ROLE",
    "Claims",
    "TokenMinter",
]

VISITOR_ROLE: Final = "session_visitor"
SERVICE_ROLE: Final = "service_role"
DEFAULT_TTL: Final = 300
DEFAULT_ISSUER: Final = "bevsession"
MIN_SECRET_LENGTH: Final = 32  # PostgREST (v13+) refuses shorter HS256 secrets


@dataclass(frozen=True)
class Claims:
    """Builds the ``request.jwt.claims`` payloads; needs no secret (the postgres transport).

    ``audience`` is left out unless set: PostgREST checks ``aud`` only when ``jwt-aud`` is
    configured, and Supabase does not configure it.
    """

    ttl: int = DEFAULT_TTL
    issuer: str = DEFAULT_ISSUER
    audience: str | None = None
    role: str = VISITOR_ROLE
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        if not 10 <= self.ttl <= 3600:
            raise ValueError("token ttl must be between 10 and 3600 seconds")

    def visitor(self, session_id: UUID, *, now: int | None = None) -> dict[str, Any]:
        """A visitor's payload: role, session_id, iat, exp, iss (and aud if set)."""
        issued = int(self.clock()) if now is None else now
        claims: dict[str, Any] = {
            "role": self.role,
            "session_id": str(session_id),
            "iat": issued,
            "exp": issued + self.ttl,
            "iss": self.issuer,
        }
        if self.audience is not None:
            claims["aud"] = self.audience
        return claims

    def service(self) -> dict[str, Any]:
        """Admin calls' payload on the postgres transport (PostgREST: the service key's)."""
        return {"role": SERVICE_ROLE, "iss": self.issuer}


@dataclass(frozen=True)
class TokenMinter:
    """Signs visitor claims as HS256 JWTs with the project's JWT secret.

    ``key_id`` sets the JWT header's ``kid``: needed once a Supabase project verifies with
    signing keys and the shared secret was imported as one of them (PostgREST then tries only
    the key with that id); without it every configured key is tried, as for the legacy secret.
    """

    secret: str = field(repr=False)
    claims: Claims = field(default_factory=Claims)
    key_id: str | None = None

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"the JWT secret must have at least {MIN_SECRET_LENGTH} characters "
                "(PostgREST refuses shorter HS256 secrets)"
            )

    def visitor_token(self, session_id: UUID) -> str:
        """A signed JWT for *session_id*, valid for ``claims.ttl`` seconds."""
        headers = {"kid": self.key_id} if self.key_id else None
        return jwt.encode(
            self.claims.visitor(session_id), self.secret, algorithm="HS256", headers=headers
        )

    def decode(self, token: str) -> dict[str, Any]:
        """Verify and decode a token minted here (tests and diagnostics)."""
        decoded: dict[str, Any] = jwt.decode(
            token,
            self.secret,
            algorithms=["HS256"],
            audience=self.claims.audience,
            issuer=self.claims.issuer,
            options={"require": ["exp", "iat", "role"]},
        )
        return decoded
