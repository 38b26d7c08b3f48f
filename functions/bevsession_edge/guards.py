"""Cross-site requests refused, security headers on every answer, counters behind /metrics.

**Origin and Fetch Metadata.** A state-changing request to the HTTP API (``/api/``, or where
``setup`` mounted it; any method but GET, HEAD and OPTIONS) that a browser sends from another
site is refused with 403 ``forbidden_origin``:
``Sec-Fetch-Site: cross-site``, or an ``Origin`` that is neither this server's own (scheme and
host as the request names them) nor one of ``ALLOWED_ORIGINS``. ``SameSite=Lax`` and the
JSON-only bodies already keep a browser's cross-site forms out; this holds even where those
would not (an old browser, a sibling subdomain — same site, another origin —, a future route
that accepts a simple content type). Requests with neither header (curl, server-side clients)
carry no ambient browser credentials of another site and pass.

**Headers.** Every response gets ``X-Content-Type-Options: nosniff`` and
``Referrer-Policy: same-origin``; HTML (the demo page) also ``Content-Security-Policy`` with
``frame-ancestors 'none'`` (no framing: no clickjacking), ``object-src 'none'``,
``base-uri 'none'`` and ``form-action 'self'``, and ``X-Frame-Options: DENY`` for older
browsers.

**Metrics.** ``/healthz`` only says whether the process is up; the per-worker counters (cookie
refusals by reason, the read cache's figures) are at ``GET /metrics``, answered to loopback
peers only, or to anyone with ``Authorization: Bearer <METRICS_TOKEN>`` when that is set.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any
from urllib.parse import urlsplit

from aiohttp import hdrs, web

from .http_errors import ApiError, json_errors

__all__ = [
    "API_PREFIX",
    "SECURITY_HEADERS",
    "add_security_headers",
    "api_guard",
    "check_origin",
    "metrics_allowed",
    "parse_origins",
]

SAFE_METHODS = frozenset({hdrs.METH_GET, hdrs.METH_HEAD, hdrs.METH_OPTIONS})
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}
HTML_HEADERS = {
    "Content-Security-Policy": (
        "frame-ancestors 'none'; object-src 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
}
ALLOWED_ORIGINS = web.AppKey("allowed_origins", frozenset[str])
METRICS_TOKEN = web.AppKey("metrics_token", str)


def normalise_origin(origin: str) -> str | None:
    """``scheme://host[:port]`` in lower case, default ports dropped; None if not an origin."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        return None
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + ("" if port in (None, default) else f":{port}")


def parse_origins(text: str) -> frozenset[str]:
    """``ALLOWED_ORIGINS``: origins separated by commas or spaces (a ValueError names a bad one)."""
    origins = set()
    for item in text.replace(",", " ").split():
        origin = normalise_origin(item)
        if origin is None:
            raise ValueError(f"{item!r} is not an origin (scheme://host[:port])")
        origins.add(origin)
    return frozenset(origins)


def _own_origins(request: web.Request) -> set[str]:
    """This server's origin as the request names it, under both schemes (a TLS proxy in front
    makes the browser's https the server's http)."""
    host = request.host
    return {o for s in ("http", "https") if (o := normalise_origin(f"{s}://{host}"))}


def check_origin(request: web.Request) -> None:
    """Refuse (403 ``forbidden_origin``) a state-changing request another site's page sent."""
    if request.method in SAFE_METHODS:
        return
    if request.headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
        raise ApiError(403, "forbidden_origin", "cross-site requests may not change a session")
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is not None:
        normal = normalise_origin(origin)
        allowed = request.app.get(ALLOWED_ORIGINS, frozenset())
        if normal is None or (normal not in _own_origins(request) and normal not in allowed):
            raise ApiError(
                403, "forbidden_origin", "requests from this origin may not change a session"
            )


# Where the HTTP API is mounted (``setup``'s api_prefix, with a trailing slash).
API_PREFIX = web.AppKey("api_prefix", str)


@web.middleware
async def api_guard(request: web.Request, handler: Any) -> web.StreamResponse:
    """The HTTP API's own rules, for requests under its prefix only: a state change is refused
    from another origin, and every error is JSON. The rest of an application the API is
    mounted on keeps its own pages and error pages."""
    if not request.path.startswith(request.app[API_PREFIX]):
        response: web.StreamResponse = await handler(request)
        return response

    async def guarded(request: web.Request) -> web.StreamResponse:
        check_origin(request)
        response: web.StreamResponse = await handler(request)
        return response

    return await json_errors(request, guarded)


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the headers of every answer (errors included)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if response.content_type == "text/html":
        for name, value in HTML_HEADERS.items():
            response.headers.setdefault(name, value)


def metrics_allowed(request: web.Request) -> bool:
    """A loopback peer, or the bearer of ``METRICS_TOKEN`` when one is configured."""
    token = request.app.get(METRICS_TOKEN, "")
    if token:
        given = request.headers.get(hdrs.AUTHORIZATION, "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False
