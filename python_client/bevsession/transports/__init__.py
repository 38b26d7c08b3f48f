"""Transports carry one RPC to the database: ``postgres`` (asyncpg) and ``supabase`` (PostgREST).

Import the one you use (``bevsession.transports.postgres`` / ``.supabase``); this package does
not import them itself, so the postgres path never loads supabase-py.
"""

from .base import Identity, Service, Transport, Visitor

__all__ = ["Identity", "Service", "Transport", "Visitor"]
