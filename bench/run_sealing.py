"""Section 1 — cookie sealing: bevsession vs Node iron-session vs aiohttp-session's Fernet.

Seal and unseal operations per second for a ~300-byte and a ~2 KB session, one operation at a
time (as a request seals or opens its cookie):

- ours: :class:`bevsession.sealing.Sealer` (iron ``Fe26.2``: two PBKDF2, AES-256-CBC, HMAC-SHA256);
- Node: the real iron-session 8.0.4 (``tests/interop/bench_iron.mjs``, via ``bench.sealing``);
- Fernet: exactly what ``aiohttp_session.cookie_storage.EncryptedCookieStorage`` does to save
  and load a session (``json.dumps`` → ``Fernet.encrypt``; ``Fernet.decrypt(ttl=max_age)`` →
  ``json.loads``), on the very ``Fernet`` object the storage is built with, for the same data.

Two unseal figures, as our sealer remembers the derived keys of the seals it opened or made:

- "cookie seen before": one seal opened again and again, the common case (a browser re-sends
  its cookie until the server reseals it); Fernet opens one token again and again;
- "first sight": :data:`~bench.sealing.FIRST_SIGHT` distinct seals in turn, by a sealer whose
  cache cannot hit (:func:`bench.sealing.first_sight_unseal`), against Fernet opening as many
  distinct tokens in turn. iron-session remembers nothing; its row is against the first figure.

Ours and Fernet run in alternating rounds in this process (see :func:`interleaved`); Node runs
after them in its own process.
"""

from __future__ import annotations

import functools
import itertools
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from cryptography.fernet import Fernet

from bench.report import Row, compare
from bench.sealing import FIRST_SIGHT, PASSWORD, TTL, first_sight_unseal, node_figures, session
from bevsession.sealing import Sealer

SIZES = {"300 B": 300, "2 KB": 2048}


def interleaved(
    fns: dict[str, Callable[[], object]], seconds: float, rounds: int = 5
) -> dict[str, float]:
    """Ops/s of each function, measured in alternating rounds (median per function).

    Alternating ours and the reference round by round means a burst of other work on the
    machine hits both alike, so their ratio stays meaningful even when absolute figures move.
    """
    for fn in fns.values():
        for _ in range(200):
            fn()
    rates: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            n, start = 0, time.perf_counter()
            end = start + seconds / rounds
            now = start
            while now < end:
                for _ in range(100):
                    fn()
                n += 100
                now = time.perf_counter()
            rates[name].append(n / (now - start))
    return {name: statistics.median(r) for name, r in rates.items()}


def fernet_pair(data: Any) -> tuple[Callable[[], str], Callable[[], Any], Callable[[], Any]]:
    """Save and load of aiohttp-session's EncryptedCookieStorage without the HTTP around it.

    The second load opens :data:`~bench.sealing.FIRST_SIGHT` distinct tokens in turn, the
    counterpart of :func:`~bench.sealing.first_sight_unseal`.
    """
    from aiohttp_session.cookie_storage import EncryptedCookieStorage

    fernet = Fernet(Fernet.generate_key())
    storage = EncryptedCookieStorage(fernet, max_age=TTL)  # the storage under test
    encoder, decoder = json.dumps, json.loads  # the storage's defaults

    def save() -> str:
        return fernet.encrypt(encoder(data).encode("utf-8")).decode("utf-8")

    token = save()

    def load() -> Any:
        return decoder(fernet.decrypt(token.encode("utf-8"), ttl=storage.max_age).decode("utf-8"))

    next_token = itertools.cycle([save() for _ in range(FIRST_SIGHT)]).__next__

    def load_next() -> Any:
        return decoder(
            fernet.decrypt(next_token().encode("utf-8"), ttl=storage.max_age).decode("utf-8")
        )

    assert load() == data and load_next() == data
    return save, load, load_next


def run(seconds: float) -> list[Row]:
    payloads = {name: session(size) for name, size in SIZES.items()}
    sealer = Sealer(PASSWORD, ttl=TTL)
    ours: dict[str, dict[str, float]] = {}
    fern: dict[str, dict[str, float]] = {}
    for name, data in payloads.items():
        sealed = sealer.seal(data)
        assert sealer.unseal(sealed) == data
        save, load, load_next = fernet_pair(data)
        seal = interleaved({"ours": functools.partial(sealer.seal, data), "fernet": save}, seconds)
        unseal = interleaved(
            {"ours": functools.partial(sealer.unseal, sealed), "fernet": load}, seconds
        )
        first = interleaved({"ours": first_sight_unseal(data), "fernet": load_next}, seconds)
        ours[name] = {"seal_ops": seal["ours"], "unseal_ops": unseal["ours"],
                      "first_ops": first["ours"]}  # fmt: skip
        fern[name] = {"seal_ops": seal["fernet"], "unseal_ops": unseal["fernet"],
                      "first_ops": first["fernet"]}  # fmt: skip
    node = node_figures(payloads, seconds)

    # (row name, figure); iron-session has no first-sight figure of its own (it caches nothing).
    ops = (("seal {} session", "seal_ops"),
           ("unseal {} session, cookie seen before", "unseal_ops"),
           ("unseal {} session, first sight", "first_ops"))  # fmt: skip
    rows: list[Row] = []
    for name in payloads:
        for label, key in ops[:2]:
            rows.append(compare(label.format(name), ours[name][key], "ops/s",
                                "iron-session 8.0.4 (Node)", node[name][key], aim=3.0))  # fmt: skip
    for name in payloads:
        for label, key in ops:
            rows.append(compare(label.format(name), ours[name][key], "ops/s",
                                "aiohttp-session Fernet", fern[name][key],
                                aim=None if key == "seal_ops" else 1.0))  # fmt: skip
    return rows
