"""Rates as operators write them (``'60/minute'``, ``'10/10s'``, ``'off'``) and a GCRA limiter.

The same forms and the same algorithm as the database's chat rate limit
(20261201000300_chat.sql): a burst of N, then one per period/N, one timestamp per key.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["GcraLimiter", "Rate", "parse_rate"]

DEFAULT_MAX_ADDRESSES = 100_000
_RATE = re.compile(r"^\s*([0-9]{1,6})\s*/\s*([0-9]{0,6})\s*(s|sec|second|seconds|m|min|minute|"
                   r"minutes|h|hour|hours)\s*$", re.IGNORECASE)  # fmt: skip
_UNIT = {"s": 1, "m": 60, "h": 3600}


@dataclass(frozen=True, slots=True)
class Rate:
    """*turns* per *per_seconds*; ``turns == 0`` means no limit."""

    turns: int
    per_seconds: float

    @property
    def off(self) -> bool:
        return self.turns == 0


def parse_rate(text: str) -> Rate:
    """``'60/minute'``, ``'10/10s'``, ``'1000/hour'`` or ``'off'`` (a ValueError otherwise); the
    same forms as the database's chat rate limit, at most one day per period."""
    value = text.strip().lower()
    if value in ("off", "0", "none", "unlimited"):
        return Rate(0, 1.0)
    match = _RATE.match(value)
    if match is None or int(match[1]) == 0:
        raise ValueError(f"{text!r} is not a rate: use 'N/second', 'N/minute', 'N/10s' or 'off'")
    period = int(match[2] or 1) * _UNIT[match[3][0]]
    if not 1 <= period <= 86_400:
        raise ValueError(f"{text!r}: the period must be between 1 second and one day")
    return Rate(int(match[1]), float(period))


class GcraLimiter:
    """One GCRA bucket per key: a burst of ``rate.turns``, then one per period/turns."""

    __slots__ = ("_interval", "_tat", "_tolerance", "max_keys", "rate")

    def __init__(self, rate: Rate, max_keys: int = DEFAULT_MAX_ADDRESSES) -> None:
        self.rate = rate
        self.max_keys = max_keys
        self._interval = rate.per_seconds / rate.turns if rate.turns else 0.0
        self._tolerance = rate.per_seconds - self._interval
        self._tat: OrderedDict[str, float] = OrderedDict()

    def take(self, key: str, now: float | None = None) -> float:
        """Take one from *key*'s allowance: 0 when allowed, else the seconds to wait."""
        if self.rate.off:
            return 0.0
        at = time.monotonic() if now is None else now
        tat = max(self._tat.pop(key, at), at)
        if tat - at > self._tolerance:
            self._tat[key] = tat  # refused: nothing taken
            return tat - at - self._tolerance
        self._tat[key] = tat + self._interval
        while len(self._tat) > self.max_keys:
            self._tat.popitem(last=False)
        return 0.0
