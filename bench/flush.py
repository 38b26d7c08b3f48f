"""What one read-cache flush costs: ``validate_sessions`` over N held copies.

Every flush of an edge worker re-checks every session it holds a copy of (read_cache.py), so
its cost grows with the cache: this measures one ``validate_sessions`` call over N ids (the
best of five, and the median) through the postgres transport, for N up to the 10 000 ids one
call takes (``SESSION_READ_CACHE_ENTRIES``' default). Run::

    .venv/bin/python -m bench.flush            # N = 100, 1000, 10000
    .venv/bin/python -m bench.flush 10000 50000
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time

from bevsession.models import MAX_TOUCH_BATCH
from bevsession.service import SessionService
from bevsession.transports.postgres import PostgresTransport

from .env import cluster_context, database, visitor_id

RUNS = 5


async def measure(sizes: list[int]) -> list[tuple[int, float, float]]:
    rows = []
    async with cluster_context() as pg:
        db = await database(pg, "flush")
        await db.create_visitors(1, max(sizes))
        stamp = await db.execute("select 1")  # warm the cluster
        del stamp
        transport = await PostgresTransport.connect(db.app_dsn)
        try:
            service = SessionService(transport)
            now_ms = int(time.time() * 1000) + 10_000  # checked after every write
            for size in sizes:
                held = {visitor_id(n): now_ms for n in range(1, size + 1)}
                items = list(held.items())
                times = []
                for _ in range(RUNS):
                    started = time.perf_counter()
                    for start in range(0, len(items), MAX_TOUCH_BATCH):
                        result = await service.validate_sessions(
                            dict(items[start : start + MAX_TOUCH_BATCH])
                        )
                        assert not result.stale, "every seeded session is live and unchanged"
                    times.append(time.perf_counter() - started)
                rows.append((size, min(times) * 1000, statistics.median(times) * 1000))
        finally:
            await transport.close()
    return rows


def main(argv: list[str]) -> int:
    sizes = [int(a) for a in argv] or [100, 1000, 10_000]
    for size, best, median in asyncio.run(measure(sizes)):
        print(f"validate_sessions over {size:>6} ids: best {best:7.1f} ms, median {median:7.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
