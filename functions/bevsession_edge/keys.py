"""Typed application state (``web.AppKey``): what ``setup`` builds once and shares."""

from __future__ import annotations

from aiohttp import web

from bevsession.access_tokens import AccessTokenVerifier
from bevsession.service import SessionService
from bevsession.transports.base import Transport

from .config import Settings
from .detection import SignalDetector
from .replies import ReplyGenerator
from .store import SessionStore

SETTINGS = web.AppKey("settings", Settings)
TRANSPORT = web.AppKey("transport", Transport)
SERVICE = web.AppKey("service", SessionService)
DETECTOR = web.AppKey("detector", SignalDetector)
REPLIER = web.AppKey("replier", ReplyGenerator)
# Where sessions are loaded from and saved to (a CachedSessionStore with the read cache on).
SESSION_STORE = web.AppKey("session_store", SessionStore)
# Set only when linking is configured (Settings.account_verifier); POST /api/session/link: 501.
ACCOUNTS = web.AppKey("access_token_verifier", AccessTokenVerifier)
