"""Typed application state (``web.AppKey``): what the app factory builds once and shares."""

from __future__ import annotations

from aiohttp import web

from bevsession.access_tokens import AccessTokenVerifier
from bevsession.cookies import CookieOptions
from bevsession.sealing import Sealer
from bevsession.service import SessionService
from bevsession.transports.base import Transport

from .config import Settings
from .detection import SignalDetector
from .replies import ReplyGenerator

SETTINGS = web.AppKey("settings", Settings)
SEALER = web.AppKey("sealer", Sealer)
COOKIE = web.AppKey("cookie_options", CookieOptions)
TRANSPORT = web.AppKey("transport", Transport)
SERVICE = web.AppKey("service", SessionService)
DETECTOR = web.AppKey("detector", SignalDetector)
REPLIER = web.AppKey("replier", ReplyGenerator)
# Set only when linking is configured (Settings.account_verifier); POST /api/session/link: 501.
ACCOUNTS = web.AppKey("access_token_verifier", AccessTokenVerifier)
