"""Configuration from the environment, refused early and clearly when missing or weak.

Every setting has one environment variable. The server refuses to start rather than run with
a password shorter than iron's 32 characters, a half-configured Supabase stack, or — in
production — a generated development password or cookies without ``Secure``.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bevsession.access_tokens import AccessTokenVerifier, jwks_url, parse_jwks
from bevsession.cookies import CookieOptions
from bevsession.sealing import SealConfigError, check_passwords
from bevsession.supabase_keys import ENV as SUPABASE_ENV
from bevsession.supabase_keys import SupabaseKeys

from .guards import parse_origins
from .rates import parse_rate

HOST_PREFIX = "__Host-"

Environment = Literal["development", "production"]
TransportName = Literal["auto", "postgres", "supabase"]


class ConfigError(ValueError):
    """The configuration cannot be used; the message says which variable and why."""


class Settings(BaseSettings):
    """All settings of the edge worker. Secrets are ``SecretStr`` so they never print."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    environment: Environment = Field("development", validation_alias="BEVSESSION_ENV")

    # Cookie sealing: one password, or a rotation map {id: password} (newest numeric id seals).
    session_password: SecretStr | None = Field(None, validation_alias="SESSION_PASSWORD")
    session_passwords: Annotated[dict[str, SecretStr] | None, NoDecode] = Field(
        None, validation_alias="SESSION_PASSWORDS"
    )
    # Set by `bevsession serve` when it generated a development password (refused in production).
    password_generated: bool = Field(False, validation_alias="BEVSESSION_PASSWORD_GENERATED")

    # Database: a PostgreSQL URL (postgres transport) or a Supabase project (supabase transport)
    # with its current keys (publishable, secret, an imported JWT signing key) or its legacy
    # ones (anon, service_role, the JWT secret); see bevsession.supabase_keys.
    database_url: SecretStr | None = Field(None, validation_alias="DATABASE_URL")
    supabase_url: str | None = Field(None, validation_alias="SUPABASE_URL")
    supabase_publishable_key: SecretStr | None = Field(
        None, validation_alias="SUPABASE_PUBLISHABLE_KEY"
    )
    supabase_secret_key: SecretStr | None = Field(None, validation_alias="SUPABASE_SECRET_KEY")
    supabase_jwt_signing_key: SecretStr | None = Field(
        None, validation_alias="SUPABASE_JWT_SIGNING_KEY"
    )
    supabase_jwt_signing_key_id: str | None = Field(
        None, validation_alias="SUPABASE_JWT_SIGNING_KEY_ID"
    )
    supabase_anon_key: SecretStr | None = Field(None, validation_alias="SUPABASE_ANON_KEY")
    supabase_service_role_key: SecretStr | None = Field(
        None, validation_alias="SUPABASE_SERVICE_ROLE_KEY"
    )
    supabase_jwt_secret: SecretStr | None = Field(None, validation_alias="SUPABASE_JWT_SECRET")
    transport: TransportName = Field("auto", validation_alias="BEVSESSION_TRANSPORT")
    # Visitors who sign in (POST /api/session/link): their Supabase access tokens are verified
    # against the project's JWKS — SUPABASE_JWKS when given (public keys as JSON), else fetched
    # from SUPABASE_URL (either transport) — and, HS256, the legacy SUPABASE_JWT_SECRET.
    supabase_jwks: str | None = Field(None, validation_alias="SUPABASE_JWKS")

    # Cookie and session lifetime.
    cookie_name: str = Field("bevgenie_session", validation_alias="SESSION_COOKIE_NAME")
    # Two expiries, the seed's by default: a session lives 24 h past its last activity (the
    # seed saves its cookie with a 24 h ttl on every request, so its lifetime slides), within an
    # absolute lifetime of 30 days from its creation (activity alone cannot keep it for ever).
    # Idle 0 = none. The cookie's Max-Age follows whichever ends first. The database enforces
    # its own copy of both (bevsession.session_policy); keep them equal.
    session_ttl: int = Field(30 * 86400, ge=120, validation_alias="SESSION_TTL")
    session_idle_timeout: int = Field(86400, ge=0, validation_alias="SESSION_IDLE_TIMEOUT")
    # Secure unless turned off explicitly (plain-http development; production refuses that).
    cookie_secure: bool | None = Field(None, validation_alias="SESSION_COOKIE_SECURE")
    # Without a domain, production names the cookie __Host-<name> (no sibling subdomain can set
    # it); with one, the cookie is shared with its subdomains and keeps its plain name.
    cookie_domain: str | None = Field(None, validation_alias="SESSION_COOKIE_DOMAIN")

    # Read cache (functions/bevsession_edge/read_cache.py): how long a worker answers repeated
    # reads of a cookie the database confirmed without asking again (0 = never: one RPC per
    # read), how often it reports those reads to the database in one call (activity, and
    # revocations made elsewhere reach the worker this fast), and how many cookies it keeps.
    session_read_cache_seconds: float = Field(
        60.0, ge=0, le=3600, validation_alias="SESSION_READ_CACHE_SECONDS"
    )
    session_touch_flush_seconds: float = Field(
        1.0, gt=0, le=60, validation_alias="SESSION_TOUCH_FLUSH_SECONDS"
    )
    session_read_cache_entries: int = Field(
        10_000, ge=1, le=1_000_000, validation_alias="SESSION_READ_CACHE_ENTRIES"
    )

    # Abuse limits.
    max_message_chars: int = Field(4000, ge=1, le=8000, validation_alias="MAX_MESSAGE_CHARS")
    history_page_max: int = Field(100, ge=1, le=200, validation_alias="HISTORY_PAGE_MAX")
    # Per client address, in each worker (client_limits.py): new sessions and chat turns
    # ("N/minute", "N/10s", "off"), and how the address is found behind proxies of yours.
    client_session_rate: str = Field("20/minute", validation_alias="CLIENT_SESSION_RATE")
    client_chat_rate: str = Field("60/minute", validation_alias="CLIENT_CHAT_RATE")
    trusted_proxy_hops: int = Field(0, ge=0, le=10, validation_alias="TRUSTED_PROXY_HOPS")
    # Origins besides this server's own that may send state-changing /api/ requests (guards.py).
    allowed_origins: str = Field("", validation_alias="ALLOWED_ORIGINS")
    # GET /metrics: loopback peers only, or the bearer of this token when set.
    metrics_token: SecretStr | None = Field(None, validation_alias="METRICS_TOKEN")
    client_address_header: str = Field(
        "X-Forwarded-For", pattern=r"^[A-Za-z0-9-]{1,64}$", validation_alias="CLIENT_ADDRESS_HEADER"
    )

    @field_validator("session_passwords", mode="before")
    @classmethod
    def _parse_password_map(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError("SESSION_PASSWORDS must be a JSON object {id: password}") from exc
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        parse_origins(value)  # a ValueError names the item that is not an origin
        return value

    @field_validator("client_session_rate", "client_chat_rate")
    @classmethod
    def _rate(cls, value: str) -> str:
        parse_rate(value)  # a ValueError says what a rate looks like
        return value

    @field_validator("cookie_domain")
    @classmethod
    def _cookie_domain(cls, value: str | None) -> str | None:
        if value is not None:
            CookieOptions(domain=value)  # the same rule the Set-Cookie writer applies
        return value

    @field_validator("cookie_name")
    @classmethod
    def _cookie_name_token(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_\-]{1,64}", value):
            raise ValueError("SESSION_COOKIE_NAME may use letters, digits, '_' and '-' only")
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        passwords = self.passwords()
        if not passwords:
            raise ValueError("set SESSION_PASSWORD (32+ characters) or SESSION_PASSWORDS")
        try:
            check_passwords(passwords)  # iron-session's rules, as the sealer applies them
        except SealConfigError as exc:
            variable = "SESSION_PASSWORDS" if self.session_passwords else "SESSION_PASSWORD"
            raise ValueError(f"{variable}: {exc}") from None
        if self.transport_name() == "supabase":
            problems = [] if self.supabase_url else ["the supabase transport needs SUPABASE_URL"]
            try:
                self.supabase_keys()
            except ValueError as exc:
                problems.append(str(exc))
            if problems:
                raise ValueError("; ".join(problems))
        elif self.database_url is None:
            raise ValueError("set DATABASE_URL (or the SUPABASE_* variables)")
        if self.supabase_jwks is not None and self.supabase_jwks.strip():
            try:
                parse_jwks(self.supabase_jwks)
            except ValueError as exc:
                raise ValueError(f"SUPABASE_JWKS: {exc}") from None
        secret = self.supabase_jwt_secret
        if secret is not None and 0 < len(secret.get_secret_value()) < 32:
            raise ValueError("SUPABASE_JWT_SECRET must have at least 32 characters")
        if 0 < self.session_idle_timeout < 120:
            # Max-Age is the idle timeout less iron's 60 s skew: below 120 s the cookie would
            # expire (nearly) at once.
            raise ValueError("SESSION_IDLE_TIMEOUT must be 0 (none) or at least 120 seconds")
        if self.environment == "production":
            if self.password_generated:
                raise ValueError(
                    "production refuses a generated session password: set SESSION_PASSWORD(S) "
                    "to a stable secret, or every restart logs everyone out"
                )
            if self.cookie_secure is False:
                raise ValueError("production refuses SESSION_COOKIE_SECURE=false")
        return self

    # --- derived values -------------------------------------------------------------------
    def passwords(self) -> dict[str, str]:
        """The password map iron expects: ``{"1": pw}`` for a single password."""
        if self.session_passwords:
            return {k: v.get_secret_value() for k, v in self.session_passwords.items()}
        if self.session_password is not None:
            return {"1": self.session_password.get_secret_value()}
        return {}

    def supabase_keys(self) -> SupabaseKeys:
        """The Supabase keys the edge worker needs, resolved (a ValueError names what is
        missing or misplaced): the public key and a signing key (or the legacy JWT secret); the
        service key is not needed (no admin call) and not used if given."""

        def text(value: SecretStr | str | None) -> str | None:
            return value.get_secret_value() if isinstance(value, SecretStr) else value

        return SupabaseKeys.from_env({
            SUPABASE_ENV["secret_key"]: text(self.supabase_secret_key),
            SUPABASE_ENV["publishable_key"]: text(self.supabase_publishable_key),
            SUPABASE_ENV["signing_key"]: text(self.supabase_jwt_signing_key),
            SUPABASE_ENV["signing_key_id"]: text(self.supabase_jwt_signing_key_id),
            SUPABASE_ENV["service_role_key"]: text(self.supabase_service_role_key),
            SUPABASE_ENV["anon_key"]: text(self.supabase_anon_key),
            SUPABASE_ENV["jwt_secret"]: text(self.supabase_jwt_secret),
        }, service=False)  # fmt: skip

    def account_verifier(self) -> AccessTokenVerifier | None:
        """What verifies the access tokens of visitors who sign in, or None when nothing is
        configured for it (``POST /api/session/link`` then answers 501)."""
        static = self.supabase_jwks.strip() if self.supabase_jwks else ""
        jwks = parse_jwks(static) if static else None
        url = jwks_url(self.supabase_url) if jwks is None and self.supabase_url else None
        secret = self.supabase_jwt_secret.get_secret_value() if self.supabase_jwt_secret else ""
        if jwks is None and url is None and not secret:
            return None
        # The publishable (or legacy anon) key, never a secret one, as the gateway's apikey.
        public = self.supabase_publishable_key or self.supabase_anon_key
        headers = {"apikey": public.get_secret_value()} if url and public else None
        return AccessTokenVerifier(
            jwks=jwks, jwks_url=url, jwt_secret=secret or None, headers=headers
        )

    def transport_name(self) -> Literal["postgres", "supabase"]:
        if self.transport != "auto":
            return self.transport
        return "postgres" if self.database_url is not None or not self.supabase_url else "supabase"

    @property
    def secure_cookies(self) -> bool:
        """``Secure`` by default everywhere, as iron-session sets it (browsers accept it on
        http://localhost); off only when ``SESSION_COOKIE_SECURE=false`` says so."""
        return self.cookie_secure if self.cookie_secure is not None else True

    @property
    def session_cookie_name(self) -> str:
        """The cookie's name on the wire: ``__Host-`` + the name in production without a
        domain (the browser then refuses it from a sibling subdomain or without Secure)."""
        if self.is_production and self.cookie_domain is None:
            return HOST_PREFIX + self.cookie_name
        return self.cookie_name

    @property
    def is_production(self) -> bool:
        return self.environment == "production"


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment (plus overrides), or a ConfigError listing every problem."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            (f"{'.'.join(map(str, e['loc']))}: " if e["loc"] else "")
            + e["msg"].removeprefix("Value error, ")
            for e in exc.errors()
        )
        raise ConfigError(f"configuration refused: {problems}") from None
