"""Section 1 — cookie sealing: bevsession vs Node iron-session vs aiohttp-session's Fernet.

Seal and unseal operations per second for a ~300-byte and a ~2 KB session, one operation at a
time (as a request seals or opens its cookie):

- ours: :class:`bevsession.sealing.Sealer` (iron ``Fe26.2``: two PBKDF2, AES-256-CBC, HMAC-SHA256);
- Node: the real iron-session 8.0.4 (``tests/interop/bench_iron.mjs``, via ``bench.sealing``);
- Fernet: exactly what ``aiohttp_session.cookie_storage.EncryptedCookieStorage`` does to save
  and load a session (``json.dumps`` → ``Fernet.encrypt``; ``Fernet.decrypt(ttl=max_age)`` →
  ``json.loads``), on the very ``Fernet`` object the storage is built with, for the same data.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from cryptography.fernet import Fernet

from bench.report import Row, compare
from bench.sealing import PASSWORD, TTL, node_figures, ops_per_second, session
from bevsession.sealing import Sealer

SIZES = {"300 B": 300, "2 KB": 2048}


def fernet_ops(data: Any, seconds: float) -> dict[str, float]:
    """Save/load of aiohttp-session's EncryptedCookieStorage without the HTTP around it."""
    from aiohttp_session.cookie_storage import EncryptedCookieStorage

    fernet = Fernet(Fernet.generate_key())
    storage = EncryptedCookieStorage(fernet, max_age=TTL)  # the storage under test
    encoder, decoder = json.dumps, json.loads  # the storage's defaults

    def save() -> str:
        return fernet.encrypt(encoder(data).encode("utf-8")).decode("utf-8")

    token = save()

    def load() -> Any:
        return decoder(fernet.decrypt(token.encode("utf-8"), ttl=storage.max_age).decode("utf-8"))

    assert load() == data
    return {"seal_ops": ops_per_second(save, seconds), "unseal_ops": ops_per_second(load, seconds)}


def run(seconds: float) -> list[Row]:
    payloads = {name: session(size) for name, size in SIZES.items()}
    sealer = Sealer(PASSWORD, ttl=TTL)
    ours: dict[str, dict[str, float]] = {}
    fern: dict[str, dict[str, float]] = {}
    for name, data in payloads.items():
        sealed = sealer.seal(data)
        assert sealer.unseal(sealed) == data
        ours[name] = {
            "seal_ops": ops_per_second(functools.partial(sealer.seal, data), seconds),
            "unseal_ops": ops_per_second(functools.partial(sealer.unseal, sealed), seconds),
        }
        fern[name] = fernet_ops(data, seconds)
    node = node_figures(payloads, seconds)

    rows: list[Row] = []
    for name in payloads:
        for op in ("seal", "unseal"):
            key = f"{op}_ops"
            rows.append(compare(f"{op} {name} session", ours[name][key], "ops/s",
                                "iron-session 8.0.4 (Node)", node[name][key], aim=3.0))  # fmt: skip
    for name in payloads:
        for op in ("seal", "unseal"):
            key = f"{op}_ops"
            rows.append(compare(f"{op} {name} session", ours[name][key], "ops/s",
                                "aiohttp-session Fernet", fern[name][key],
                                aim=1.0 if op == "unseal" else None))  # fmt: skip
    return rows
