"""Seal/unseal throughput of bevsession.sealing against the real iron-session, in one run.

    python -m bench.sealing [--seconds 2]

Measures a ~300-byte and a ~2 KB session, one operation at a time (as a request seals or opens
its cookie), in this process and in Node (tests/interop/bench_iron.mjs, iron-session 8.0.4),
and prints operations per second and the ratio. Node is also measured with 64 operations in
flight (WebCrypto's thread pool may then use several cores; Python here uses one): the
``node c64`` column and the second ratio. It asserts nothing: figures depend on the machine.

Two unseal figures for Python, as :class:`~bevsession.sealing.Sealer` remembers the derived
keys of seals it has opened (or made): ``unseal`` opens one seal again and again, the common
case of a browser re-sending its cookie; ``unseal 1st`` (first sight) cycles through
:data:`FIRST_SIGHT` distinct seals, so every unseal derives its keys (see
:func:`first_sight_unseal`). iron-session remembers nothing, so its one unseal figure stands
against both.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bevsession.sealing import Sealer

INTEROP_DIR = Path(__file__).resolve().parent.parent / "tests" / "interop"
PASSWORD = "bench password: at least 32 characters long"  # noqa: S105 (benchmark only)
TTL = 86400
FIRST_SIGHT = 2000
"""How many distinct seals the "first sight" figure cycles through."""


def session(json_bytes: int) -> dict[str, Any]:
    """A cookie-shaped session padded to ``json_bytes`` of compact JSON."""
    data: dict[str, Any] = {
        "sessionId": "6f1c0b7e-2b1d-4a51-9a53-6c0f2d7f8e10",
        "createdAt": 1_700_000_000_000,
        "lastSeenAt": 1_700_000_360_000,
        "messageCount": 12,
        "mode": "auto",
        "flags": {"consent": True, "returning": False},
        "persona": {"sommelier": 0.42, "distributor": 0.31, "retailer": 0.18, "consumer": 0.09},
        "note": "",
    }
    size = len(json.dumps(data, separators=(",", ":")).encode())
    data["note"] = "n" * (json_bytes - size)
    return data


def ops_per_second(fn: Callable[[], object], seconds: float) -> float:
    """Median of five rounds, after a warm-up."""
    for _ in range(200):
        fn()
    rates = []
    for _ in range(5):
        n, start = 0, time.perf_counter()
        end = start + seconds / 5
        now = start
        while now < end:
            for _ in range(100):
                fn()
            n += 100
            now = time.perf_counter()
        rates.append(n / (now - start))
    return statistics.median(rates)


def first_sight_unseal(data: Any) -> Callable[[], Any]:
    """An unseal of a seal the sealer has not seen recently: one of :data:`FIRST_SIGHT` distinct
    seals of ``data`` in turn, by a sealer that remembers the keys of half as many.

    LRU eviction under a cyclic pattern longer than the cache never hits, so every call
    derives both keys and also pays the cache's insert and eviction: a real first sight.
    """
    maker = Sealer(PASSWORD, ttl=TTL, key_cache_size=0)
    seals = [maker.seal(data) for _ in range(FIRST_SIGHT)]
    sealer = Sealer(PASSWORD, ttl=TTL, key_cache_size=FIRST_SIGHT // 2)
    next_seal = itertools.cycle(seals).__next__

    def unseal() -> Any:
        return sealer.unseal(next_seal())

    assert unseal() == data
    return unseal


def node_figures(payloads: dict[str, Any], seconds: float) -> dict[str, dict[str, float]]:
    if not (INTEROP_DIR / "node_modules" / "iron-session").exists():
        print(f"installing the pinned iron-session in {INTEROP_DIR} (npm ci)", file=sys.stderr)
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=INTEROP_DIR, check=True)
    request = {"password": PASSWORD, "ttl": TTL, "seconds": seconds, "payloads": payloads}
    proc = subprocess.run(
        ["node", "bench_iron.mjs"],
        cwd=INTEROP_DIR,
        input=json.dumps(request),
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, dict[str, float]] = json.loads(proc.stdout)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement (default 2)")
    args = parser.parse_args()

    payloads = {"300 B": session(300), "2 KB": session(2048)}
    sealer = Sealer(PASSWORD, ttl=TTL)
    ours: dict[str, dict[str, float]] = {}
    for name, data in payloads.items():
        sealed = sealer.seal(data)
        assert sealer.unseal(sealed) == data
        ours[name] = {
            "seal_ops": ops_per_second(functools.partial(sealer.seal, data), args.seconds),
            "unseal_ops": ops_per_second(functools.partial(sealer.unseal, sealed), args.seconds),
            "unseal 1st_ops": ops_per_second(first_sight_unseal(data), args.seconds),
            "seal_len": len(sealed),
        }
    node = node_figures(payloads, args.seconds)
    node_version = subprocess.run(
        ["node", "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()

    print(
        f"bevsession.sealing (Python {platform.python_version()}) vs iron-session 8.0.4 "
        f"(Node {node_version}), one operation at a time, {args.seconds:g} s per figure"
    )
    header = f"{'session':<8} {'json':>6} {'seal':>6}  {'op':<10} {'python/s':>10} {'node/s':>10}"
    print(f"{header} {'ratio':>7} {'node c64/s':>11} {'ratio':>7}")
    for name, data in payloads.items():
        json_len = len(json.dumps(data, separators=(",", ":")).encode())
        for op in ("seal", "unseal", "unseal 1st"):
            node_op = op.removesuffix(" 1st")  # iron-session derives the keys every time
            py, js = ours[name][f"{op}_ops"], node[name][f"{node_op}_ops"]
            js64 = node[name][f"{node_op}_ops_c64"]
            print(
                f"{name:<8} {json_len:>6} {int(ours[name]['seal_len']):>6}  {op:<10} "
                f"{py:>10,.0f} {js:>10,.0f} {py / js:>6.1f}x {js64:>11,.0f} {py / js64:>6.1f}x"
            )


if __name__ == "__main__":
    main()
