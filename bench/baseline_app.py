"""The whole-server baseline: a minimal aiohttp app on aiohttp-session's ``EncryptedCookieStorage``.

    python -m bench.baseline_app --port 9000 [--reuse-port]

It does the cookie work of our edge worker and nothing else — no database — so the gap between
the two is what our session layer (iron seal, typed state, one RPC) costs on top of a plain
encrypted-cookie session:

- ``GET /api/session``: read and decrypt the cookie (Fernet), touch ``lastActivityAt`` under
  the same rule as ours (written back at most once a minute, so a plain read re-encrypts
  nothing), answer the same summary JSON;
- ``POST /api/chat``: parse and check the JSON body, count two messages in the cookie (a change,
  so the cookie is re-encrypted, as ours is resealed), answer a reply JSON.

A request without a cookie gets a new session shaped like ours (``{"user": CookieUser}``), so
cookies of both servers carry the same JSON. One process per worker: the bench starts N of
them on one port with ``SO_REUSEPORT``, as ``bevsession serve --workers N`` does.
"""

from __future__ import annotations

import argparse
import base64
import os
import time
from typing import Any

from aiohttp import web
from aiohttp_session import get_session, session_middleware
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from bevsession.models import PersonaScores
from bevsession_edge.session_cookie import TOUCH_INTERVAL_MS, new_user, persona_summary

COOKIE_NAME = "bevgenie_session"
TTL = 86400
KEY_ENV = "BENCH_FERNET_KEY"  # 32 bytes, urlsafe base64 (Fernet's key format)
SUMMARY_KEYS = (
    "sessionId", "createdAt", "lastActivityAt", "lastMessageAt", "messageCount", "currentMode",
    "hasCompletedOnboarding", "hasBrochure", "isDataConnected", "persona",
)  # fmt: skip
REPLY = "Thanks for reaching out to BevGenie. Which part of the business do you own?"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _new_user() -> dict[str, Any]:
    user = new_user().model_dump(mode="json")
    user["persona"] = persona_summary(PersonaScores().model_dump(mode="json"))
    return user


def _summary(user: dict[str, Any]) -> dict[str, Any]:
    return {k: user.get(k) for k in SUMMARY_KEYS}


async def session_route(request: web.Request) -> web.Response:
    session = await get_session(request)
    user = session.get("user")
    if user is None:
        session["user"] = user = _new_user()
    else:
        now = now_ms()
        if now - int(user["lastActivityAt"]) >= TOUCH_INTERVAL_MS:
            user["lastActivityAt"] = now
            session.changed()
    return web.json_response(_summary(user))


async def chat_route(request: web.Request) -> web.Response:
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType()
    body = await request.json()
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str) or not 1 <= len(message) <= 4000 or set(body) != {"message"}:
        raise web.HTTPBadRequest()
    session = await get_session(request)
    user = session.get("user") or _new_user()
    now = now_ms()
    user.update(messageCount=int(user["messageCount"]) + 2, lastMessageAt=now, lastActivityAt=now)
    session["user"] = user
    session.changed()
    reply = {"reply": REPLY, "persona": user["persona"], "sessionId": user["sessionId"],
             "messageCount": user["messageCount"]}  # fmt: skip
    return web.json_response(reply)


def create_app(key: bytes) -> web.Application:
    storage = EncryptedCookieStorage(
        key, cookie_name=COOKIE_NAME, max_age=TTL, httponly=True, samesite="Lax"
    )
    app = web.Application(middlewares=[session_middleware(storage)])
    app.router.add_get("/api/session", session_route)
    app.router.add_post("/api/chat", chat_route)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--reuse-port", action="store_true")
    args = parser.parse_args()
    raw = os.environ.get(KEY_ENV)
    key = base64.urlsafe_b64decode(raw) if raw else os.urandom(32)
    web.run_app(create_app(key), host=args.host, port=args.port, reuse_port=args.reuse_port,
                print=None, access_log=None)  # fmt: skip


if __name__ == "__main__":
    main()
