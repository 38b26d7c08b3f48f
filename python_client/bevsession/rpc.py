"""The RPC API surface as data: every callable function, its argument names, its access mode.

Transports build SQL and URLs from function and argument names, so those names must never
come from outside: :func:`check_call` accepts only what is listed here (docs/rpc-api.md) and
raises ``ValueError`` for anything else, before any I/O. ``read_only`` mirrors the function's
volatility (PostgREST runs non-volatile functions in a READ ONLY transaction); a test checks
this table against ``pg_proc``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["FUNCTIONS", "RpcFunction", "check_call"]


@dataclass(frozen=True, slots=True)
class RpcFunction:
    """One function of schema ``public``: its parameter names and how it may be called."""

    name: str
    params: tuple[str, ...] = ()
    read_only: bool = False
    admin: bool = False


FUNCTIONS: Final[Mapping[str, RpcFunction]] = {
    f.name: f
    for f in (
        RpcFunction("get_session", ("touch",)),
        RpcFunction("adopt_session", ("cookie", "count_cookie_activity")),
        RpcFunction("read_session", read_only=True),
        RpcFunction("update_persona", ("updates",)),
        RpcFunction(
            "record_persona_signal",
            (
                "signal_type",
                "signal_text",
                "signal_strength",
                "pain_points_inferred",
                "score_updates",
                "vector",
                "vector_value",
            ),
        ),
        RpcFunction(
            "add_conversation_message",
            (
                "role",
                "content",
                "generation_mode",
                "ui_specification",
                "estimated_read_time",
                "pain_points_inferred",
            ),
        ),
        RpcFunction(
            "get_conversation_history", ("history_limit", "before", "token_budget"), read_only=True
        ),
        RpcFunction("get_session_policy", read_only=True),
        RpcFunction("clear_session"),
        RpcFunction("forget_session"),
        RpcFunction("begin_chat_turn", ("content", "signals", "history_limit", "generation_mode")),
        RpcFunction(
            "finish_chat_turn",
            ("content", "ui_specification", "generation_mode", "estimated_read_time"),
        ),
        RpcFunction("admin_session_stats", read_only=True, admin=True),
        RpcFunction("register_seal_keys", ("fingerprints",), admin=True),
        RpcFunction("purge_sessions", ("older_than_ms", "batch"), admin=True),
        RpcFunction("touch_sessions", ("session_ids", "seen_ms"), admin=True),
        RpcFunction("link_session"),
        RpcFunction("validate_sessions", ("session_ids", "seen_ms"), read_only=True, admin=True),
        RpcFunction("import_seed_sessions", ("seed_rows", "started_at"), admin=True),
        RpcFunction("import_seed_personas", ("seed_rows", "started_at"), admin=True),
        RpcFunction("import_seed_messages", ("seed_rows", "started_at"), admin=True),
        RpcFunction("import_seed_signals", ("seed_rows", "started_at"), admin=True),
        RpcFunction("import_seed_summary", ("since",), read_only=True, admin=True),
    )
}


def check_call(fn: str, args: Mapping[str, Any]) -> RpcFunction:
    """The listed function *fn*, after checking every key of *args* is one of its parameters."""
    spec = FUNCTIONS.get(fn)
    if spec is None:
        raise ValueError(f"unknown RPC function {fn!r}")
    unknown = [name for name in args if name not in spec.params]
    if unknown:
        raise ValueError(f"unknown argument(s) for {fn}: {', '.join(map(repr, unknown))}")
    return spec
