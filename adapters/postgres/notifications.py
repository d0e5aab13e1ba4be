"""Wake-ups from PostgreSQL: LISTEN on the channel the add's transaction notifies."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import structlog

from adapters.postgres.database import async_url
from adapters.postgres.tables import SCHEDULING_CHANNEL

log = structlog.get_logger(__name__)


class SchedulingNotifications:
    """Sets an event whenever a scheduling job is committed. Keeps one dedicated connection and
    reconnects when it drops; while it is down, callers still wake on their sweep timeout, so a
    lost notification delays work and never loses it."""

    def __init__(self, database_url: str, *, reconnect_delay: float = 1.0) -> None:
        self._dsn = async_url(database_url).replace("postgresql+asyncpg://", "postgresql://", 1)
        self._reconnect_delay = reconnect_delay
        self._woken = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._connection: asyncpg.Connection | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen_forever(), name="scheduling-listen")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def wait(self, seconds: float) -> bool:
        """Until a notification arrives (True) or `seconds` pass (False)."""
        try:
            await asyncio.wait_for(self._woken.wait(), seconds)
        except TimeoutError:
            return False
        finally:
            self._woken.clear()
        return True

    def wake(self) -> None:
        self._woken.set()

    async def _listen_forever(self) -> None:
        while True:
            try:
                connection = await asyncpg.connect(self._dsn)
            except (OSError, asyncpg.PostgresError) as error:
                log.warning("relay.listen.connect_failed", error=str(error))
                await asyncio.sleep(self._reconnect_delay)
                continue
            lost = asyncio.Event()
            connection.add_termination_listener(lambda _connection, lost=lost: lost.set())
            try:
                await connection.add_listener(SCHEDULING_CHANNEL, self._on_notify)
                self.wake()  # anything committed while we were not listening
                await lost.wait()
                log.warning("relay.listen.connection_lost")
            finally:
                with contextlib.suppress(Exception):
                    await connection.close(timeout=1)

    def _on_notify(self, *_: object) -> None:
        self._woken.set()
