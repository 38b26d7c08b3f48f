"""Visitors who sign in: the access token of ``POST /api/session/link``, verified.

The visitor's Supabase access token arrives as ``Authorization: Bearer <token>`` (never in the
body, never in a cookie: a cross-site form cannot send that header, so the route needs no CSRF
token). It is verified (:class:`bevsession.access_tokens.AccessTokenVerifier`) before anything
reads or writes the session; every refusal is a 401 JSON error with ``WWW-Authenticate``
(RFC 6750), logged at info level with its reason and never with the token.
"""

from __future__ import annotations

import logging

from aiohttp import hdrs, web

from bevsession.access_tokens import AccessTokenError, Account, JwksUnavailable

from .http_errors import ApiError
from .keys import ACCOUNTS

log = logging.getLogger(__name__)

REALM = "bevsession"
JWKS_RETRY_AFTER_SECONDS = 5
NOT_CONFIGURED = (
    "linking sessions to accounts is not configured on this server: set SUPABASE_URL (its "
    "JWKS is fetched), SUPABASE_JWKS or SUPABASE_JWT_SECRET"
)


def _challenge(error: str | None = None, description: str | None = None) -> dict[str, str]:
    value = f'Bearer realm="{REALM}"'
    if error is not None:
        value += f', error="{error}", error_description="{description or error}"'
    return {"WWW-Authenticate": value}


def bearer_token(request: web.Request) -> str:
    """The Bearer token of the request, or a 401 saying what is missing."""
    header = request.headers.get(hdrs.AUTHORIZATION, "")
    scheme, _, token = header.strip().partition(" ")
    if not header.strip():
        raise ApiError(
            401, "missing_token",
            "send the visitor's Supabase access token as Authorization: Bearer <token>",
            **_challenge(),
        )  # fmt: skip
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401, "invalid_token", "the Authorization header must be Bearer <access token>",
            **_challenge("invalid_request", "expected a Bearer token"),
        )  # fmt: skip
    return token.strip()


async def verified_account(request: web.Request) -> Account:
    """The account the request's access token proves: 501 when linking is not configured,
    401 for a missing or refused token, 503 while the project's JWKS cannot be fetched."""
    verifier = request.app.get(ACCOUNTS)
    if verifier is None:
        raise ApiError(501, "linking_not_configured", NOT_CONFIGURED)
    token = bearer_token(request)
    try:
        return await verifier.verify(token)
    except AccessTokenError as exc:
        log.info("access token refused (%s) on %s %s", exc.reason, request.method, request.path)
        raise ApiError(
            401, "invalid_token", exc.message, **_challenge("invalid_token", exc.message)
        ) from None
    except JwksUnavailable as exc:
        log.warning("cannot verify an access token: %s", exc)
        raise ApiError(
            503, "jwks_unavailable",
            "the project's signing keys cannot be fetched right now; try again shortly",
            **{"Retry-After": str(JWKS_RETRY_AFTER_SECONDS)},
        ) from None  # fmt: skip
