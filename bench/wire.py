"""A TCP relay that counts round trips: how often the client speaks after the server answered.

Put it between a client and a server (PostgreSQL, or the HTTP endpoint) and every "turn" of the
client — bytes sent after the server last sent something, or the first bytes of a connection —
counts as one round trip. Pipelined messages in one turn (asyncpg's Bind/Execute/Sync) are one
round trip; a second statement that waits for the first answer is a second one. Used by
``python -m bench.rpc`` and by the tests that pin the postgres transport to one round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

__all__ = ["RoundTripRelay"]


@dataclass
class _Conn:
    client_turn: bool = False  # True while the client is in the middle of a turn


@dataclass
class RoundTripRelay:
    """Relays 127.0.0.1:<port> to *target_host*:*target_port* and counts client turns."""

    target_host: str
    target_port: int
    round_trips: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> RoundTripRelay:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    def reset(self) -> None:
        self.round_trips = self.bytes_up = self.bytes_down = 0

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        if self._server is not None:
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        state = _Conn()
        up = asyncio.create_task(self._pump(reader, up_writer, state, client=True))
        down = asyncio.create_task(self._pump(up_reader, writer, state, client=False))
        self._tasks.update((up, down))
        try:
            await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (up, down):
                task.cancel()
            for w in (writer, up_writer):
                w.close()
                self._writers.discard(w)
            self._tasks.difference_update((up, down))

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        state: _Conn,
        *,
        client: bool,
    ) -> None:
        while data := await reader.read(65536):
            if client:
                if not state.client_turn:
                    self.round_trips += 1
                    state.client_turn = True
                self.bytes_up += len(data)
            else:
                state.client_turn = False
                self.bytes_down += len(data)
            writer.write(data)
            await writer.drain()
