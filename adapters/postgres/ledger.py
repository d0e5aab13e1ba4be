"""The ISRC ledger and the item-to-track links in PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, TEXT, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.postgres.tables import isrc_ledger, item_tracks
from application.ports.scheduling import DispatchBatch, ItemTrackLink
from domain.ingestion import SCHEDULE_WINDOW, IngestionRequest
from domain.values import CatalogId, Isrc, LibraryItemId

# Settled: nothing new to request. A dispatch older than Inngest's 24 h dedupe window that never
# reached the index is not settled: requesting it again cannot double an ingestion in flight.
_SETTLED = text(
    """
    SELECT isrc FROM isrc_ledger
    WHERE isrc = ANY(:isrcs)
      AND (state <> 'dispatched' OR dispatched_at >= :window_start)
    """
).bindparams(bindparam("isrcs", type_=ARRAY(TEXT)))

_CLAIM_DISPATCHABLE = text(
    """
    SELECT isrc, track_id, album_id, library_item_id, attempts FROM isrc_ledger
    WHERE state = 'requested' AND next_attempt_at <= :now
    ORDER BY next_attempt_at, requested_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
    """
)


class PostgresIsrcLedger:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def settled(self, isrcs: Sequence[Isrc], *, now: datetime) -> set[Isrc]:
        if not isrcs:
            return set()
        rows = await self._connection.execute(
            _SETTLED,
            {"isrcs": [isrc.value for isrc in isrcs], "window_start": now - SCHEDULE_WINDOW},
        )
        return {Isrc(value) for (value,) in rows}

    async def record_requests(
        self, requests: Sequence[IngestionRequest], *, now: datetime
    ) -> list[Isrc]:
        if not requests:
            return []
        statement = insert(isrc_ledger).values(
            [_ledger_row(request, state="requested", now=now) for request in requests]
        )
        # The ISRC is the key: of concurrent jobs holding the same ISRC, the first to commit
        # records it and the others do nothing. A stale dispatch (past the window) is renewed.
        upsert = statement.on_conflict_do_update(
            index_elements=["isrc"],
            set_={
                "state": "requested",
                "track_id": statement.excluded.track_id,
                "album_id": statement.excluded.album_id,
                "library_item_id": statement.excluded.library_item_id,
                "attempts": 0,
                "requested_at": now,
                "dispatched_at": None,
                "next_attempt_at": now,
                "last_error": None,
                "updated_at": now,
            },
            where=(isrc_ledger.c.state == "dispatched")
            & (isrc_ledger.c.dispatched_at < now - SCHEDULE_WINDOW),
        ).returning(isrc_ledger.c.isrc)
        rows = await self._connection.execute(upsert)
        return [Isrc(value) for (value,) in rows]

    async def record_indexed(self, requests: Sequence[IngestionRequest], *, now: datetime) -> None:
        if not requests:
            return
        statement = insert(isrc_ledger).values(
            [_ledger_row(request, state="indexed", now=now) for request in requests]
        )
        statement = statement.on_conflict_do_update(
            index_elements=["isrc"],
            set_={"state": "indexed", "indexed_at": now, "updated_at": now},
            where=isrc_ledger.c.state != "indexed",
        )
        await self._connection.execute(statement)

    async def link_tracks(self, item_id: LibraryItemId, links: Sequence[ItemTrackLink]) -> None:
        if not links:
            return
        statement = insert(item_tracks).values(
            [
                {
                    "library_item_id": item_id,
                    "position": link.position,
                    "track_id": link.track_id.value,
                    "isrc": link.isrc.value if link.isrc is not None else None,
                }
                for link in links
            ]
        )
        statement = statement.on_conflict_do_update(
            index_elements=["library_item_id", "position"],
            set_={"track_id": statement.excluded.track_id, "isrc": statement.excluded.isrc},
        )
        await self._connection.execute(statement)

    async def claim_dispatchable(self, *, limit: int, now: datetime) -> DispatchBatch:
        rows = (
            await self._connection.execute(_CLAIM_DISPATCHABLE, {"limit": limit, "now": now})
        ).all()
        requests = tuple(
            IngestionRequest(
                isrc=Isrc(isrc),
                track_id=CatalogId(track_id),
                album_id=CatalogId(album_id) if album_id else None,
                library_item_id=LibraryItemId(item_id),
            )
            for isrc, track_id, album_id, item_id, _ in rows
        )
        most_attempts = max((attempts for *_, attempts in rows), default=0)
        return DispatchBatch(requests=requests, most_attempts=most_attempts)

    async def mark_dispatched(self, isrcs: Sequence[Isrc], *, now: datetime) -> None:
        await self._connection.execute(
            isrc_ledger.update()
            .where(isrc_ledger.c.isrc.in_([isrc.value for isrc in isrcs]))
            .where(isrc_ledger.c.state == "requested")
            .values(
                state="dispatched",
                dispatched_at=now,
                attempts=isrc_ledger.c.attempts + 1,
                last_error=None,
                updated_at=now,
            )
        )

    async def defer_dispatch(
        self, isrcs: Sequence[Isrc], *, reason: str, retry_at: datetime, now: datetime
    ) -> None:
        await self._connection.execute(
            isrc_ledger.update()
            .where(isrc_ledger.c.isrc.in_([isrc.value for isrc in isrcs]))
            .where(isrc_ledger.c.state == "requested")
            .values(
                next_attempt_at=retry_at,
                attempts=isrc_ledger.c.attempts + 1,
                last_error=reason[:500],
                updated_at=now,
            )
        )

    async def mark_indexed(self, isrc: Isrc, *, now: datetime) -> None:
        await self._connection.execute(
            isrc_ledger.update()
            .where(isrc_ledger.c.isrc == isrc.value)
            .values(state="indexed", indexed_at=now, last_error=None, updated_at=now)
        )

    async def in_flight(self, *, limit: int) -> list[IngestionRequest]:
        rows = await self._connection.execute(
            text(
                "SELECT isrc, track_id, album_id, library_item_id FROM isrc_ledger"
                " WHERE state = 'dispatched' ORDER BY dispatched_at LIMIT :limit"
            ),
            {"limit": limit},
        )
        return [
            IngestionRequest(
                isrc=Isrc(isrc),
                track_id=CatalogId(track_id),
                album_id=CatalogId(album_id) if album_id else None,
                library_item_id=LibraryItemId(item_id),
            )
            for isrc, track_id, album_id, item_id in rows
        ]

    async def reset_to_requested(
        self, *, include_unindexed: bool, limit: int, now: datetime
    ) -> int:
        states = ["failed", "dispatched"] if include_unindexed else ["failed"]
        result = await self._connection.execute(
            text(
                """
                UPDATE isrc_ledger SET state = 'requested', attempts = 0, next_attempt_at = :now,
                       dispatched_at = NULL, last_error = NULL, updated_at = :now
                WHERE isrc IN (
                    SELECT isrc FROM isrc_ledger WHERE state = ANY(:states)
                    ORDER BY isrc LIMIT :limit FOR UPDATE SKIP LOCKED
                )
                """
            ).bindparams(bindparam("states", type_=ARRAY(TEXT))),
            {"now": now, "states": states, "limit": limit},
        )
        return int(result.rowcount)

    async def mark_failed(self, isrc: Isrc, *, reason: str, now: datetime) -> None:
        await self._connection.execute(
            isrc_ledger.update()
            .where(isrc_ledger.c.isrc == isrc.value, isrc_ledger.c.state != "indexed")
            .values(state="failed", last_error=reason[:500], updated_at=now)
        )


def _ledger_row(request: IngestionRequest, *, state: str, now: datetime) -> dict[str, object]:
    return {
        "isrc": request.isrc.value,
        "state": state,
        "event_id": request.idempotency_key,
        "track_id": request.track_id.value,
        "album_id": request.album_id.value if request.album_id is not None else None,
        "library_item_id": request.library_item_id,
        "attempts": 0,
        "requested_at": now,
        "next_attempt_at": now,
        "indexed_at": now if state == "indexed" else None,
        "updated_at": now,
    }


async def ledger_rows_by_state(engine: AsyncEngine) -> dict[str, int]:
    """For the metrics endpoint: how many ISRCs are in each state."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT state, count(*) FROM isrc_ledger GROUP BY state")
        )
        return {state: int(count) for state, count in rows}
