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
        RpcFunction("get_session", ("p_touch",)),
        RpcFunction("update_persona", ("p_updates",)),
        RpcFunction(
            "record_persona_signal",
            (
                "p_signal_type",
                "p_signal_text",
                "p_signal_strength",
                "p_pain_points_inferred",
                "p_score_updates",
                "p_vector",
                "p_vector_value",
            ),
        ),
        RpcFunction(
            "add_conversation_message",
            (
                "p_role",
                "p_content",
                "p_generation_mode",
                "p_ui_specification",
                "p_estimated_read_time",
                "p_pain_points_inferred",
            ),
        ),
        RpcFunction(
            "get_conversation_history", ("p_limit", "p_before", "p_token_budget"), read_only=True
        ),
        RpcFunction("get_session_policy", read_only=True),
        RpcFunction("clear_session"),
        RpcFunction("forget_session"),
        RpcFunction(
            "begin_chat_turn", ("p_content", "p_signals", "p_history_limit", "p_generation_mode")
        ),
        RpcFunction(
            "finish_chat_turn",
            ("p_content", "p_ui_specification", "p_generation_mode", "p_estimated_read_time"),
        ),
        RpcFunction("admin_session_stats", read_only=True, admin=True),
        RpcFunction("register_seal_keys", ("p_fingerprints",), admin=True),
        RpcFunction("purge_sessions", ("p_older_than_ms", "p_batch"), admin=True),
        RpcFunction("touch_sessions", ("p_session_ids", "p_seen_ms"), admin=True),
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
