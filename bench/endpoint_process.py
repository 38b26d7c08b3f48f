"""Serve the PostgREST-compatible TEST DOUBLE (``tests/postgrest_endpoint.py``) in its own process.

    python -m bench.endpoint_process   (configuration as JSON on stdin; prints the URL, then serves)

No PostgREST binary can be installed here, so the supabase transport is measured against the
test endpoint, in a process of its own so that its CPU does not count against the client's. Its
figures say what supabase-py costs a client, not what hosted PostgREST would do. Stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from postgrest_endpoint import EndpointConfig, run_endpoint


async def main() -> None:
    config = EndpointConfig(**json.loads(sys.stdin.read()))
    running = await run_endpoint(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(running.url, flush=True)
    await stop.wait()
    await running.close()


if __name__ == "__main__":
    asyncio.run(main())
