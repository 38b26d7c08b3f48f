"""The session cookie as iron-session writes and reads it: ``Set-Cookie`` out, ``Cookie`` in.

Writing, exactly as iron-session 8.0.4 (and 9.0.1, for one cookie) writes it: the ``cookie``
package serializes the value (through ``encodeURIComponent`` in v8; a seal never needs escaping),
then ``Max-Age``, ``Domain``, ``Path``, ``HttpOnly``, ``Secure``, ``SameSite`` in that order, with
``Max-Age = ttl - 60`` (the seal's clock-skew allowance; ttl 0 means "no expiry" and gives
2147483647). A header over 4096 characters is refused, since browsers would drop it silently.

Reading, exactly as iron-session 9.0.1 reads it: the ``Cookie`` header is parsed as the
``cookie`` package's ``parseCookie`` does (the first of two cookies of one name wins; a value
with ``%`` is percent-decoded, and left as it is when that fails), and a session that v9 stored
in chunks (``chunk: true``: ``name.0`` … ``name.3``, each under 4096 bytes) is joined back when
``name`` itself is empty or absent. This server never writes chunks: its cookie holds a summary
that stays far below 4096 bytes (histories live in the database). But whenever it writes or
deletes the session cookie it expires the chunks the request carried, or a v9 app would reopen
the session from them.

Framework-free on purpose: the edge worker puts the strings into its aiohttp response.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Final, Literal
from urllib.parse import quote

from .sealing import TIMESTAMP_SKEW_SEC

__all__ = [
    "MAX_CHUNKS",
    "MAX_COOKIE_HEADER",
    "MAX_COOKIE_LENGTH",
    "CookieOptions",
    "CookieTooLarge",
    "IncomingSessionCookie",
    "chunk_name",
    "decode_cookie_value",
    "destroy_cookie_header",
    "expire_cookie_headers",
    "parse_cookie_header",
    "read_session_cookie",
    "set_cookie_header",
]

MAX_COOKIE_LENGTH: Final = 4096
"""iron-session's limit on the serialized cookie (name, value and attributes)."""
NO_EXPIRY_MAX_AGE: Final = 2147483647
"""iron-session's Max-Age for ttl 0."""
MAX_CHUNKS: Final = 4
"""iron-session 9's fixed limit on the cookies one session is split into (``name.0`` … ``.3``)."""
MAX_COOKIE_HEADER: Final = 16896
"""The longest ``Cookie`` header the edge worker accepts (16.5 KiB): four chunks at 4096 bytes
each (16,384 + three ``"; "``) plus about 500 bytes for the site's other cookies."""

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


def expire_cookie_headers(options: CookieOptions, names: tuple[str, ...]) -> list[str]:
    """``Set-Cookie`` values that delete the cookies *names* (the chunks a request carried),
    with the session cookie's own path, domain and attributes, as iron-session 9 expires them
    (a deletion with another path or domain would not reach the browser's cookie)."""
    return [destroy_cookie_header(replace(options, name=name)) for name in names]


# --- reading: the Cookie header as iron-session 9 reads it ------------------------------------
def chunk_name(name: str, index: int) -> str:
    """The cookie that holds part *index* of a session iron-session 9 split (``name.0``…)."""
    return f"{name}.{index}"


_ESCAPES = re.compile(r"(?:%[0-9A-Fa-f]{2})+")


def decode_cookie_value(value: str) -> str:
    """The ``cookie`` package's ``decode``: ``decodeURIComponent`` when the value holds a ``%``;
    the value unchanged when that throws (a ``%`` not followed by two hex digits, or escapes
    that are not UTF-8)."""
    if "%" not in value:
        return value
    parts: list[str] = []
    position = 0
    for run in _ESCAPES.finditer(value):
        literal = value[position : run.start()]
        if "%" in literal:
            return value  # a malformed escape: decodeURIComponent throws, cookie keeps the value
        try:
            decoded = bytes.fromhex(run.group().replace("%", "")).decode("utf-8")
        except UnicodeDecodeError:
            return value
        parts += (literal, decoded)
        position = run.end()
    tail = value[position:]
    if "%" in tail:
        return value
    parts.append(tail)
    return "".join(parts)


def _trim(text: str) -> str:
    return text.strip(" \t")


def parse_cookie_header(header: str) -> dict[str, str]:
    """``{name: value}`` of a ``Cookie`` header, as the ``cookie`` package's ``parseCookie``
    (2.x, iron-session 9's) gives it: pairs split at ``;`` then at the first ``=``, spaces and
    tabs trimmed, a segment without ``=`` skipped, the first of two equal names kept, values
    percent-decoded by :func:`decode_cookie_value`. Quotes are not removed."""
    cookies: dict[str, str] = {}
    size = len(header)
    if size < 2:
        return cookies
    index = 0
    while index < size:
        equals = header.find("=", index)
        if equals == -1:
            break
        end = header.find(";", index)
        if end == -1:
            end = size
        if equals > end:  # segments without "=": go on from the last ";" before the next "="
            index = header.rfind(";", 0, equals) + 1
            continue
        key = _trim(header[index:equals])
        if key not in cookies:
            cookies[key] = decode_cookie_value(_trim(header[equals + 1 : end]))
        index = end + 1
    return cookies


@dataclass(frozen=True, slots=True)
class IncomingSessionCookie:
    """The session cookie a request carried.

    ``seal`` is the cookie's value, or, when it is empty or absent, the chunks ``name.0``,
    ``name.1``, … joined up to the first one missing or empty (at most four), as iron-session
    9 joins them; ``None`` when there is neither. ``chunks`` names every ``name.0`` …
    ``name.3`` the request carried, used or not: the cookies to expire whenever the session
    cookie is written or deleted. A chunk's content is never trusted on its own: the seal's
    MAC covers the whole joined string, so a missing, reordered or foreign chunk just fails.
    """

    seal: str | None
    chunked: bool = False
    chunks: tuple[str, ...] = ()


NO_COOKIE: Final = IncomingSessionCookie(None)


def read_session_cookie(header: str | None, name: str) -> IncomingSessionCookie:
    """The session cookie *name* in a ``Cookie`` header, read as iron-session 9 reads it."""
    if not header:
        return NO_COOKIE
    if f"{name}." not in header:  # the common case: no chunk can be there
        return IncomingSessionCookie(parse_cookie_header(header).get(name) or None)
    cookies = parse_cookie_header(header)
    names = tuple(chunk_name(name, i) for i in range(MAX_CHUNKS))
    present = tuple(n for n in names if n in cookies)
    whole = cookies.get(name)
    if whole:
        return IncomingSessionCookie(whole, chunks=present)
    joined = []
    for chunk in names:
        part = cookies.get(chunk)
        if not part:
            break
        joined.append(part)
    return IncomingSessionCookie("".join(joined) or None, chunked=bool(joined), chunks=present)
