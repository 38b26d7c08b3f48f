"""Least privilege: the edge worker never holds service_role; it has a role of its own.

The worker's own calls (the read cache's batched touch and re-check, seal key registration,
the session policy) run as ``session_worker`` on both transports — a minted token with the
publishable key on the supabase transport — and its transport refuses admin calls before any
I/O. ``service_role`` is for ``bevsession purge`` and the admin commands only. (What the role
may read and write is the pgTAP RLS matrix's: supabase/tests/database/05_rls_matrix.test.sql.)
"""

from __future__ import annotations

import uuid

import pytest

from bevsession.errors import PermissionDenied
from bevsession.local_postgres import LocalPostgres
from bevsession.service import SessionService
from bevsession.transports.base import Service, Visitor, Worker
from bevsession.transports.postgres import PostgresTransport
from bevsession.transports.supabase import SupabaseTransport
from bevsession_edge.app import open_transport
from bevsession_edge.config import load_settings
from e2e_server import PASSWORD
from rpc_fixtures import Keys, RunningEndpoint


async def test_the_worker_transport_makes_no_admin_call(pg: LocalPostgres, db_name: str) -> None:
    settings = load_settings(
        session_password=PASSWORD, database_url=pg.dsn(db_name, user="authenticator")
    )
    transport = await open_transport(settings)
    try:
        with pytest.raises(PermissionDenied, match="no admin calls"):
            await transport.call("admin_session_stats", {}, identity=Service())
        with pytest.raises(PermissionDenied):
            await transport.call("purge_sessions", {"older_than_ms": 10 * 86_400_000},
                                 identity=Service())  # fmt: skip
        service = SessionService(transport)  # what the worker itself does: all as session_worker
        me = uuid.uuid4()
        snap = await service.get_session(me)
        touched = await service.touch_sessions({me: snap.session.last_activity_at + 5_000})
        checked = await service.validate_sessions({me: snap.session.last_activity_at + 5_000})
        assert touched.touched == 1 and checked.valid == 1 and not checked.stale
        assert (await service.register_seal_keys({"1": "ab" * 16})).changed == []
        assert (await service.get_session_policy()).absolute_lifetime_seconds > 0
    finally:
        await transport.close()


async def test_the_worker_role_cannot_act_for_a_visitor_or_purge(
    pg: LocalPostgres, db_name: str
) -> None:
    transport = await PostgresTransport.connect(pg.dsn(db_name, user="authenticator"))
    try:
        for fn, args in (("get_session", {}), ("clear_session", {}),
                         ("purge_sessions", {"older_than_ms": 10 * 86_400_000}),
                         ("admin_session_stats", {})):  # fmt: skip
            with pytest.raises(PermissionDenied):
                await transport.call(fn, args, identity=Worker())
        # and a visitor cannot make the worker's calls
        with pytest.raises(PermissionDenied):
            await transport.call("validate_sessions", {"session_ids": [], "seen_ms": []},
                                 identity=Visitor(uuid.uuid4()))  # fmt: skip
    finally:
        await transport.close()


@pytest.mark.parametrize("kind", ["supabase", "supabase-keys"])
async def test_the_supabase_worker_sends_no_service_key(
    endpoint: RunningEndpoint, keys: Keys, kind: str
) -> None:
    """The edge worker's transport is built without the service key: its own calls carry the
    publishable (anon) key and a session_worker token, and an admin call is refused here."""
    full = keys.transport(kind, endpoint.url)
    try:
        public_key = full._visitor_client.supabase_key if full._visitor_client else None
    finally:
        await full.close()
    options = {"jwt_secret": keys.jwt_secret} if kind == "supabase" else {"signing_key": keys.es256}
    worker = SupabaseTransport(endpoint.url, service_key=None, anon_key=public_key, **options)
    try:
        service = SessionService(worker)
        me = uuid.uuid4()
        snap = await service.get_session(me)
        checked = await service.validate_sessions({me: snap.session.last_activity_at + 5_000})
        assert checked.valid == 1
        await service.register_seal_keys({"1": "cd" * 16})
        with pytest.raises(PermissionDenied, match="no admin calls"):
            await service.admin_session_stats()
    finally:
        await worker.close()


def test_visitor_calls_never_fall_back_to_the_service_key(keys: Keys) -> None:
    with pytest.raises(ValueError, match="publishable key"):
        SupabaseTransport("http://127.0.0.1:1", service_key=keys.service_key,
                          jwt_secret=keys.jwt_secret)  # fmt: skip
    with pytest.raises(ValueError, match="secret key"):
        SupabaseTransport("http://127.0.0.1:1", service_key=keys.service_key,
                          anon_key=keys.service_key, jwt_secret=keys.jwt_secret)  # fmt: skip
