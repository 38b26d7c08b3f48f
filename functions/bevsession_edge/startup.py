"""Checks a worker makes once against the database before it serves.

1. **Cookie passwords that change between starts.** A password generated at boot, or a secret
   that is not pinned, turns every cookie into "cannot decrypt": everyone is logged out, found
   late as a storm of new sessions. Each password id's HMAC fingerprint (never the password) is
   registered in the database; an id whose fingerprint changed is refused in production and
   warned about in development. Rotate by adding a new id, never by changing an old one.
2. **Expiries that disagree.** The database enforces its own absolute lifetime and idle
   timeout; a worker configured differently would accept cookies the database then refuses.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from bevsession.errors import SessionError
from bevsession.service import SessionService

from .config import ConfigError, Settings

log = logging.getLogger(__name__)

FINGERPRINT_CONTEXT = b"bevsession seal-key fingerprint v1"


def fingerprint(password: str) -> str:
    """A stable, one-way fingerprint of a cookie password (HMAC-SHA256 keyed by the password)."""
    return hmac.new(password.encode("utf-8"), FINGERPRINT_CONTEXT, hashlib.sha256).hexdigest()


async def check_seal_keys(service: SessionService, settings: Settings) -> None:
    result = await service.register_seal_keys(
        {key_id: fingerprint(pw) for key_id, pw in settings.passwords().items()}
    )
    if not result.changed:
        return
    ids = ", ".join(result.changed)
    message = (
        f"the cookie password of id(s) {ids} differs from the one this database saw first: every "
        "cookie sealed with it would be refused. Rotate by adding a new id to SESSION_PASSWORDS "
        "and keep the old one"
    )
    if settings.is_production:
        raise ConfigError(f"configuration refused: {message}")
    log.warning("%s (allowed in development)", message)


async def check_policy(service: SessionService, settings: Settings) -> None:
    policy = await service.get_session_policy()
    ours = (settings.session_ttl, settings.session_idle_timeout or None)
    if (policy.absolute_lifetime_seconds, policy.idle_timeout_seconds) != ours:
        log.warning(
            "session expiries differ: this worker uses SESSION_TTL=%s SESSION_IDLE_TIMEOUT=%s, "
            "the database enforces %s and %s (bevsession.session_policy); the stricter one wins",
            settings.session_ttl,
            settings.session_idle_timeout,
            policy.absolute_lifetime_seconds,
            policy.idle_timeout_seconds,
        )


async def run_startup_checks(service: SessionService, settings: Settings) -> None:
    """Both checks; a database that does not answer yet only delays them to the next start."""
    try:
        await check_seal_keys(service, settings)
        await check_policy(service, settings)
    except SessionError as exc:
        log.warning("start-up checks skipped: %s", exc.message)
