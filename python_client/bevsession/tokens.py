"""Per-session identity: the claims a visitor's RPC runs with, and the JWT that carries them.

A visitor call runs as the least-privilege role ``session_visitor`` with a ``session_id``
claim; RLS compares rows with that claim. The supabase transport sends the claims as a JWT
that PostgREST verifies and copies into ``request.jwt.claims``: signed with a private key the
project imported as a JWT signing key (ES256 or RS256, its ``kid`` in the header; see
:mod:`bevsession.supabase_keys`), or, on a project that still has it, HS256 with the legacy JWT
secret. The postgres transport puts the very same payload into ``request.jwt.claims`` itself.
Both read the payload from :meth:`Claims.visitor`, so the two paths cannot drift apart.

One call carries one more claim: ``link_session`` runs with ``linked_user_id``, the account the
edge worker has just verified the visitor's Supabase access token for (see
:mod:`bevsession.access_tokens`). Only this code mints it, and only when asked for that call, so
the account a session is linked to is never something a visitor can choose.

Tokens live five minutes by default: a token only has to survive one HTTP request, and a short
life limits the harm of one that leaks into a log. Minting costs about 14 µs with HS256, 28 µs
with ES256 and 0.23 ms with RS256 (an RSA private-key operation) on this project's 2-core
machine (``python -m bench.rpc``) — below one RPC — so tokens are not cached; ES256 is the
default.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final
from uuid import UUID

import jwt

from .supabase_keys import SigningKey

__all__ = [
    "DEFAULT_ISSUER",
    "DEFAULT_TTL",
    "SERVICE_ROLE",
    "VISITOR_ROLE",
    "WORKER_ROLE",
    "Claims",
    "TokenMinter",
]

VISITOR_ROLE: Final = "session_visitor"
WORKER_ROLE: Final = "session_worker"
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

    def visitor(
        self, session_id: UUID, *, linked_user_id: UUID | None = None, now: int | None = None
    ) -> dict[str, Any]:
        """A visitor's payload: role, session_id, iat, exp, iss (and aud if set); with
        *linked_user_id* (``link_session`` only) also the verified account to link."""
        issued = int(self.clock()) if now is None else now
        claims: dict[str, Any] = {
            "role": self.role,
            "session_id": str(session_id),
            "iat": issued,
            "exp": issued + self.ttl,
            "iss": self.issuer,
        }
        if linked_user_id is not None:
            claims["linked_user_id"] = str(linked_user_id)
        if self.audience is not None:
            claims["aud"] = self.audience
        return claims

    def worker(self, *, now: int | None = None) -> dict[str, Any]:
        """The edge worker's own payload: role ``session_worker``, iat, exp, iss (no session)."""
        issued = int(self.clock()) if now is None else now
        claims: dict[str, Any] = {
            "role": WORKER_ROLE, "iat": issued, "exp": issued + self.ttl, "iss": self.issuer,
        }  # fmt: skip
        if self.audience is not None:
            claims["aud"] = self.audience
        return claims

    def service(self) -> dict[str, Any]:
        """Admin calls' payload on the postgres transport (PostgREST: the service key's)."""
        return {"role": SERVICE_ROLE, "iss": self.issuer}


@dataclass(frozen=True)
class TokenMinter:
    """Signs visitor claims: with a :class:`SigningKey` (ES256/RS256, the current way) or, as
    HS256, with the project's legacy JWT secret — exactly one of the two.

    ``key_id`` sets the JWT header's ``kid``: a signing key's own id (always set), or for HS256
    the id of the shared secret once a project verifies with signing keys and the secret was
    imported as one of them (PostgREST then tries only the key with that id); without it every
    configured key is tried, as for the legacy secret.
    """

    secret: str | None = field(default=None, repr=False)
    claims: Claims = field(default_factory=Claims)
    key_id: str | None = None
    signing_key: SigningKey | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if (self.secret is None) == (self.signing_key is None):
            raise ValueError(
                "a token minter needs a JWT signing key or the project's JWT secret (one of them)"
            )
        if self.signing_key is not None:
            if self.key_id is None:
                object.__setattr__(self, "key_id", self.signing_key.key_id)
            elif self.key_id != self.signing_key.key_id:
                raise ValueError("key_id differs from the signing key's own kid")
            return
        assert self.secret is not None
        if len(self.secret) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"the JWT secret must have at least {MIN_SECRET_LENGTH} characters "
                "(PostgREST refuses shorter HS256 secrets)"
            )

    @property
    def algorithm(self) -> str:
        return self.signing_key.algorithm if self.signing_key is not None else "HS256"

    def visitor_token(self, session_id: UUID, *, linked_user_id: UUID | None = None) -> str:
        """A signed JWT for *session_id* (and, for ``link_session``, the verified account
        *linked_user_id*), valid for ``claims.ttl`` seconds."""
        payload = self.claims.visitor(session_id, linked_user_id=linked_user_id)
        if self.signing_key is not None:
            return self.signing_key.sign(payload)
        headers = {"kid": self.key_id} if self.key_id else None
        assert self.secret is not None
        return jwt.encode(payload, self.secret, algorithm="HS256", headers=headers)

    def worker_token(self) -> str:
        """A signed JWT for the edge worker's own role, valid for ``claims.ttl`` seconds."""
        payload = self.claims.worker()
        if self.signing_key is not None:
            return self.signing_key.sign(payload)
        headers = {"kid": self.key_id} if self.key_id else None
        assert self.secret is not None
        return jwt.encode(payload, self.secret, algorithm="HS256", headers=headers)

    def decode(self, token: str) -> dict[str, Any]:
        """Verify and decode a token minted here (tests and diagnostics)."""
        options: dict[str, Any] = {
            "audience": self.claims.audience,
            "issuer": self.claims.issuer,
            "options": {"require": ["exp", "iat", "role"]},
        }
        if self.signing_key is not None:
            return self.signing_key.verify(token, **options)
        assert self.secret is not None
        decoded: dict[str, Any] = jwt.decode(token, self.secret, algorithms=["HS256"], **options)
        return decoded
