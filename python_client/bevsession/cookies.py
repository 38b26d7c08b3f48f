"""The session cookie's ``Set-Cookie`` header, written exactly as iron-session 8.0.4 writes it.

iron-session serializes with the ``cookie`` package: the value through ``encodeURIComponent``,
then ``Max-Age``, ``Domain``, ``Path``, ``HttpOnly``, ``Secure``, ``SameSite`` in that order, with
``Max-Age = ttl - 60`` (the seal's clock-skew allowance; ttl 0 means "no expiry" and gives
2147483647). A header over 4096 characters is refused, since browsers would drop it silently.

Framework-free on purpose: the edge worker puts the string into its aiohttp response.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import quote

from .sealing import TIMESTAMP_SKEW_SEC

__all__ = [
    "MAX_COOKIE_LENGTH",
    "CookieOptions",
    "CookieTooLarge",
    "destroy_cookie_header",
    "set_cookie_header",
]

MAX_COOKIE_LENGTH: Final = 4096
"""iron-session's limit on the serialized cookie (name, value and attributes)."""
NO_EXPIRY_MAX_AGE: Final = 2147483647
"""iron-session's Max-Age for ttl 0."""

# The `cookie` package's checks (RFC 6265 token, path-value and domain-value).
_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_PATH = re.compile(r"[\x20-\x3a\x3c-\x7e]*")
_DOMAIN = re.compile(
    r"[.]?[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:[.][a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*",
    re.IGNORECASE,
)
# encodeURIComponent leaves letters, digits and -_.!~*'() alone; a seal never needs escaping.
_URI_COMPONENT_SAFE: Final = "-_.!~*'()"
_SAME_SITE: Final = {"lax": "Lax", "strict": "Strict", "none": "None"}


class CookieTooLarge(ValueError):
    """The ``Set-Cookie`` header would exceed what browsers accept: keep less in the cookie."""

    def __init__(self, size: int, limit: int = MAX_COOKIE_LENGTH) -> None:
        super().__init__(
            f"session cookie is {size} characters, over the {limit} browsers accept; "
            "keep less in the session cookie"
        )
        self.size: Final = size
        self.limit: Final = limit


@dataclass(frozen=True, slots=True)
class CookieOptions:
    """Name, lifetime and attributes of the session cookie (validated when built).

    ``ttl`` is the session lifetime in seconds, the same number the seal is made with; 0 means
    no expiry. A ttl of 1 to 60 seconds is refused: ``Max-Age`` would be 0 or negative and the
    browser would drop the cookie at once.
    """

    name: str = "bevgenie_session"
    ttl: int = 86400
    path: str | None = "/"
    http_only: bool = True
    secure: bool = True
    same_site: Literal["lax", "strict", "none"] | None = "lax"
    domain: str | None = None

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"cookie name {self.name!r} is not an RFC 6265 token")
        if not isinstance(self.ttl, int) or isinstance(self.ttl, bool) or self.ttl < 0:
            raise ValueError("cookie ttl must be a whole number of seconds >= 0")
        if 0 < self.ttl <= TIMESTAMP_SKEW_SEC:
            raise ValueError(
                f"cookie ttl must be 0 or over {TIMESTAMP_SKEW_SEC} seconds (Max-Age = ttl - "
                f"{TIMESTAMP_SKEW_SEC})"
            )
        if self.path is not None and not _PATH.fullmatch(self.path):
            raise ValueError(f"cookie path {self.path!r} is invalid")
        if self.domain is not None and not _DOMAIN.fullmatch(self.domain):
            raise ValueError(f"cookie domain {self.domain!r} is invalid")
        if self.same_site is not None and self.same_site not in _SAME_SITE:
            raise ValueError(f"same_site must be one of {sorted(_SAME_SITE)} or None")
        if self.same_site == "none" and not self.secure:
            raise ValueError("browsers refuse SameSite=None without Secure")

    @property
    def max_age(self) -> int:
        """``Max-Age`` of a saved cookie: expires a little before the seal does."""
        return NO_EXPIRY_MAX_AGE if self.ttl == 0 else self.ttl - TIMESTAMP_SKEW_SEC


def _serialize(options: CookieOptions, value: str, max_age: int) -> str:
    parts = [f"{options.name}={quote(value, safe=_URI_COMPONENT_SAFE)}", f"Max-Age={max_age}"]
    if options.domain:
        parts.append(f"Domain={options.domain}")
    if options.path:
        parts.append(f"Path={options.path}")
    if options.http_only:
        parts.append("HttpOnly")
    if options.secure:
        parts.append("Secure")
    if options.same_site is not None:
        parts.append(f"SameSite={_SAME_SITE[options.same_site]}")
    return "; ".join(parts)


def set_cookie_header(seal: str, options: CookieOptions) -> str:
    """The ``Set-Cookie`` value that stores ``seal`` (iron-session's ``session.save()``).

    Raises :class:`CookieTooLarge` when the header is longer than 4096 characters.
    """
    header = _serialize(options, seal, options.max_age)
    if len(header) > MAX_COOKIE_LENGTH:
        raise CookieTooLarge(len(header))
    return header


def destroy_cookie_header(options: CookieOptions) -> str:
    """The ``Set-Cookie`` value that deletes the cookie (iron-session's ``session.destroy()``)."""
    return _serialize(options, "", 0)
