"""A catalogue cache in PostgreSQL, in front of the real catalogue (TIDAL).

TIDAL grants about one request per 5 s, so a call is the cost that matters: an album resolved once
and complete answers from here with no call until it is older than `max_age`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

import structlog
from sqlalchemy import TEXT, RowMapping, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.clock import SystemClock
from adapters.postgres.catalog_tables import catalog_albums, catalog_tracks
from adapters.postgres.database import disposable_transaction
from application.ports.catalog import (
    AlbumPage,
    Catalog,
    CatalogAlbum,
    CatalogItemNotFound,
    CatalogTrack,
    PlaylistPage,
)
from application.ports.clock import Clock
from domain.values import CatalogId, Isrc

log = structlog.get_logger(__name__)

# Any number of tracks in one statement built once: one array per column, turned back into rows
# by `unnest`. Artist names are a list per track, and arrays of arrays must be rectangular, so
# each track's list travels as a JSON array. (A per-row executemany cost ~2 ms of CPU per
# 20-track page; bench/.)
_UPSERT_TRACKS = text(
    """
    INSERT INTO catalog_tracks (track_id, isrc, title, version, artist_names, album_id,
                                volume_number, track_number, duration_seconds, fetched_at)
    SELECT track_id, isrc, title, version,
           ARRAY(SELECT jsonb_array_elements_text(CAST(artist_names AS jsonb))),
           album_id, volume_number, track_number, duration_seconds,
           CAST(:fetched_at AS timestamptz)
    FROM unnest(CAST(:track_ids AS text[]), CAST(:isrcs AS text[]), CAST(:titles AS text[]),
                CAST(:versions AS text[]), CAST(:artist_names AS text[]),
                CAST(:album_ids AS text[]), CAST(:volume_numbers AS integer[]),
                CAST(:track_numbers AS integer[]), CAST(:durations AS integer[]))
        AS track(track_id, isrc, title, version, artist_names, album_id, volume_number,
                 track_number, duration_seconds)
    ON CONFLICT (track_id) DO UPDATE SET
        isrc = EXCLUDED.isrc, title = EXCLUDED.title, version = EXCLUDED.version,
        artist_names = EXCLUDED.artist_names, album_id = EXCLUDED.album_id,
        volume_number = EXCLUDED.volume_number, track_number = EXCLUDED.track_number,
        duration_seconds = EXCLUDED.duration_seconds, fetched_at = EXCLUDED.fetched_at
    """
)

DEFAULT_MAX_AGE = timedelta(days=7)
# How long an id the catalogue does not know is believed unknown (ADR 0028): a day, so that a
# mistyped id added again costs no call, and one TIDAL adds later is found the next day.
DEFAULT_UNKNOWN_MAX_AGE = timedelta(days=1)

_UNKNOWN = text(
    "SELECT catalog_id FROM catalog_unknown"
    " WHERE kind = :kind AND catalog_id = ANY(:ids) AND noted_at > :since"
).bindparams(bindparam("ids", type_=ARRAY(TEXT)))
_NOTE_UNKNOWN = text(
    """
    INSERT INTO catalog_unknown (kind, catalog_id, noted_at)
    SELECT :kind, catalog_id, :noted_at FROM unnest(CAST(:ids AS text[])) AS unknown(catalog_id)
    ON CONFLICT (kind, catalog_id) DO UPDATE SET noted_at = EXCLUDED.noted_at
    """
)
_Write = Callable[[AsyncConnection], Awaitable[None]]
_Page = TypeVar("_Page", AlbumPage, PlaylistPage)
# The page size TIDAL uses for an album's items, so a cached album streams like a fetched one.
CACHED_PAGE_SIZE = 20


class CachingCatalog:
    """The Catalog port over another Catalog, remembering what it answers in PostgreSQL.

    - `album_pages`: a complete album fetched less than `max_age` ago streams from the cache in
      pages of 20 with no call to the inner catalogue. Otherwise the inner catalogue's pages pass
      through one by one as they arrive; each page's tracks are stored before it is yielded, and
      the album is marked complete with its last page. Reading ahead is the inner catalogue's
      business, not the cache's. A stream that stops early (the consumer
      leaves, or the inner catalogue fails) leaves the album incomplete, so the next resolution
      asks the inner catalogue again.
    - `playlist_pages`: always the inner catalogue's pages, since a playlist changes and a
      re-sync must see it as it is now (ADR 0029); each page's tracks are stored before it is
      yielded, so the worker's lookups of them cost no call.
    - `track` and `tracks`: fresh cached tracks are answered from the table; the others are asked
      of the inner catalogue (one batch call for `tracks`) and stored.
    - An id the inner catalogue answered it does not know (CatalogItemNotFound, or absent from
      a batch) is remembered for `unknown_max_age` (ADR 0028): asked again meanwhile, it is
      answered as unknown with no call. `unknown_max_age` of zero remembers nothing.

    Errors of the inner catalogue pass through unchanged, and nothing is cached for them. The
    cache is an optimisation: a failing cache read or write is logged and the answer comes from
    (or still goes to) the caller as if there were no cache. Every cache write is its own short
    transaction; none is held open across a call to the inner catalogue.
    """

    def __init__(
        self,
        inner: Catalog,
        engine: AsyncEngine,
        *,
        clock: Clock | None = None,
        max_age: timedelta = DEFAULT_MAX_AGE,
        unknown_max_age: timedelta = DEFAULT_UNKNOWN_MAX_AGE,
    ) -> None:
        if max_age <= timedelta(0):
            raise ValueError("max_age must be positive")
        if unknown_max_age < timedelta(0):
            raise ValueError("unknown_max_age must not be negative")
        self._inner = inner
        self._engine = engine
        self._clock: Clock = clock or SystemClock()
        self._max_age = max_age
        self._unknown_max_age = unknown_max_age

    # -- the Catalog port ---------------------------------------------------------------------

    async def track(self, track_id: CatalogId) -> CatalogTrack:
        cached = await self._fresh_tracks([track_id])
        if track_id in cached:
            return cached[track_id]
        await self._refuse_known_unknown("track", track_id)
        try:
            track = await self._inner.track(track_id)
        except CatalogItemNotFound:
            await self._note_unknown("track", [track_id.value])
            raise
        await self._store(lambda connection: self._write_tracks(connection, [track]))
        return track

    async def tracks(self, track_ids: Sequence[CatalogId]) -> dict[CatalogId, CatalogTrack]:
        wanted = list(dict.fromkeys(track_ids))
        if not wanted:
            return {}
        found = await self._fresh_tracks(wanted)
        missing = [track_id for track_id in wanted if track_id not in found]
        unknown = await self._known_unknown("track", missing)
        missing = [track_id for track_id in missing if track_id.value not in unknown]
        if missing:
            fetched = await self._inner.tracks(missing)
            await self._store(lambda connection: self._write_tracks(connection, fetched.values()))
            found.update(fetched)
            absent = [track_id.value for track_id in missing if track_id not in fetched]
            await self._note_unknown("track", absent)
        # In the order asked, as the inner catalogue answers.
        return {track_id: found[track_id] for track_id in wanted if track_id in found}

    async def album_pages(self, album_id: CatalogId) -> AsyncIterator[AlbumPage]:
        cached = await self._fresh_album(album_id)
        if cached is not None:
            for cached_page in cached:
                yield cached_page
            return
        track_ids: list[str] = []
        skipped_items = 0
        unavailable: list[str] = []
        await self._refuse_known_unknown("album", album_id)
        pages = self._inner.album_pages(album_id)
        try:
            async for page in self._noting_unknown("album", album_id, pages):
                track_ids.extend(track.catalog_id.value for track in page.tracks)
                skipped_items += page.skipped_items
                unavailable.extend(track_id.value for track_id in page.unavailable)
                # Stored before it is yielded: a consumer may stop as soon as it sees
                # `is_last`, and the album must still be marked complete. Nothing here reads
                # ahead: the inner catalogue does, where the wait is (ADR 0023), so this write
                # runs while the next page is on its way.
                await self._store(
                    self._page_writer(page, tuple(track_ids), skipped_items, tuple(unavailable))
                )
                yield page
        finally:
            # Leaving early (the consumer stopped, or an error) must release the inner stream
            # now, not whenever it is garbage collected; a page already fetched is still kept.
            close = getattr(pages, "aclose", None)
            if close is not None:
                await close()

    async def playlist_pages(self, playlist_id: CatalogId) -> AsyncIterator[PlaylistPage]:
        await self._refuse_known_unknown("playlist", playlist_id)
        pages = self._inner.playlist_pages(playlist_id)
        try:
            async for page in self._noting_unknown("playlist", playlist_id, pages):
                await self._store(self._tracks_writer(page.tracks))
                yield page
        finally:
            close = getattr(pages, "aclose", None)
            if close is not None:
                await close()

    def _tracks_writer(self, tracks: Sequence[CatalogTrack]) -> _Write:
        async def write(connection: AsyncConnection) -> None:
            await self._write_tracks(connection, tracks)

        return write

    # -- albums -------------------------------------------------------------------------------

    async def _fresh_album(self, album_id: CatalogId) -> list[AlbumPage] | None:
        """The cached album as pages, or None when it is absent, incomplete, stale, or has lost
        one of its tracks' rows."""
        try:
            async with self._engine.connect() as connection:
                album = (
                    (
                        await connection.execute(
                            select(catalog_albums).where(
                                catalog_albums.c.album_id == album_id.value,
                                catalog_albums.c.complete.is_(True),
                                catalog_albums.c.fetched_at > self._oldest_fresh(),
                            )
                        )
                    )
                    .mappings()
                    .first()
                )
                if album is None:
                    return None
                track_ids: list[str] = list(album["track_ids"])
                rows = await _track_rows(connection, track_ids)
        except SQLAlchemyError:
            log.warning("catalog_cache.read_failed", album_id=album_id.value, exc_info=True)
            return None
        if any(track_id not in rows for track_id in track_ids):
            return None
        header = CatalogAlbum(
            catalog_id=album_id,
            title=album["title"],
            artist_names=tuple(album["artist_names"]),
            number_of_items=album["number_of_items"],
        )
        tracks = [_to_track(rows[track_id]) for track_id in track_ids]
        return _pages(
            header,
            tracks,
            skipped_items=album["skipped_items"],
            unavailable=tuple(CatalogId(i) for i in album["unavailable_track_ids"]),
        )

    def _page_writer(
        self,
        page: AlbumPage,
        track_ids_so_far: tuple[str, ...],
        skipped_so_far: int,
        unavailable_so_far: tuple[str, ...],
    ) -> _Write:
        async def write(connection: AsyncConnection) -> None:
            await self._write_tracks(connection, page.tracks)
            if page.is_last:
                await self._write_album(
                    connection, page.album, track_ids_so_far, skipped_so_far, unavailable_so_far
                )

        return write

    async def _write_album(
        self,
        connection: AsyncConnection,
        album: CatalogAlbum,
        track_ids: tuple[str, ...],
        skipped_items: int,
        unavailable: tuple[str, ...],
    ) -> None:
        values = {
            "album_id": album.catalog_id.value,
            "title": album.title,
            "artist_names": list(album.artist_names),
            "number_of_items": album.number_of_items,
            "track_ids": list(track_ids),
            "skipped_items": skipped_items,
            "unavailable_track_ids": list(unavailable),
            "complete": True,
            "fetched_at": self._clock.now(),
        }
        statement = insert(catalog_albums).values(values)
        await connection.execute(
            statement.on_conflict_do_update(
                index_elements=[catalog_albums.c.album_id],
                set_={name: statement.excluded[name] for name in values if name != "album_id"},
            )
        )

    # -- tracks -------------------------------------------------------------------------------

    async def _fresh_tracks(self, track_ids: Sequence[CatalogId]) -> dict[CatalogId, CatalogTrack]:
        try:
            async with self._engine.connect() as connection:
                rows = await _track_rows(
                    connection, [track_id.value for track_id in track_ids], self._oldest_fresh()
                )
        except SQLAlchemyError:
            log.warning("catalog_cache.read_failed", tracks=len(track_ids), exc_info=True)
            return {}
        return {CatalogId(track_id): _to_track(row) for track_id, row in rows.items()}

    async def _write_tracks(
        self, connection: AsyncConnection, tracks: Iterable[CatalogTrack]
    ) -> None:
        # One row per id: an upsert may not touch the same row twice in one statement. In id
        # order, so that two processes storing overlapping pages lock rows in the same order
        # and never deadlock.
        by_id = {track.catalog_id.value: track for track in tracks}
        if not by_id:
            return
        ordered = [by_id[key] for key in sorted(by_id)]
        await connection.execute(
            _UPSERT_TRACKS,
            {
                "track_ids": [track.catalog_id.value for track in ordered],
                "isrcs": [track.isrc.value if track.isrc else None for track in ordered],
                "titles": [track.title for track in ordered],
                "versions": [track.version for track in ordered],
                "artist_names": [json.dumps(list(track.artist_names)) for track in ordered],
                "album_ids": [
                    track.album_id.value if track.album_id else None for track in ordered
                ],
                "volume_numbers": [track.volume_number for track in ordered],
                "track_numbers": [track.track_number for track in ordered],
                "durations": [track.duration_seconds for track in ordered],
                "fetched_at": self._clock.now(),
            },
        )

    # -- helpers ------------------------------------------------------------------------------

    # -- ids the catalogue does not know -----------------------------------------------------

    async def _refuse_known_unknown(self, kind: str, catalog_id: CatalogId) -> None:
        """Raises CatalogItemNotFound, as the catalogue would, for an id remembered unknown."""
        if catalog_id.value in await self._known_unknown(kind, [catalog_id]):
            raise CatalogItemNotFound(kind, catalog_id.value)

    async def _noting_unknown(
        self, kind: str, catalog_id: CatalogId, pages: AsyncIterator[_Page]
    ) -> AsyncIterator[_Page]:
        """`pages`, remembering the id as unknown when the catalogue says so."""
        try:
            async for page in pages:
                yield page
        except CatalogItemNotFound:
            await self._note_unknown(kind, [catalog_id.value])
            raise

    async def _known_unknown(self, kind: str, catalog_ids: Sequence[CatalogId]) -> set[str]:
        if not catalog_ids or self._unknown_max_age <= timedelta(0):
            return set()
        since = self._clock.now() - self._unknown_max_age
        try:
            async with self._engine.connect() as connection:
                rows = await connection.execute(
                    _UNKNOWN, {"kind": kind, "ids": [c.value for c in catalog_ids], "since": since}
                )
                return {catalog_id for (catalog_id,) in rows}
        except SQLAlchemyError:
            log.warning("catalog_cache.read_failed", kind=kind, exc_info=True)
            return set()  # as if nothing were remembered: the catalogue is asked

    async def _note_unknown(self, kind: str, catalog_ids: Sequence[str]) -> None:
        if not catalog_ids or self._unknown_max_age <= timedelta(0):
            return
        values = {"kind": kind, "ids": list(catalog_ids), "noted_at": self._clock.now()}

        async def write(connection: AsyncConnection) -> None:
            await connection.execute(_NOTE_UNKNOWN, values)

        await self._store(write)

    def _oldest_fresh(self) -> datetime:
        return self._clock.now() - self._max_age

    async def _store(self, write: _Write) -> None:
        """Run one cache write in a short transaction of its own. A failure is logged, not
        raised: the answer the caller is waiting for has already arrived."""
        try:
            async with disposable_transaction(self._engine) as connection:
                await write(connection)
        except SQLAlchemyError:
            log.warning("catalog_cache.write_failed", exc_info=True)


async def _track_rows(
    connection: AsyncConnection, track_ids: Sequence[str], fetched_after: datetime | None = None
) -> dict[str, RowMapping]:
    if not track_ids:
        return {}
    query = select(catalog_tracks).where(catalog_tracks.c.track_id.in_(list(set(track_ids))))
    if fetched_after is not None:
        query = query.where(catalog_tracks.c.fetched_at > fetched_after)
    result = await connection.execute(query)
    return {row["track_id"]: row for row in result.mappings()}


def _pages(
    header: CatalogAlbum,
    tracks: Sequence[CatalogTrack],
    *,
    skipped_items: int,
    unavailable: tuple[CatalogId, ...],
) -> list[AlbumPage]:
    """The album in pages of CACHED_PAGE_SIZE, at least one. The skipped items, and the tracks
    that were not available, are on the last page, as their positions are not kept."""
    chunks = [
        tuple(tracks[start : start + CACHED_PAGE_SIZE])
        for start in range(0, len(tracks), CACHED_PAGE_SIZE)
    ] or [()]
    last = len(chunks) - 1
    return [
        AlbumPage(
            album=header,
            tracks=chunk,
            skipped_items=skipped_items if number == last else 0,
            is_last=number == last,
            unavailable=unavailable if number == last else (),
        )
        for number, chunk in enumerate(chunks)
    ]


def _to_track(row: RowMapping) -> CatalogTrack:
    return CatalogTrack(
        catalog_id=CatalogId(row["track_id"]),
        isrc=Isrc(row["isrc"]) if row["isrc"] is not None else None,
        title=row["title"],
        version=row["version"],
        artist_names=tuple(row["artist_names"]),
        album_id=CatalogId(row["album_id"]) if row["album_id"] is not None else None,
        volume_number=row["volume_number"],
        track_number=row["track_number"],
        duration_seconds=row["duration_seconds"],
    )
