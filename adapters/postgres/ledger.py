"""The ISRC ledger and the item-to-track links in PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, BOOLEAN, INTEGER, TEXT, TIMESTAMP, UUID
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.postgres.tables import isrc_ledger
from application.ports.scheduling import DispatchBatch, ItemTrackLink
from domain.ingestion import (
    DEFER_DISPATCH,
    DISPATCH,
    MARK_FAILED,
    MARK_INDEXED,
    RECORD_INDEXED,
    RESCHEDULE_FAILED,
    RESCHEDULE_UNINDEXED,
    SETTLED_WITHIN_WINDOW,
    IngestionRequest,
    LedgerState,
    LedgerTransition,
    window_start,
)
from domain.values import CatalogId, Isrc, LibraryItemId

# Every state, source set and window below is a bind parameter taken from the domain's rules
# (domain/ingestion.py, ADR 0024): the statements say how, the domain says which.
_STATES = ARRAY(TEXT)


def _states(states: frozenset[LedgerState]) -> list[str]:
    return sorted(state.value for state in states)


# domain.ingestion.is_settled as SQL over a ledger row: in the ledger, and not a dispatch the
# window has let go of. NULL (a dispatch with no time) reads as not settled, as in the domain.
def _settled(row: str) -> str:
    return f"({row}.state <> ALL(:settled_within_window) OR {row}.dispatched_at > :window_start)"


_SETTLED_PARAMETERS = (
    bindparam("settled_within_window", type_=_STATES),
    bindparam("window_start", type_=TIMESTAMP(timezone=True)),
)


def _settled_values(now: datetime) -> dict[str, Any]:
    return {
        "settled_within_window": _states(SETTLED_WITHIN_WINDOW),
        "window_start": window_start(now),
    }


_SETTLED = text(
    f"""
    SELECT isrc FROM isrc_ledger
    WHERE isrc = ANY(:isrcs) AND {_settled("isrc_ledger")} IS TRUE
    """
).bindparams(bindparam("isrcs", type_=ARRAY(TEXT)), *_SETTLED_PARAMETERS)

_ARRAYS = (
    bindparam("isrcs", type_=ARRAY(TEXT)),
    bindparam("event_ids", type_=ARRAY(TEXT)),
    bindparam("track_ids", type_=ARRAY(TEXT)),
    bindparam("album_ids", type_=ARRAY(TEXT)),
    bindparam("item_ids", type_=ARRAY(UUID(as_uuid=True))),
)

_CLAIM_DISPATCHABLE = text(
    """
    SELECT isrc, track_id, album_id, library_item_id, attempts FROM isrc_ledger
    WHERE state = ANY(:sources) AND next_attempt_at <= :now
    ORDER BY next_attempt_at, requested_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
    """
).bindparams(bindparam("sources", type_=_STATES))


# Many rows, one statement text: the rows travel as one array per column and `unnest` turns them
# back into rows. A multi-row VALUES built per call is a new statement for every row count,
# compiled by SQLAlchemy and prepared by the server each time (bench/ profile: the relay's
# largest CPU cost).
_REQUEST_ROWS = """
    SELECT isrc, event_id, track_id, album_id, library_item_id, CAST(:now AS timestamptz) AS now
    FROM unnest(CAST(:isrcs AS text[]), CAST(:event_ids AS text[]), CAST(:track_ids AS text[]),
                CAST(:album_ids AS text[]), CAST(:item_ids AS uuid[]))
        AS request(isrc, event_id, track_id, album_id, library_item_id)
"""

# domain.ingestion.after_request: the ISRC is the key, so of concurrent jobs holding the same
# ISRC the first to commit records it and the others do nothing; a row that is not settled (a
# dispatch past the window) is renewed.
_RECORD_REQUESTS = text(
    f"""
    INSERT INTO isrc_ledger (isrc, state, event_id, track_id, album_id, library_item_id,
                             attempts, requested_at, next_attempt_at, updated_at)
    SELECT isrc, :requested, event_id, track_id, album_id, library_item_id, 0, now, now, now
    FROM ({_REQUEST_ROWS}) AS requests
    ON CONFLICT (isrc) DO UPDATE SET
        state = :requested, track_id = EXCLUDED.track_id, album_id = EXCLUDED.album_id,
        library_item_id = EXCLUDED.library_item_id, attempts = 0,
        requested_at = EXCLUDED.requested_at, dispatched_at = NULL,
        next_attempt_at = EXCLUDED.next_attempt_at, last_error = NULL,
        updated_at = EXCLUDED.updated_at
    WHERE {_settled("isrc_ledger")} IS NOT TRUE
    RETURNING isrc
    """
).bindparams(*_ARRAYS, *_SETTLED_PARAMETERS)

# domain.ingestion.RECORD_INDEXED, for rows new and old.
_RECORD_INDEXED = text(
    f"""
    INSERT INTO isrc_ledger (isrc, state, event_id, track_id, album_id, library_item_id,
                             attempts, requested_at, next_attempt_at, indexed_at, updated_at)
    SELECT isrc, :target, event_id, track_id, album_id, library_item_id, 0, now, now, now, now
    FROM ({_REQUEST_ROWS}) AS requests
    ON CONFLICT (isrc) DO UPDATE
        SET state = :target, indexed_at = EXCLUDED.indexed_at, updated_at = EXCLUDED.updated_at
    WHERE isrc_ledger.state = ANY(:sources)
    """
).bindparams(*_ARRAYS, bindparam("sources", type_=_STATES))

_IN_FLIGHT = text(
    "SELECT isrc, track_id, album_id, library_item_id FROM isrc_ledger"
    " WHERE state = :dispatched ORDER BY dispatched_at LIMIT :limit"
)

_RESCHEDULE = text(
    """
    UPDATE isrc_ledger SET state = :target, attempts = 0, next_attempt_at = :now,
           dispatched_at = NULL, last_error = NULL, updated_at = :now
    WHERE isrc IN (
        SELECT isrc FROM isrc_ledger WHERE state = ANY(:sources)
        ORDER BY isrc LIMIT :limit FOR UPDATE SKIP LOCKED
    )
    """
).bindparams(bindparam("sources", type_=_STATES))

# RESCHEDULE_FAILED for the ISRCs some items' tracks carry.
_REOPEN_FAILED_TRACKS = text(
    """
    UPDATE isrc_ledger SET state = :target, attempts = 0, next_attempt_at = :now,
           dispatched_at = NULL, last_error = NULL, updated_at = :now
    WHERE state = ANY(:sources) AND isrc IN (
        SELECT isrc FROM item_tracks
        WHERE library_item_id = ANY(CAST(:item_ids AS uuid[])) AND isrc IS NOT NULL
    )
    """
).bindparams(bindparam("sources", type_=_STATES))

# The links of any number of items in one statement: the item id travels per row, like the
# position.
_LINK_TRACKS = text(
    """
    INSERT INTO item_tracks (library_item_id, position, track_id, isrc, unavailable)
    SELECT library_item_id, position, track_id, isrc, unavailable
    FROM unnest(CAST(:item_ids AS uuid[]), CAST(:positions AS integer[]),
                CAST(:track_ids AS text[]), CAST(:isrcs AS text[]),
                CAST(:unavailable AS boolean[]))
        AS link(library_item_id, position, track_id, isrc, unavailable)
    ON CONFLICT (library_item_id, position) DO UPDATE
        SET track_id = EXCLUDED.track_id, isrc = EXCLUDED.isrc,
            unavailable = EXCLUDED.unavailable
    """
).bindparams(
    bindparam("item_ids", type_=ARRAY(UUID(as_uuid=True))),
    bindparam("positions", type_=ARRAY(INTEGER)),
    bindparam("track_ids", type_=ARRAY(TEXT)),
    bindparam("isrcs", type_=ARRAY(TEXT)),
    bindparam("unavailable", type_=ARRAY(BOOLEAN)),
)


class PostgresIsrcLedger:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def settled(self, isrcs: Sequence[Isrc], *, now: datetime) -> set[Isrc]:
        if not isrcs:
            return set()
        rows = await self._connection.execute(
            _SETTLED, {"isrcs": [isrc.value for isrc in isrcs], **_settled_values(now)}
        )
        return {Isrc(value) for (value,) in rows}

    async def record_requests(
        self, requests: Sequence[IngestionRequest], *, now: datetime
    ) -> list[Isrc]:
        if not requests:
            return []
        rows = await self._connection.execute(
            _RECORD_REQUESTS,
            {
                **_ledger_columns(requests),
                **_settled_values(now),
                "now": now,
                "requested": LedgerState.REQUESTED.value,
            },
        )
        return [Isrc(value) for (value,) in rows]

    async def record_indexed(self, requests: Sequence[IngestionRequest], *, now: datetime) -> None:
        if not requests:
            return
        await self._connection.execute(
            _RECORD_INDEXED,
            {**_ledger_columns(requests), **_transition(RECORD_INDEXED), "now": now},
        )

    async def link_tracks(self, links: Sequence[ItemTrackLink]) -> None:
        if not links:
            return
        await self._connection.execute(
            _LINK_TRACKS,
            {
                "item_ids": [link.item_id for link in links],
                "positions": [link.position for link in links],
                "track_ids": [link.track_id.value for link in links],
                "isrcs": [link.isrc.value if link.isrc is not None else None for link in links],
                "unavailable": [not link.available for link in links],
            },
        )

    async def claim_dispatchable(self, *, limit: int, now: datetime) -> DispatchBatch:
        rows = (
            await self._connection.execute(
                _CLAIM_DISPATCHABLE,
                {"limit": limit, "now": now, "sources": _states(DISPATCH.sources)},
            )
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
        await self._move(
            DISPATCH,
            isrcs,
            dispatched_at=now,
            attempts=isrc_ledger.c.attempts + 1,
            last_error=None,
            updated_at=now,
        )

    async def defer_dispatch(
        self, isrcs: Sequence[Isrc], *, reason: str, retry_at: datetime, now: datetime
    ) -> None:
        await self._move(
            DEFER_DISPATCH,
            isrcs,
            next_attempt_at=retry_at,
            attempts=isrc_ledger.c.attempts + 1,
            last_error=reason[:500],
            updated_at=now,
        )

    async def mark_indexed(self, isrc: Isrc, *, now: datetime) -> None:
        await self._move(MARK_INDEXED, [isrc], indexed_at=now, last_error=None, updated_at=now)

    async def in_flight(self, *, limit: int) -> list[IngestionRequest]:
        rows = await self._connection.execute(
            _IN_FLIGHT, {"limit": limit, "dispatched": LedgerState.DISPATCHED.value}
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
        transition = RESCHEDULE_UNINDEXED if include_unindexed else RESCHEDULE_FAILED
        result = await self._connection.execute(
            _RESCHEDULE, {**_transition(transition), "now": now, "limit": limit}
        )
        return int(result.rowcount)

    async def reopen_failed_tracks(
        self, item_ids: Sequence[LibraryItemId], *, now: datetime
    ) -> int:
        if not item_ids:
            return 0
        result = await self._connection.execute(
            _REOPEN_FAILED_TRACKS,
            {**_transition(RESCHEDULE_FAILED), "now": now, "item_ids": list(item_ids)},
        )
        return int(result.rowcount)

    async def mark_failed(self, isrc: Isrc, *, reason: str, now: datetime) -> None:
        await self._move(MARK_FAILED, [isrc], last_error=reason[:500], updated_at=now)

    async def _move(
        self, transition: LedgerTransition, isrcs: Sequence[Isrc], **values: Any
    ) -> None:
        """Apply `transition` to the rows of `isrcs` that are in one of its sources."""
        await self._connection.execute(
            isrc_ledger.update()
            .where(isrc_ledger.c.isrc.in_([isrc.value for isrc in isrcs]))
            .where(isrc_ledger.c.state.in_(_states(transition.sources)))
            .values(state=transition.target.value, **values)
        )


def _transition(transition: LedgerTransition) -> dict[str, Any]:
    return {"sources": _states(transition.sources), "target": transition.target.value}


def _ledger_columns(requests: Sequence[IngestionRequest]) -> dict[str, list[Any]]:
    """The requests as one array per column, for the `unnest` inserts."""
    return {
        "isrcs": [request.isrc.value for request in requests],
        "event_ids": [request.idempotency_key for request in requests],
        "track_ids": [request.track_id.value for request in requests],
        "album_ids": [
            request.album_id.value if request.album_id is not None else None for request in requests
        ],
        "item_ids": [request.library_item_id for request in requests],
    }
