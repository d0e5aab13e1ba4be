"""Notifications from PostgreSQL: one LISTEN connection per process, shared by whoever listens.

The relay wakes on the channel the add's statement notifies; the progress fan-out hears that
channel and the one the progress triggers notify (migration 0007, ADR 0031)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable

import asyncpg
import structlog

from adapters.postgres.database import async_url
from adapters.postgres.tables import PROGRESS_CHANNEL, SCHEDULING_CHANNEL
from application.ports.progress_changes import PendingChanges, ProgressChange
from domain.errors import DomainError
from domain.values import Isrc, parse_library_item_id, parse_user_id

log = structlog.get_logger(__name__)


class _Listening:
    """One listener of one channel."""

    def __init__(
        self,
        channel: str,
        on_payload: Callable[[str], None],
        on_connected: Callable[[], None],
    ) -> None:
        self.channel = channel
        self.on_payload = on_payload
        # Called on every (re)connection: what was notified while nobody listened was not heard.
        self.on_connected = on_connected

    def notified(self, _connection: object, _pid: int, _channel: str, payload: object) -> None:
        # asyncpg's callback. Removing it needs an equal callable: bound methods of one object
        # compare equal however often they are taken.
        self.on_payload(str(payload))


class PostgresListener:
    """One dedicated connection that LISTENs on every channel asked for, and reconnects when it
    drops. While it is down nothing is heard; each listener is told when it is back, so a lost
    notification delays work and never loses it."""

    def __init__(self, database_url: str, *, reconnect_delay: float = 1.0) -> None:
        self._dsn = async_url(database_url).replace("postgresql+asyncpg://", "postgresql://", 1)
        self._reconnect_delay = reconnect_delay
        self._listening: list[_Listening] = []
        self._task: asyncio.Task[None] | None = None
        self._connection: asyncpg.Connection | None = None
        self._connected = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen_forever(), name="postgres-listen")

    async def connected(self) -> None:
        """Until the connection listens (at once when it does)."""
        await self._connected.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def listen(
        self,
        channel: str,
        on_payload: Callable[[str], None],
        *,
        on_connected: Callable[[], None] = lambda: None,
    ) -> Callable[[], Awaitable[None]]:
        """Calls `on_payload` with each notification's payload on `channel` from now on; answers
        the function that stops it."""
        listening = _Listening(channel, on_payload, on_connected)
        self._listening.append(listening)
        if self._connection is not None:
            await self._add(self._connection, listening)

        async def unlisten() -> None:
            self._listening.remove(listening)
            if self._connection is not None:
                with contextlib.suppress(Exception):
                    await self._connection.remove_listener(channel, listening.notified)

        return unlisten

    async def _add(self, connection: asyncpg.Connection, listening: _Listening) -> None:
        await connection.add_listener(listening.channel, listening.notified)

    async def _listen_forever(self) -> None:
        while True:
            try:
                connection = await asyncpg.connect(self._dsn)
            except (OSError, asyncpg.PostgresError) as error:
                log.warning("postgres.listen.connect_failed", error=str(error))
                await asyncio.sleep(self._reconnect_delay)
                continue
            lost = asyncio.Event()
            connection.add_termination_listener(lambda _connection, lost=lost: lost.set())
            try:
                for listening in list(self._listening):
                    await self._add(connection, listening)
                self._connection = connection
                self._connected.set()
                for listening in list(self._listening):
                    listening.on_connected()
                await lost.wait()
                log.warning("postgres.listen.connection_lost")
            finally:
                self._connection = None
                self._connected.clear()
                with contextlib.suppress(Exception):
                    await connection.close(timeout=1)


class SchedulingNotifications:
    """Sets an event whenever a scheduling job is committed, and when the listener reconnects
    (anything committed meanwhile); callers still wake on their sweep timeout."""

    def __init__(self, listener: PostgresListener) -> None:
        self._listener = listener
        self._woken = asyncio.Event()
        self._unlisten: Callable[[], Awaitable[None]] | None = None

    async def start(self) -> None:
        self._unlisten = await self._listener.listen(
            SCHEDULING_CHANNEL, lambda _payload: self._woken.set(), on_connected=self.wake
        )

    async def stop(self) -> None:
        if self._unlisten is not None:
            await self._unlisten()
            self._unlisten = None

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


class PostgresProgressChanges:
    """ProgressChanges from the progress channel (the triggers of migration 0007) and the
    scheduling channel (the add's new item), merged until taken."""

    def __init__(self, listener: PostgresListener, *, max_pending: int = 10_000) -> None:
        self._listener = listener
        self._pending = PendingChanges(max_entries=max_pending)
        self._arrived = asyncio.Event()
        self._stops: list[Callable[[], Awaitable[None]]] = []

    async def start(self) -> None:
        self._stops = [
            await self._listener.listen(
                PROGRESS_CHANNEL, self._on_progress, on_connected=self._on_connected
            ),
            await self._listener.listen(SCHEDULING_CHANNEL, self._on_added),
        ]

    async def stop(self) -> None:
        for stop in self._stops:
            await stop()
        self._stops = []

    async def next(self) -> ProgressChange:
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            change = self._pending.take()
            if not change.is_empty:
                return change

    def _offer(self, change: ProgressChange) -> None:
        self._pending.add(change)
        self._arrived.set()

    def _on_connected(self) -> None:
        # Whatever committed while nobody listened was not heard. (With nobody subscribed yet,
        # as at the first connection, reading everything costs the fan-out nothing.)
        self._offer(ProgressChange(everything=True))

    def _on_added(self, payload: str) -> None:
        try:
            item_id = parse_library_item_id(payload)
        except DomainError:
            return  # not an add's notification (an operator's NOTIFY, say): nothing to read
        self._offer(ProgressChange(item_ids=frozenset({item_id})))

    def _on_progress(self, payload: str) -> None:
        try:
            self._offer(_parse_progress(payload))
        except (ValueError, TypeError, KeyError, DomainError):
            # Not written by our triggers; read everything rather than miss what it meant.
            log.warning("progress.notification_unreadable", payload=payload[:200])
            self._offer(ProgressChange(everything=True))


def _parse_progress(payload: str) -> ProgressChange:
    body = json.loads(payload)
    if not isinstance(body, dict):
        raise TypeError("not an object")
    return ProgressChange(
        item_ids=frozenset(parse_library_item_id(raw) for raw in body.get("items", ())),
        isrcs=frozenset(Isrc(raw) for raw in body.get("isrcs", ())),
        removed=frozenset(
            (parse_library_item_id(item_id), parse_user_id(owner))
            for item_id, owner in body.get("removed", ())
        ),
    )
